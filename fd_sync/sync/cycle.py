"""One cycle: fetch changed incidents, reconcile them page by page, deliver the outbox.

This is what ``fd-sync once`` runs and what ``fd-sync run`` repeats. The order
of writes is the safety argument:

1. a page is fetched; nothing is written yet;
2. the page's changed incidents are routed (:mod:`fd_sync.core.routing`) and
   decided; the extras their routes add (members to notify, comments) are
   looked up in batches and rendered into the events (:mod:`fd_sync.sync.enrich`);
   the decisions (ledger rows, outbox rows) and the watermark advance are
   committed together, so the watermark never passes a change whose event is
   not safely queued (the singer "bookmark after hand-off" rule);
3. the outbox is drained, even when the fetch failed part-way: what was
   queued is owed to Flashduty either way.

A crash anywhere leaves the ledger at the end of the last committed page;
the next cycle re-reads from there (minus the look-back) and decides the same
events at most once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from fd_sync import logs
from fd_sync.config import Config
from fd_sync.core import routing
from fd_sync.core.decide import (
    DEFAULT_DESTINATION,
    Decision,
    Kind,
    LedgerEntry,
    is_newer,
    reconcile,
)
from fd_sync.core.incident import BadRecord, Incident, parse_record
from fd_sync.core.payloads import NO_EXTRAS, Extras
from fd_sync.core.watermark import advance, format_sn_time, scan_start
from fd_sync.errors import (
    EX_OK,
    EX_PROTOCOL,
    EX_TEMPFAIL,
    FdSyncError,
    Interrupted,
    StorageError,
)
from fd_sync.servicenow.client import Page, ServiceNowClient
from fd_sync.store.ledger import Ledger
from fd_sync.sync.deletions import DeletionCheck
from fd_sync.sync.delivery import Deliverer, DeliveryReport, Destination, canonical
from fd_sync.sync.enrich import Enricher, Lookups

WATERMARK = "watermark"  # newest sys_updated_on handled
SCAN_FROM = "scan_from"  # set by --since: the next scan starts exactly here
BASELINE_UNTIL = "baseline_until"  # rows last changed up to here predate the install

_unknown_states_logged: set[str] = set()


@dataclass(frozen=True)
class PagePlan:
    """One page, decided: parsed incidents, their decisions, and the rows that were bad."""

    incidents: list[Incident]
    decisions: list[Decision]
    bad: list[tuple[str | None, str, str]]  # (sys_id, reason, sample) for the quarantine
    extras: dict[str, Extras] = field(default_factory=dict)  # by sys_id: what routes add


@dataclass(frozen=True)
class PlannedEvent:
    """An event as --dry-run prints it."""

    number: str
    kind: Kind
    severity: str
    destination: str = DEFAULT_DESTINATION

    def line(self) -> str:
        where = "" if self.destination == DEFAULT_DESTINATION else f" -> {self.destination}"
        return f"{self.number} {self.kind.value} {self.severity}{where}"


@dataclass
class CycleReport:
    run_id: str
    dry_run: bool = False
    pages: int = 0
    fetched: int = 0  # rows read, including look-back re-reads
    changed: int = 0  # rows newer than the ledger's version
    quarantined: int = 0
    events: dict[str, int] = field(
        default_factory=lambda: {"create": 0, "update": 0, "resolve": 0, "cancelled": 0}
    )
    planned: list[PlannedEvent] = field(default_factory=list)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    pending: int = 0
    dead: int = 0
    held: int = 0
    watermark: str | None = None
    error: FdSyncError | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        codes = [EX_OK]
        if self.error is not None:
            codes.append(self.error.exit_code)
        if self.dead or self.held:
            codes.append(EX_PROTOCOL)
        if self.pending - self.held > 0 and not self.dry_run:
            codes.append(EX_TEMPFAIL)
        return max(codes)

    @property
    def outcome(self) -> str:
        if isinstance(self.error, Interrupted) or self.delivery.stopped:
            return "interrupted"
        return {
            0: "ok",
            75: "temporary failure",
            76: "refused",
            77: "access denied",
            78: "configuration",
        }.get(self.exit_code, "failed")

    def stats(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "fetched": self.fetched,
            "changed": self.changed,
            "quarantined": self.quarantined,
            **self.events,
            "delivered": self.delivery.delivered,
            "dead": self.dead,
            "pending": self.pending,
        }

    def summary(self) -> str:
        e = self.events
        text = (
            f"read {self.fetched} incident(s) in {self.pages} page(s), {self.changed} changed; "
            f"queued {e['create']} create, {e['update']} update, {e['resolve']} resolve"
        )
        if e["cancelled"]:
            text += f", cancelled {e['cancelled']}"
        if self.dry_run:
            return text + " (dry run: nothing sent, ledger unchanged)"
        text += f"; delivered {self.delivery.delivered}, pending {self.pending}, dead {self.dead}"
        if self.quarantined:
            text += f"; quarantined {self.quarantined} bad row(s)"
        return text


def _new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class Cycle:
    """Runs cycles against one ledger. Collaborators are passed in, so tests can replace them."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        servicenow: ServiceNowClient,
        destinations: Mapping[str, Destination],
        *,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.servicenow = servicenow
        self.destinations = destinations
        self.should_stop = should_stop
        self.progress = progress  # called after each page and each event: the daemon's pulse
        self.clock = clock
        self.log = logs.get("cycle")

    def run(
        self,
        *,
        since: datetime | None = None,
        dry_run: bool = False,
        command: str = "once",
        fetch: bool = True,
    ) -> CycleReport:
        """One cycle. ``fetch=False`` only drains the outbox (the daemon does that while it
        waits out a ServiceNow credential problem)."""
        report = CycleReport(run_id=_new_run_id(), dry_run=dry_run)
        started = self.clock()
        with structlog.contextvars.bound_contextvars(run_id=report.run_id):
            self.log.info(
                "cycle_started",
                command=command,
                dry_run=dry_run,
                since=format_sn_time(since) if since else None,
            )
            run_row = None if dry_run else self.ledger.start_run(report.run_id, command)
            try:
                if fetch:
                    self._fetch(report, since=since, dry_run=dry_run)
            except StorageError:
                raise  # the ledger itself failed: delivering from it is not safe
            except FdSyncError as exc:
                report.error = exc
                self.log.error("fetch_failed", error=str(exc), exit_code=exc.exit_code)
            if not dry_run:
                deliverer = Deliverer(
                    self.ledger,
                    self.destinations,
                    instance_url=self.config.servicenow.instance_url,
                    table=self.config.servicenow.table,
                    should_stop=self.should_stop,
                    progress=self.progress,
                )
                report.delivery = deliverer.drain()
                self._count_outbox(report)
                self.ledger.purge_finished()
            report.seconds = self.clock() - started
            report.watermark = self.ledger.get_state(WATERMARK) if not dry_run else None
            if run_row is not None:
                self.ledger.finish_run(
                    run_row,
                    outcome=report.outcome,
                    exit_code=report.exit_code,
                    message=self._message(report),
                    stats=report.stats(),
                )
            self.log.info(
                "cycle_finished",
                outcome=report.outcome,
                exit_code=report.exit_code,
                seconds=round(report.seconds, 3),
                **report.stats(),
            )
        return report

    def _message(self, report: CycleReport) -> str:
        parts = []
        if report.error is not None:
            parts.append(str(report.error))
        for name, why in report.delivery.down.items():
            parts.append(f"Flashduty ({name}) unavailable: {why}")
        if report.dead:
            parts.append(f"{report.dead} dead event(s) wait for an operator")
        return "; ".join(parts) or report.summary()

    def _count_outbox(self, report: CycleReport) -> None:
        outbox = self.ledger.summary()["outbox"]
        report.pending = outbox["pending"]
        report.dead = outbox["dead"]
        report.held = outbox["blocked"]

    # --- fetch and reconcile ------------------------------------------------------------

    def _fetch(self, report: CycleReport, *, since: datetime | None, dry_run: bool) -> None:
        ledger = self.ledger
        lookback = self.config.sync.lookback_seconds
        if since is not None:
            low = format_sn_time(since)
            if not dry_run:
                # Recorded before the first fetch: an interrupted backfill resumes here.
                with ledger.transaction():
                    ledger.set_state(WATERMARK, low)
                    ledger.set_state(SCAN_FROM, low)
                    ledger.set_state(BASELINE_UNTIL, None)
            baseline_until = None
            watermark: str | None = low
        else:
            watermark = ledger.get_state(WATERMARK)
            baseline_until = ledger.get_state(BASELINE_UNTIL)
            if watermark is None:
                watermark, baseline_until = self._first_run_start(dry_run)
            low = ledger.get_state(SCAN_FROM) or scan_start(watermark, lookback)
        self.log.info("scan_started", low=low, watermark=watermark)

        overlay: dict[str, LedgerEntry] = {}  # dry run: decisions the ledger did not keep
        enricher = Enricher(
            Lookups(self.servicenow),  # a fresh cache per cycle: people and groups change
            sync_comments=self.config.servicenow.sync_comments,
            severity_by=self.config.routing.severity_by,
        )
        for page in self.servicenow.scan(low):
            report.pages += 1
            plan = self._decide(page, overlay, baseline_until, enricher)
            report.fetched += len(plan.incidents)
            report.changed += len(plan.decisions)
            report.quarantined += len(plan.bad)
            watermark = advance(watermark, page.cursor[0], page.server_now)
            if dry_run:
                self._preview(plan, report, overlay)
            else:
                self._commit(plan, report, watermark)
            self.progress()
            self.log.debug(
                "page_done",
                page=report.pages,
                rows=page.raw_count,
                decisions=len(plan.decisions),
                watermark=watermark,
            )
            if self.should_stop():
                self.log.info("scan_interrupted", reason="stop requested", watermark=watermark)
                return
        if not dry_run:
            self._deletions(report)

    def _deletions(self, report: CycleReport) -> None:
        """Every deletion_check_seconds: resolve the alerts of deleted incidents."""
        check = DeletionCheck(
            self.ledger,
            self.servicenow,
            table=self.config.servicenow.table,
            interval_seconds=self.config.sync.deletion_check_seconds,
            lookback_seconds=self.config.sync.lookback_seconds,
            run_id=report.run_id,
            progress=self.progress,
        )
        if check.due():
            for kind, n in check.run().items():
                report.events[kind] += n

    def _decide(
        self,
        page: Page,
        overlay: Mapping[str, LedgerEntry],
        baseline_until: str | None,
        enricher: Enricher,
    ) -> PagePlan:
        """Parse, route and decide a page, and render its events' extras; writes nothing."""
        incidents, bad = self._parse(page.records)
        entries = self.ledger.entries(i.sys_id for i in incidents)
        entries.update({i.sys_id: overlay[i.sys_id] for i in incidents if i.sys_id in overlay})
        entries = {k: canonical(e, self.destinations) for k, e in entries.items()}
        changed = {
            i.sys_id for i in incidents if i.sys_id not in entries or is_newer(i, entries[i.sys_id])
        }
        incidents = enricher.with_comments(incidents, changed)
        matches = {
            i.sys_id: routing.route(i, self.config.routing)
            for i in incidents
            if i.sys_id in changed
        }
        targets = {sys_id: m.target for sys_id, m in matches.items()}
        decisions = reconcile(incidents, entries, targets=targets, baseline_until=baseline_until)
        self._note_unknown_states(decisions)
        pins = self.ledger.pins(d.incident.sys_id for d in decisions if d.entry.pinned)
        extras = enricher.extras(decisions, matches, pins)
        return PagePlan(incidents, decisions, bad, extras)

    def _commit(self, plan: PagePlan, report: CycleReport, watermark: str) -> None:
        """Rows, events and the watermark advance: one transaction, all or nothing."""
        with self.ledger.transaction("record a page"):
            counts = self.ledger.record(plan.decisions, run_id=report.run_id, extras=plan.extras)
            for sys_id, reason, sample in plan.bad:
                self.ledger.quarantine(sys_id, reason, sample)
            self.ledger.set_state(WATERMARK, watermark)
            self.ledger.set_state(SCAN_FROM, None)
        for kind, n in counts.items():
            report.events[kind] += n
        for d in plan.decisions:
            if d.cancel_pending:
                self.log.info("events_cancelled", number=d.incident.number, reason=d.why)

    def _preview(
        self, plan: PagePlan, report: CycleReport, overlay: dict[str, LedgerEntry]
    ) -> None:
        """Dry run: remember the decisions in memory only, so later pages build on them."""
        overlay.update({d.incident.sys_id: d.entry for d in plan.decisions})
        report.planned.extend(self._plan(plan.decisions, plan.extras))
        for d in plan.decisions:
            for event in d.events:
                report.events[event.kind.value] += 1
            if d.cancel_pending:
                report.events["cancelled"] += 1

    def _first_run_start(self, dry_run: bool) -> tuple[str, str | None]:
        """Start at the newest change in the table: nothing before the install is pushed.

        Rows last changed up to that change (and never later than ServiceNow's
        clock, in case it is future-dated) are recorded without events.
        """
        newest, server_now = self.servicenow.newest()
        start = advance(None, newest or format_sn_time(server_now), server_now)
        baseline = min(newest, format_sn_time(server_now)) if newest else None
        self.log.info(
            "first_run_baseline",
            start=start,
            baseline_until=baseline,
            note="changes up to baseline_until are recorded without events",
        )
        if not dry_run:
            with self.ledger.transaction():
                self.ledger.set_state(WATERMARK, start)
                self.ledger.set_state(BASELINE_UNTIL, baseline)
        return start, baseline

    def _parse(
        self, records: list[Any]
    ) -> tuple[list[Incident], list[tuple[str | None, str, str]]]:
        incidents: list[Incident] = []
        bad: list[tuple[str | None, str, str]] = []
        for raw in records:
            try:
                incidents.append(parse_record(raw, self.config.servicenow.extra_fields))
            except BadRecord as exc:
                sys_id = raw.get("sys_id") if isinstance(raw, dict) else None
                sys_id = sys_id if isinstance(sys_id, str) else None
                sample = json.dumps(raw, ensure_ascii=True, default=str)[:2000]
                self.log.warning("record_quarantined", sys_id=sys_id, reason=str(exc))
                bad.append((sys_id, str(exc), sample))
        return incidents, bad

    def _note_unknown_states(self, decisions: list[Decision]) -> None:
        for d in decisions:
            state = d.incident.state
            if d.unknown_state and state not in _unknown_states_logged:
                _unknown_states_logged.add(state)
                self.log.warning(
                    "unknown_state_treated_as_open", state=state, number=d.incident.number
                )

    def _plan(self, decisions: list[Decision], extras: dict[str, Extras]) -> list[PlannedEvent]:
        planned = []
        for d in decisions:
            severity = extras.get(d.incident.sys_id, NO_EXTRAS).severity
            for event in d.events:
                shown = "Ok" if event.kind is Kind.RESOLVE else severity or "Warning"
                planned.append(
                    PlannedEvent(d.incident.number, event.kind, shown, event.destination)
                )
        return planned
