"""`fd-sync status`: what the ledger says, whether the sync is healthy, and the fix.

Read-only: it opens the ledger without the run lock, so it answers while a
cycle runs. Health is "a cycle succeeded within the last 3 poll intervals".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from fd_sync.flashduty.answers import key_rejected
from fd_sync.store.ledger import Ledger
from fd_sync.store.lock import still_running
from fd_sync.store.queue import DeadReason
from fd_sync.store.records import DaemonRecord
from fd_sync.store.state import DAEMON, SERVICENOW_CLOCK
from fd_sync.store.summary import HighAvailability, Summary, TicketsSummary, high_availability


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Status:
    summary: Summary
    daemon: DaemonRecord | None  # what the daemon last wrote (pid, interval, status line)
    healthy: bool
    health: str
    writeback_enabled: bool = False  # [writeback] enabled: show that direction
    commands_enabled: bool = False  # [commands] enabled
    tickets_enabled: bool = False  # [tickets] enabled

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self.summary)
        ha = self.summary.high_availability
        if ha is not None and ha.last_failover is not None:
            out["high_availability"]["last_failover"] = ha.last_failover.to_json()
        daemon = self.daemon.to_json() if self.daemon else None
        out.update(daemon=daemon, healthy=self.healthy, health=self.health)
        return out


def read_status(
    ledger: Ledger,
    poll_interval: int,
    *,
    now: Callable[[], datetime] = _now,
    writeback_enabled: bool = False,
    commands_enabled: bool = False,
    tickets_enabled: bool = False,
) -> Status:
    summary = ledger.summary()
    healthy, why = health(summary.last_success_at, poll_interval, now())
    servicenow_now = ledger.state.get(SERVICENOW_CLOCK)
    if summary.watermark and servicenow_now and summary.watermark > servicenow_now:
        # Every later cycle reads nothing: the worst silent failure there is.
        healthy, why = (
            False,
            (
                f"the watermark {summary.watermark} UTC is ahead of ServiceNow's clock "
                f"({servicenow_now} UTC at the last cycle): changes before it are never read; "
                "run fd-sync once --since <the last time you know was synced>"
            ),
        )
    if summary.dead:
        # Somebody was not paged, or a responder's action never reached ServiceNow.
        healthy, why = False, dead_line(summary)
    daemon = _daemon(
        DaemonRecord.from_json(ledger.state.get_json(DAEMON)), summary.high_availability
    )
    return Status(
        summary, daemon, healthy, why, writeback_enabled, commands_enabled, tickets_enabled
    )


def dead_line(summary: Summary) -> str:
    return (
        f"{summary.dead} item(s) refused for good and kept; the oldest: {summary.oldest_dead}; "
        "see fd-sync outbox list --dead, fix what it names, then fd-sync outbox retry --all"
    )


def live_daemon(ledger: Ledger) -> DaemonRecord | None:
    """The daemon that runs cycles on this ledger now, if one does (``ledger copy`` must
    not copy a ledger that goes on changing)."""
    daemon = _daemon(
        DaemonRecord.from_json(ledger.state.get_json(DAEMON)), high_availability(ledger)
    )
    return daemon if daemon is not None and daemon.running else None


def _daemon(
    recorded: DaemonRecord | None, shared: HighAvailability | None = None
) -> DaemonRecord | None:
    """What the daemon last wrote, corrected when it died without writing again (kill -9,
    a crash, a reboot): a record that says running is believed only for a live process —
    on a shared ledger, the one whose session holds the leader lock (it may be elsewhere)."""
    if recorded is None or not recorded.running:
        return recorded
    if shared is not None and shared.replica:
        # A replica sees none of the primary's locks: whether it runs cannot be told here.
        return replace(
            recorded,
            status=f"as last recorded (read from a replica: whether it still runs cannot be "
            f"seen here): {recorded.status}",
        )
    alive = (
        still_running(recorded.to_json())
        if shared is None
        else bool(shared.holder and shared.holder.endswith(recorded.process))
    )
    if alive:
        return recorded
    return replace(
        recorded,
        running=False,
        status=f"not running: pid {recorded.pid} is gone without stopping "
        f"(killed, crashed or rebooted); its last status: {recorded.status}",
    )


def high_availability_lines(ha: HighAvailability | None, now: datetime) -> list[tuple[str, str]]:
    """Leader, standbys and the last failover of a shared ledger; nothing for SQLite."""
    if ha is None:
        return []
    if ha.replica:
        return [
            (
                "leader",
                "not shown: this ledger is a read-only replica, and who leads (a lock) is seen "
                "only on the primary; point [sync] database at the primary",
            )
        ]
    shown = "none: no fd-sync process holds the ledger (no daemon running?)"
    if ha.holder:
        shown = ha.holder.removeprefix("fd-sync leader ")
        if ha.leader and shown == str(ha.leader.process):
            shown += f" since {ha.leader.since}"
    standbys = ", ".join(
        f"{r.process} (since {r.since}, checked in "
        f"{(now - datetime.fromisoformat(r.seen_at)).total_seconds():.0f} s ago)"
        for r in ha.standbys
    )
    failover = ha.last_failover
    return [
        ("leader", shown),
        ("standbys", standbys or "none checked in"),
        (
            "last failover",
            f"{failover.at}: {failover.to} took over from {failover.from_}"
            if failover
            else "never",
        ),
    ]


def health(last_ok: str | None, interval: int, now: datetime) -> tuple[bool, str]:
    """Healthy while a cycle succeeded within the last 3 poll intervals."""
    if not last_ok:
        return False, "no successful cycle yet"
    age = (now - datetime.fromisoformat(last_ok)).total_seconds()
    if age > 3 * interval:
        return False, f"last successful cycle {age:.0f} s ago (more than 3 x {interval} s)"
    return True, f"last successful cycle {age:.0f} s ago"


def render(status: Status, *, now: Callable[[], datetime] = _now) -> list[str]:
    """The status as aligned ``key  value`` lines."""
    summary, daemon = status.summary, status.daemon
    outbox, last, watermark = summary.outbox, summary.last_run, summary.watermark
    lag = ""
    if watermark:
        behind = (now() - datetime.fromisoformat(watermark + "+00:00")).total_seconds()
        if behind >= 0:
            lag = f" ({behind:.0f} s behind this host's clock)"
        else:
            lag = f" ({-behind:.0f} s AHEAD of this host's clock)"
    lines = [
        ("ledger", f"{summary.database} ({summary.backend})"),
        *high_availability_lines(summary.high_availability, now()),
        ("watermark", f"{watermark} UTC{lag}" if watermark else "none yet"),
        (
            "incidents",
            f"{summary.incidents_tracked} tracked, {summary.open_alerts} with an open alert",
        ),
        (
            "outbox",
            f"{outbox.pending} pending, {outbox.dead} dead, "
            f"{outbox.blocked} held behind dead, {outbox.delivered} delivered",
        ),
        ("quarantined", f"{summary.quarantined} bad row(s)"),
        (
            "last run",
            f"{last.started_at} {last.command}: {last.outcome or 'running'} (exit {last.exit_code})"
            if last
            else "never",
        ),
    ]
    missing = summary.missing_incidents
    if missing:
        shown = ", ".join(m["number"] for m in missing[:10]) + (" ..." if len(missing) > 10 else "")
        lines.append(
            (
                "unknown",
                f"{len(missing)} open alert(s) whose incident ServiceNow no "
                f"longer returns (deleted, or hidden by an ACL): {shown}; grant read on "
                "sys_audit_delete so that fd-sync resolves deleted ones",
            )
        )
    lines.extend(("dead", dead_reason(reason)) for reason in summary.dead_reasons)
    lines.extend(writeback_lines(summary, shown=status.writeback_enabled))
    if status.commands_enabled:
        lines.append(("commands", commands_line(summary)))
    if summary.tickets is not None and (status.tickets_enabled or summary.tickets.tracked):
        lines.append(("tickets", tickets_line(summary.tickets)))
    if summary.unmatched_people:
        shown = "; ".join(f"{e}: {why}" for e, why in list(summary.unmatched_people.items())[:5])
        lines.append(
            (
                "unmatched",
                f"{len(summary.unmatched_people)} people not assigned (matched by email, "
                f"never guessed): {shown}",
            )
        )
    lines.extend(budget_lines(summary.api_budgets))
    if last and last.message and last.exit_code:
        lines.append(("last error", last.message))
    lines.append(("last success", summary.last_success_at or "never"))
    if daemon:
        state = f"pid {daemon.process}" if daemon.running else "stopped"
        lines.append(
            ("daemon", f"{state}, every {daemon.poll_interval_seconds} s; {daemon.status}")
        )
        if daemon.fetch_paused_until:
            lines.append(
                (
                    "fetch paused",
                    f"until {daemon.fetch_paused_until}: {daemon.fetch_paused_because}",
                )
            )
    lines.append(("health", ("ok: " if status.healthy else "UNHEALTHY: ") + status.health))
    width = max(len(k) for k, _ in lines)
    return [f"{key:<{width}}  {value}" for key, value in lines]


def budget_lines(budgets: dict[str, Any]) -> list[tuple[str, str]]:
    """Both APIs' budgets and the pace they allow, as the last cycle left them (issue 24)."""
    if not budgets:
        return []
    lines = []
    sn = (budgets.get("servicenow") or {}).get("view") or {}
    if sn.get("limit"):
        lines.append(
            (
                "servicenow",
                f"{sn['remaining']} of {sn['limit']} requests left this hour "
                f"({sn['source']}; {sn['reserve']} kept for writes)",
            )
        )
    else:
        lines.append(("servicenow", "no hourly limit: max_requests_per_hour = 0, no rule seen"))
    openapi = budgets.get("openapi") or {}
    text = f"{openapi.get('used', 0)} of {openapi.get('per_minute', 0)} requests in the last minute"
    cadence = budgets.get("cadence")
    if cadence:
        text += (
            f"; incidents read every cycle ({cadence['active']} active) to every "
            f"{cadence['slowest']} s ({cadence['quiet']} quiet); the least recent read "
            f"{cadence['oldest_read']} s ago"
        )
        if cadence.get("deferred"):
            text += f"; {cadence['deferred']} waited for budget"
    lines.append(("openapi", text))
    interval = f"{budgets.get('interval')} s"
    if budgets.get("stretched"):
        interval += f", stretched from {budgets.get('configured')} s: {budgets['stretched']}"
    lines.append(("interval", interval))
    return lines


