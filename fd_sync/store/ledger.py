"""The ledger: incidents as last acted on, the outbox, the state, run history.

Concurrency contract: one process changes incidents and the outbox at a time.
Callers open the ledger with :meth:`Ledger.for_writing`, which holds the run lock
(an flock beside a SQLite file; an advisory lock of the very session that writes, on
PostgreSQL); readers such as ``fd-sync status`` may open the ledger at any moment, and
small state writes (the daemon's status) rely on the engine's own locking.

Durability contract: a page's incident rows, its outbox rows and the watermark
advance are written in one transaction (:meth:`Ledger.transaction`), so a crash
at any point leaves the ledger as it was after the last whole page.

The rest of fd-sync talks to this class and its tables (``state``,
``incidents``, ``outbox``, ``runs``, ``quarantine``), never to SQLite or PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from fd_sync.core.decide import Decision, Kind, LedgerEntry
from fd_sync.core.location import LedgerLocation, PostgresLedger
from fd_sync.core.payloads import NO_EXTRAS, Extras
from fd_sync.store import backends
from fd_sync.store.backends.sqlite import MEMORY
from fd_sync.store.db import Database
from fd_sync.store.incidents import Incidents
from fd_sync.store.links import Links
from fd_sync.store.outbox import PENDING, DeadReason, Outbox, OutboxCounts, OutboxEvent
from fd_sync.store.quarantine import Quarantine
from fd_sync.store.runs import LastRun, Runs
from fd_sync.store.state import (
    FLASHDUTY_READ,
    LAST_FAILOVER,
    LEADER,
    MISSING_INCIDENTS,
    STANDBY_CHECK_IN_SECONDS,
    STANDBY_PREFIX,
    WATERMARK,
    State,
)
from fd_sync.store.times import iso, utc_now
from fd_sync.store.writeback import WritebackQueue

_SNAPSHOT_JSON = json.JSONEncoder(ensure_ascii=False)  # built once, not per json.dumps call


@dataclass(frozen=True)
class Summary:
    """What `fd-sync status` shows of a ledger."""

    database: str
    watermark: str | None
    incidents_tracked: int
    open_alerts: int
    outbox: OutboxCounts
    dead_reasons: list[DeadReason]
    missing_incidents: list[dict[str, Any]]  # open alerts whose incident ServiceNow hides
    quarantined: int
    last_run: LastRun | None
    last_success_at: str | None
    writeback: WritebackSummary | None = None
    backend: str = "sqlite"
    high_availability: HighAvailability | None = None  # PostgreSQL only


@dataclass(frozen=True)
class HighAvailability:
    """Who runs the cycles of a shared (PostgreSQL) ledger, as `fd-sync status` shows it."""

    leader: dict[str, Any] | None  # the leader's record: host, pid, since (stopped_at)
    holder: str | None  # the session holding the leader lock now ("fd-sync leader host:pid")
    standbys: list[dict[str, Any]]  # host, pid, since, seen_at: those checked in lately
    last_failover: dict[str, Any] | None


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


class Ledger:
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
        self.runs = Runs(self.db, clock)
        self.quarantine = Quarantine(self.db, clock)
        self.links = Links(self.db)
        self.writeback = WritebackQueue(self.db, clock)

    @classmethod
    def scratch(cls, *, clock: Callable[[], datetime] = utc_now) -> Ledger:
        """An empty in-memory ledger: what a dry run uses when no ledger file exists yet."""
        return cls(Path(MEMORY), clock=clock)

    @classmethod
    def for_reading(cls, location: LedgerLocation) -> Ledger:
        """The ledger read-only, or an empty scratch one before the first run created it."""
        if isinstance(location, PostgresLedger):
            db = backends.connect(location, readonly=True, allow_empty=True)
            return cls(db) if db.has_schema else _scratch_after(db)
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
        """All or nothing: a page, an outbox transition, a run record."""
        with self.db.transaction(doing):
            yield

    # --- what a cycle reads and writes --------------------------------------------------

    def entries(self, sys_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        """Ledger rows for these incidents, with whether their open alert may be at Flashduty."""
        ids = list(dict.fromkeys(sys_ids))
        rows = self.incidents.entries(ids)
        if rows:
            for sys_id in self.outbox.untried_creates(rows) & rows.keys():
                rows[sys_id] = replace(rows[sys_id], alert_reached=False)
        return rows

    def record(
        self,
        decisions: Sequence[Decision],
        *,
        run_id: str,
        extras: Mapping[str, Extras] | None = None,
        pins: Mapping[str, Extras] | None = None,
    ) -> dict[str, int]:
        """Write decisions: ledger rows, queued events, cancellations. Call inside a transaction.

        ``extras`` (by sys_id) go with each incident's create and update events;
        ``pins`` are the choices of a dispatch, kept while the incident stays pinned.
        """
        now = iso(self.clock())
        counts = dict.fromkeys(("create", "update", "resolve", "cancelled"), 0)
        incident_rows = []
        events = []
        cancels = []
        for d in decisions:
            inc = d.incident
            snapshot = _SNAPSHOT_JSON.encode(inc.to_dict())  # the row's, and a resolve's
            pin = (pins or {}).get(inc.sys_id)
            incident_rows.append(
                (
                    inc.sys_id,
                    inc.number,
                    d.entry.updated_on,
                    d.entry.mod_count,
                    inc.state,
                    int(d.entry.alert_open),
                    d.entry.fingerprint,
                    snapshot,
                    now,
                    d.entry.destination,
                    int(d.entry.pinned),
                    json.dumps(pin.to_dict(), ensure_ascii=False) if pin else None,
                    int(d.entry.held),
                )
            )
            if d.cancel_pending:
                cancels.append(inc.sys_id)
            added = (extras or {}).get(inc.sys_id, NO_EXTRAS)
            for event in d.events:
                counts[event.kind.value] += 1
                payload = snapshot
                if event.kind is not Kind.RESOLVE:
                    body = inc.to_dict()
                    body["extras"] = added.to_dict()
                    payload = _SNAPSHOT_JSON.encode(body)
                row = (inc.sys_id, inc.number, event.kind.value, event.destination, payload)
                events.append((*row, PENDING.value, run_id, now))
        self.incidents.upsert(incident_rows)
        for sys_id in cancels:
            counts["cancelled"] += self.outbox.cancel_untried_alert(sys_id)
        self.outbox.enqueue(events)
        return counts

    def drop(self, event: OutboxEvent) -> int:
        """Give up on an event. Dropping a create gives up on its whole alert: its queued
        events go too, and the incident counts as having no alert, so its next change in
        ServiceNow opens a new one. Returns how many events were dropped."""
        with self.transaction("drop an event"):
            count = self.outbox.drop(event)
            if event.kind is Kind.CREATE:
                self.incidents.forget_alert(event.sys_id)
        return count

    # --- what status shows --------------------------------------------------------------

    def outbox_counts(self) -> OutboxCounts:
        return self.outbox.counts()

    def summary(self) -> Summary:
        return Summary(
            database=str(self.location),
            watermark=self.state.get(WATERMARK),
            incidents_tracked=self.incidents.count(),
            open_alerts=self.incidents.open_count(),
            outbox=self.outbox.counts(),
            dead_reasons=self.outbox.dead_reasons(),
            missing_incidents=self.state.get_json(MISSING_INCIDENTS, []),
            quarantined=self.quarantine.count(),
            last_run=self.runs.last(),
            last_success_at=self.runs.last_success_at(),
            writeback=self.writeback_summary(),
            backend=self.db.backend,
            high_availability=self.high_availability(),
        )

    def high_availability(self) -> HighAvailability | None:
        if self.db.backend == "sqlite":
            return None
        now = self.clock()
        standbys = [
            record
            for record in self.state.with_prefix(STANDBY_PREFIX).values()
            if (now - datetime.fromisoformat(record["seen_at"])).total_seconds()
            <= 3 * STANDBY_CHECK_IN_SECONDS
        ]
        return HighAvailability(
            leader=self.state.get_json(LEADER),
            holder=self.db.lock_holder("leader"),
            standbys=sorted(standbys, key=lambda r: (r["host"], r["pid"])),
            last_failover=self.state.get_json(LAST_FAILOVER),
        )

    def writeback_summary(self) -> WritebackSummary:
        watched, unlinked = self.links.counts()
        counts = self.writeback.counts()
        return WritebackSummary(
            watched=watched,
            unlinked=unlinked,
            pending=counts.get(PENDING, 0),
            dead=counts.get("dead", 0),
            delivered=counts.get("delivered", 0),
            held=self.incidents.held(),
            last_read=self.state.get(FLASHDUTY_READ),
        )


def _scratch_after(db: Database) -> Ledger:
    db.close()
    return Ledger.scratch()
