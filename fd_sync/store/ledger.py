"""The ledger: the one place that commits. Every atomic step of fd-sync is a method here.

Tables (``state``, ``incidents``, ``outbox``, ``writeback``, ``links``, ``runs``,
``quarantine``) never commit; each step below is one transaction over them, named for
what it means, with its crash argument. Callers never see SQL nor open a transaction
(a test holds every module outside :mod:`fd_sync.store` to that).

Concurrency contract: one process changes incidents and the queues at a time. Callers
open the ledger with :meth:`Ledger.for_writing`, which holds the run lock (an flock beside
a SQLite file; an advisory lock of the very session that writes, on PostgreSQL); readers
such as ``fd-sync status`` may open the ledger at any moment.

Durability contract: a step is all or nothing, so a crash at any point leaves the ledger
as it was after the last whole step; the order of steps (attempt before send, delivered
after the answer, the watermark with the page's events) is what makes a crash repeat at
most one write and lose none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fd_sync.core.decide import Decision, Kind, LedgerEntry
from fd_sync.core.feed import FeedCursor
from fd_sync.core.location import LedgerLocation, PostgresLedger
from fd_sync.core.payloads import Extras
from fd_sync.core.tickets import OwedWrite
from fd_sync.store import backends
from fd_sync.store.backends.sqlite import MEMORY
from fd_sync.store.commands import Command, CommandQueue, CommandSteps
from fd_sync.store.db import Database
from fd_sync.store.incidents import Incidents
from fd_sync.store.links import Links
from fd_sync.store.outbox import Acknowledged, Outbox, OutboxEvent
from fd_sync.store.quarantine import Quarantine
from fd_sync.store.queue import HISTORY, PURGE_BATCH, DurableQueue, Failure, QueuedItem
from fd_sync.store.records import LeadershipSteps
from fd_sync.store.remote_state import RemoteSteps
from fd_sync.store.runs import Runs
from fd_sync.store.state import (
    BASELINE_UNTIL,
    DELETIONS_CHECKED,
    MISSING_INCIDENTS,
    SCAN_FROM,
    WATERMARK,
    WRITEBACK_HOLD,
    State,
)
from fd_sync.store.summary import Summary, summarize
from fd_sync.store.ticket_steps import TicketForward, TicketSteps
from fd_sync.store.tickets import FlashdutyWriteQueue, TicketCreateQueue, Tickets
from fd_sync.store.times import iso, utc_now
from fd_sync.store.writeback import Write, WritebackQueue
from fd_sync.store.writeback_steps import WritebackSteps


@dataclass(frozen=True)
class AdoptedAlert:
    """An alert opened before fd-sync, linked as if fd-sync had sent it."""

    sys_id: str
    number: str
    alert_key: str
    destination: str
    incident_id: str | None
    # How far its Flashduty timeline counts as written back already: an adopted incident's
    # older entries were the old integration's to write (or are, with --notes-since).
    cursor: FeedCursor = field(default_factory=FeedCursor)


class Ledger(WritebackSteps, LeadershipSteps, CommandSteps, TicketSteps, RemoteSteps):
    def __init__(
        self,
        location: LedgerLocation | Database,
        *,
        readonly: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """Open the ledger at ``location`` (a SQLite path or a PostgreSQL URL), or wrap a
        connection already open (the daemon's, which holds its locks)."""
        self.db = (
            location
            if isinstance(location, Database)
            else backends.connect(location, readonly=readonly)
        )
        self.location = self.db.location
        self.clock = clock
        self.readonly = self.db.readonly
        self.state = State(self.db)
        self.incidents = Incidents(self.db)
        self.outbox = Outbox(self.db, clock)
        self.writeback = WritebackQueue(self.db, clock)
        self.runs = Runs(self.db, clock)
        self.quarantine = Quarantine(self.db, clock)
        self.links = Links(self.db)
        self.commands = CommandQueue(self.db, clock)
        self.tickets = Tickets(self.db)
        self.ticket_creates = TicketCreateQueue(self.db, clock)
        self.flashduty_writes = FlashdutyWriteQueue(self.db, clock)

    @property
    def queues(self) -> tuple[DurableQueue[Any], ...]:
        """Every durable queue, each direction once (`outbox list` shows them all)."""
        return (
            self.outbox,
            self.writeback,
            self.commands,
            self.ticket_creates,
            self.flashduty_writes,
        )

    @classmethod
    def scratch(cls, *, clock: Callable[[], datetime] = utc_now) -> Ledger:
        """An empty in-memory ledger: what a dry run uses when no ledger file exists yet."""
        return cls(Path(MEMORY), clock=clock)

    @classmethod
    def for_reading(cls, location: LedgerLocation) -> Ledger:
        """The ledger read-only, or an empty scratch one before the first run created it."""
        if isinstance(location, PostgresLedger):
            db = backends.connect(location, readonly=True, allow_empty=True)
            if db.has_schema:
                return cls(db)
            db.close()
            return cls.scratch()
        return cls(location, readonly=True) if Path(location).exists() else cls.scratch()

    @classmethod
    @contextlib.contextmanager
    def for_writing(
        cls, location: LedgerLocation, *, wait_seconds: float, **connect: Any
    ) -> Iterator[Ledger]:
        """The ledger for a command that changes it: under the run lock, migrated under it."""
        db = backends.connect(location, migrate=False, **connect)
        try:
            with db.run_lock(wait_seconds):
                db.migrate()
                yield cls(db)
        finally:
            db.close()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self, doing: str = "write the ledger") -> Iterator[None]:
        """All or nothing. The steps below use it; nothing outside the store does."""
        with self.db.transaction(doing):
            yield

    # --- reads ------------------------------------------------------------------------------

    def entries(self, sys_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        """Ledger rows for these incidents, with whether their open alert may be at Flashduty."""
        rows = self.incidents.entries_as_stored(dict.fromkeys(sys_ids))
        if rows:
            for sys_id in self.outbox.untried_creates(rows) & rows.keys():
                rows[sys_id] = replace(rows[sys_id], alert_reached=False)
        return rows

    def summary(self) -> Summary:
        return summarize(self)

    # --- the ServiceNow -> Flashduty scan ---------------------------------------------------

    def _record(
        self,
        decisions: Sequence[Decision],
        *,
        run_id: str,
        extras: Mapping[str, Extras] | None = None,
        pins: Mapping[str, Extras] | None = None,
    ) -> dict[str, int]:
        """Decisions: ledger rows, queued events, cancellations (inside a step)."""
        counts = dict.fromkeys(("create", "update", "resolve", "cancelled"), 0)
        self.incidents.upsert(decisions, now=iso(self.clock()), pins=pins or {})
        for d in decisions:
            if d.cancel_pending:
                counts["cancelled"] += self.outbox.cancel_untried_alert(d.incident.sys_id)
        counts.update(self.outbox.enqueue(decisions, extras=extras or {}, run_id=run_id))
        return counts

    def record_page(
        self,
        decisions: Sequence[Decision],
        *,
        extras: Mapping[str, Extras],
        quarantined: Iterable[tuple[str | None, str, str]],
        watermark: str,
        run_id: str,
        forwards: Sequence[TicketForward] = (),
        owed: Sequence[OwedWrite] = (),
    ) -> dict[str, int]:
        """A page's rows, events, quarantined rows and OpenAPI writes owed to Flashduty, and
        the watermark past them: the watermark never passes a change whose event is not
        queued (singer's rule); a crash re-reads the page and decides the same at most once."""
        with self.transaction("record a page"):
            counts = self._record(decisions, run_id=run_id, extras=extras)
            counts["forwarded"] = self._record_forwards(forwards, owed, run_id=run_id)
            for sys_id, reason, sample in quarantined:
                self.quarantine.keep(sys_id, reason, sample)
            self.state.set(WATERMARK, watermark)
            self.state.set(SCAN_FROM, None)
        return counts

    def begin_backfill(self, watermark: str, scan_from: str) -> None:
        """``--since``: recorded before the first fetch, so an interrupted backfill resumes."""
        with self.transaction("record the backfill's start"):
            self.state.set(WATERMARK, watermark)
            self.state.set(SCAN_FROM, scan_from)
            self.state.set(BASELINE_UNTIL, None)

    def begin_first_run(self, watermark: str, baseline_until: str | None) -> None:
        """The first run starts at the newest change; older rows are recorded without events."""
        with self.transaction("record the first run's start"):
            self.state.set(WATERMARK, watermark)
            self.state.set(BASELINE_UNTIL, baseline_until)

    def record_writeback_hold(self, hold: Mapping[str, str] | None) -> None:
        """Updates held while Flashduty cannot be read (since, until, why), for `outbox
        list`; None: nothing held."""
        if self.state.get(WRITEBACK_HOLD) is None and hold is None:
            return  # the common case costs one read, no write
        with self.transaction("record the write-back's hold"):
            self.state.set_json(WRITEBACK_HOLD, dict(hold) if hold else None)

    def writeback_hold(self) -> dict[str, str] | None:
        found = self.state.get_json(WRITEBACK_HOLD)
        return found if isinstance(found, dict) else None

    def record_dispatch(
        self, decision: Decision, *, extras: Extras, pin: Extras, run_id: str
    ) -> None:
        """A dispatch's events and its pin, together: the pin never exists without them."""
        sys_id = decision.incident.sys_id
        with self.transaction("record the dispatch"):
            self._record([decision], run_id=run_id, extras={sys_id: extras}, pins={sys_id: pin})

    def record_adoption(
        self, decisions: Sequence[Decision], alerts: Sequence[AdoptedAlert]
    ) -> None:
        """Adopted alerts and their links, together: a crash adopts all or none."""
        with self.transaction("adopt alerts"):
            self._record(decisions, run_id="adopt")
            for a in alerts:
                self.links.sent(
                    a.sys_id,
                    a.number,
                    alert_key=a.alert_key,
                    destination=a.destination,
                    sent_at=iso(self.clock()),
                )
                if a.incident_id:
                    self.links.link(a.sys_id, a.incident_id)
                self.links.record_read(
                    a.sys_id,
                    progress="",
                    updated_at=0,
                    read_at=0,
                    cursor=a.cursor,
                    watching=True,
                )

    # --- deletions ---------------------------------------------------------------------------

    def begin_deletion_checks(self, checked: str) -> None:
        """The first check starts now: no alert predates it."""
        with self.transaction("record the deletion check"):
            self.state.set(DELETIONS_CHECKED, checked)

    def record_deletions(
        self, decisions: Sequence[Decision], *, checked: str, run_id: str
    ) -> dict[str, int]:
        """A page of deletions' resolves with the check's watermark past them."""
        with self.transaction("record deletions"):
            counts = self._record(decisions, run_id=run_id)
            self.state.set(DELETIONS_CHECKED, checked)
        return counts

    def finish_deletion_check(self, checked: str, *, missing: list[dict[str, str]] | None) -> None:
        """The check is done up to ``checked``; ``missing`` (None: the audit speaks for them)
        lists open alerts whose incident ServiceNow no longer returns."""
        with self.transaction("record the deletion check"):
            self.state.set_json(MISSING_INCIDENTS, missing)
            if checked:
                self.state.set(DELETIONS_CHECKED, checked)

    # --- delivery to Flashduty -------------------------------------------------------------

    def attempt(self, event: OutboxEvent, *, acknowledging: Acknowledged | None) -> None:
        """Committed before ``event`` is sent, with the delivered mark of the event before
        it (one commit per event): a crash after a send and before this commit re-sends that
        one event on the next run, never loses it."""
        with self.transaction("record a delivery attempt"):
            self._mark_acknowledged(acknowledging)
            self.outbox.mark_attempt([event.id])

    def record_acknowledged(self, acknowledged: Acknowledged | None) -> None:
        """The last acknowledged event's delivered mark, when no attempt follows it."""
        if acknowledged is None:
            return  # nothing to commit: no empty transaction at the end of every drain
        with self.transaction("record a delivery"):
            self._mark_acknowledged(acknowledged)

    def _mark_acknowledged(self, acknowledged: Acknowledged | None) -> None:
        if acknowledged is None:
            return
        event = acknowledged.event
        self.outbox.mark_delivered(
            [event.id], http_status=acknowledged.http_status, request_id=acknowledged.request_id
        )
        if event.kind is Kind.CREATE:
            # A new alert: the write-back looks for its Flashduty incident from now on.
            self.links.sent(
                event.sys_id,
                event.number,
                alert_key=acknowledged.alert_key,
                destination=event.destination,
                sent_at=iso(self.clock()),
            )

    def record_failure(
        self, queue: DurableQueue[Any], ids: Sequence[int], *, dead: bool, failure: Failure
    ) -> None:
        """Why an attempt failed: dead (kept for an operator) or pending for the next run."""
        with self.transaction("record a failed attempt"):
            queue.mark_failed(ids, dead=dead, failure=failure)

    def cancel_event(self, event_id: int) -> None:
        """An update a later resolve makes moot."""
        with self.transaction("cancel an event"):
            self.outbox.cancel(event_id)

    def purge_finished(self, older_than: timedelta = HISTORY, *, batches: int = 10) -> int:
        """Forget what every queue finished before ``older_than`` ago (dead items stay), a
        batch per transaction and at most ``batches`` per call: a long history is worked off
        over cycles, never in one long lock. Returns how many went."""
        gone = 0
        for queue in self.queues:
            for _ in range(batches):
                with self.transaction("purge finished items"):
                    went = queue.purge_finished(older_than)
                gone += went
                if went < PURGE_BATCH:
                    break
        return gone

    # --- operators ---------------------------------------------------------------------------

    def retry(self, queue: DurableQueue[Any], item_id: int | None) -> tuple[int, int]:
        """Dead items back to pending: (requeued, cancelled as moot)."""
        with self.transaction(f"requeue dead {queue.table} items"):
            return queue.retry_dead(item_id)

    def drop(self, item: QueuedItem) -> int:
        """Give up on an item. Dropping a create gives up on its whole alert: its queued
        events go too, and the incident counts as having no alert, so its next change in
        ServiceNow opens a new one. Returns how many items were dropped."""
        with self.transaction("drop a queued item"):
            if isinstance(item, OutboxEvent):
                count = self.outbox.drop(item)
                if item.kind is Kind.CREATE:
                    self.incidents.forget_alert(item.sys_id)
                return count
            if isinstance(item, Write):
                return self.writeback.drop(item)
            assert isinstance(item, Command)
            return self.commands.drop(item)

    def start_run(self, run_id: str, command: str) -> int:
        with self.transaction("record the run"):
            return self.runs.start(run_id, command)

    def finish_run(
        self, row_id: int, *, outcome: str, exit_code: int, message: str, stats: dict[str, Any]
    ) -> None:
        with self.transaction("record the run"):
            self.runs.finish(
                row_id, outcome=outcome, exit_code=exit_code, message=message, stats=stats
            )
