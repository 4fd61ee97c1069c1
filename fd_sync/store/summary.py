"""What ``fd-sync status`` shows of a ledger: read-only, from every table at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fd_sync.store.outbox import OutboxEvent
from fd_sync.store.queue import DeadReason, QueueCounts
from fd_sync.store.records import FailoverRecord, LeaderRecord, StandbyRecord
from fd_sync.store.runs import LastRun
from fd_sync.store.state import (
    COMMANDS_SEEN_AT,
    FLASHDUTY_READ,
    LAST_FAILOVER,
    LEADER,
    MISSING_INCIDENTS,
    STANDBY_CHECK_IN_SECONDS,
    STANDBY_PREFIX,
    TICKETS_SINCE,
    UNMATCHED_PEOPLE,
    WATERMARK,
)

if TYPE_CHECKING:
    from fd_sync.store.ledger import Ledger


@dataclass(frozen=True)
class HighAvailability:
    """Who runs the cycles of a shared (PostgreSQL) ledger, as `fd-sync status` shows it."""

    leader: LeaderRecord | None
    holder: str | None  # the session holding the leader lock now ("fd-sync leader host:pid")
    standbys: list[StandbyRecord]  # those checked in lately
    last_failover: FailoverRecord | None
    replica: bool = False  # read from a replica: locks (so who leads) are the primary's only


@dataclass(frozen=True)
class WritebackSummary:
    """The Flashduty -> ServiceNow direction, as `fd-sync status` shows it."""

    watched: int  # Flashduty incidents whose timeline is read each cycle
    unlinked: int  # alerts whose Flashduty incident is still to be found
    pending: int
    dead: int
    delivered: int
    held: dict[str, str]  # closed in Flashduty, open in ServiceNow: sys_id -> number
    last_read: str | None


@dataclass(frozen=True)
class TicketsSummary:
    """Tickets from Flashduty, as `fd-sync status` shows them."""

    tracked: int  # tickets opened, all time
    opened_last_day: int
    creates: QueueCounts  # POSTs owed to ServiceNow
    writes: QueueCounts  # OpenAPI writes owed to the tickets' Flashduty incidents
    newest_start: int  # the newest Flashduty incident start seen (Unix seconds), 0: none
    since: str | None  # incidents starting before this open no ticket (first run, ISO)

    @property
    def dead(self) -> int:
        return self.creates.dead + self.writes.dead


@dataclass(frozen=True)
class Summary:
    database: str
    watermark: str | None
    incidents_tracked: int
    open_alerts: int
    outbox: QueueCounts
    dead_reasons: list[DeadReason]
    missing_incidents: list[dict[str, Any]]  # open alerts whose incident ServiceNow hides
    quarantined: int
    last_run: LastRun | None
    last_success_at: str | None
    writeback: WritebackSummary | None = None
    backend: str = "sqlite"
    high_availability: HighAvailability | None = None  # PostgreSQL only
    oldest_dead: str | None = None  # the oldest item a remote refused for good, described
    commands: QueueCounts = field(default_factory=QueueCounts)  # /flashduty notes answered
    commands_seen_at: str | None = None  # when the journal last returned a command note
    tickets: TicketsSummary | None = None
    unmatched_people: dict[str, str] = field(default_factory=dict)  # email -> why not assigned
    api_budgets: dict[str, Any] = field(default_factory=dict)  # as the last cycle left them

    @property
    def dead(self) -> int:
        """Items refused for good in every queue: someone was not paged, a responder's
        action never reached ServiceNow, or a ticket was not opened."""
        return (
            self.outbox.dead
            + (self.writeback.dead if self.writeback else 0)
            + (self.tickets.dead if self.tickets else 0)
        )


def summarize(ledger: Ledger) -> Summary:
    return Summary(
        database=str(ledger.location),
        watermark=ledger.state.get(WATERMARK),
        incidents_tracked=ledger.incidents.count(),
        open_alerts=ledger.incidents.open_count(),
        outbox=ledger.outbox.counts(),
        dead_reasons=ledger.outbox.dead_reasons(),
        missing_incidents=ledger.state.get_json(MISSING_INCIDENTS, []),
        quarantined=ledger.quarantine.count(),
        last_run=ledger.runs.last(),
        last_success_at=ledger.runs.last_success_at(),
        writeback=writeback_summary(ledger),
        backend=ledger.db.backend,
        high_availability=high_availability(ledger),
        oldest_dead=oldest_dead(ledger),
        commands=ledger.commands.counts(),
        commands_seen_at=ledger.state.get(COMMANDS_SEEN_AT),
        tickets=tickets_summary(ledger),
        unmatched_people=dict(ledger.state.get_json(UNMATCHED_PEOPLE) or {}),
        api_budgets=ledger.api_budgets(),
    )


def tickets_summary(ledger: Ledger) -> TicketsSummary:
    tracked, last_day = ledger.tickets.counts(ledger.clock() - timedelta(days=1))
    since = ledger.state.get(TICKETS_SINCE)
    return TicketsSummary(
        tracked=tracked,
        opened_last_day=last_day,
        creates=ledger.ticket_creates.counts(),
        writes=ledger.flashduty_writes.counts(),
        newest_start=ledger.tickets.newest_start(),
        since=datetime.fromtimestamp(int(since), UTC).isoformat() if since else None,
    )


def oldest_dead(ledger: Ledger) -> str | None:
    """The oldest dead item of any queue, as `status` names it."""
    found = [item for queue in ledger.queues if (item := queue.oldest_dead()) is not None]
    if not found:
        return None
    item = min(found, key=lambda i: i.created_at)
    if isinstance(item, OutboxEvent):
        code = f" {item.error_code}" if item.error_code else ""
        return (
            f"event {item.label} ({item.number} {item.kind.value} to {item.destination}, "
            f"queued {item.created_at}): HTTP {item.http_status}{code}"
        )
    why = item.error_message or f"HTTP {item.http_status}"
    noun = {"w": "write-back", "t": "ticket create", "f": "Flashduty write"}.get(
        item.label.rstrip("0123456789"), "item"
    )
    return f"{noun} {item.label} ({item.number}, queued {item.created_at}): {why}"


def high_availability(ledger: Ledger) -> HighAvailability | None:
    if ledger.db.backend == "sqlite":
        return None
    now = ledger.clock()
    standbys = [
        record
        for value in ledger.state.with_prefix(STANDBY_PREFIX).values()
        if (record := StandbyRecord.from_json(value)) is not None
        and (now - datetime.fromisoformat(record.seen_at)).total_seconds()
        <= 3 * STANDBY_CHECK_IN_SECONDS
    ]
    return HighAvailability(
        replica=bool(ledger.db.scalar("SELECT pg_is_in_recovery()")),
        leader=LeaderRecord.from_json(ledger.state.get_json(LEADER)),
        holder=ledger.db.lock_holder("leader"),
        standbys=sorted(standbys, key=lambda r: (r.host, r.pid)),
        last_failover=FailoverRecord.from_json(ledger.state.get_json(LAST_FAILOVER)),
    )


def writeback_summary(ledger: Ledger) -> WritebackSummary:
    watched, unlinked = ledger.links.counts()
    counts = ledger.writeback.counts()
    return WritebackSummary(
        watched=watched,
        unlinked=unlinked,
        pending=counts.pending,
        dead=counts.dead,
        delivered=counts.delivered,
        held=ledger.incidents.held(),
        last_read=ledger.state.get(FLASHDUTY_READ),
    )