def tickets_line(t: TicketsSummary) -> str:
    newest = (
        datetime.fromtimestamp(t.newest_start, UTC).isoformat() if t.newest_start else "none yet"
    )
    since = f"; incidents starting before {t.since} open none" if t.since else ""
    return (
        f"{t.tracked} opened ({t.opened_last_day} in the last day); creates: "
        f"{t.creates.pending} pending, {t.creates.dead} refused; Flashduty writes: "
        f"{t.writes.pending} pending, {t.writes.dead} refused; newest incident start seen "
        f"{newest}{since}"
    )


def commands_line(summary: Summary) -> str:
    answered = summary.commands.delivered
    if summary.commands_seen_at is None:
        return (
            f"on; {answered} answered; the journal has never returned a /flashduty note (if "
            "agents wrote some, the integration user may not read sys_journal_field, which "
            "ServiceNow answers with no rows: run fd-sync check)"
        )
    return (
        f"on; {answered} answered, {summary.commands.pending} waiting; last command read "
        f"{summary.commands_seen_at}"
    )


def writeback_lines(summary: Summary, *, shown: bool) -> list[tuple[str, str]]:
    """The Flashduty -> ServiceNow direction, with [writeback] on (or anything left of it)."""
    wb = summary.writeback
    if wb is None or not (shown or wb.pending or wb.dead or wb.held):
        return []
    lines = [
        (
            "write-back",
            f"{wb.watched} Flashduty incident(s) tracked, {wb.unlinked} alert(s) not yet "
            f"matched to one; writes: {wb.pending} pending, {wb.dead} refused, "
            f"{wb.delivered} written",
        ),
        ("last read", f"Flashduty OpenAPI at {wb.last_read}" if wb.last_read else "never"),
    ]
    if wb.dead:
        lines.append(
            (
                "refused",
                f"{wb.dead} write-back(s) ServiceNow refused: see fd-sync outbox list --dead, "
                "fix what ServiceNow names, then fd-sync outbox retry --all",
            )
        )
    if wb.held:
        numbers = sorted(wb.held.values())
        listed = ", ".join(numbers[:10]) + (" ..." if len(numbers) > 10 else "")
        lines.append(
            (
                "held",
                f"{len(numbers)} closed in Flashduty, open in ServiceNow (not paged again "
                f"until ServiceNow closes and reopens them): {listed}",
            )
        )
    return lines


def dead_reason(reason: DeadReason) -> str:
    """Why Flashduty refused events, and what the operator should do about it."""
    status, code, n = reason.http_status, reason.error_code or "", reason.events
    where = f"({reason.destination})"
    if key_rejected(status, code, reason.message):
        return (
            f"Flashduty rejected the integration key {where} (HTTP {status} {code}) for "
            f"{n} event(s): fix the push URL, then run fd-sync outbox retry --all"
        )
    if status == 404:
        return (
            f"Flashduty has no such route {where} (HTTP 404 {code}) for {n} event(s): "
            "check the push URL's path, then run fd-sync outbox retry --all"
        )
    return f"{n} event(s) refused {where} with HTTP {status} {code}: see fd-sync outbox list --dead"
