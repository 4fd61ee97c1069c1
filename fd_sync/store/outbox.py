"""The outbox: events owed to Flashduty, each attempted, delivered, refused or given up.

Crash contract: an event is marked attempted in a committed transaction *before* it is
sent, and delivered *after* Flashduty acknowledged it. The delivered mark of one event is
committed together with the attempted mark of the next (one commit per event, not two):
a crash after a send and before that commit re-sends that one event, never loses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from fd_sync.core.decide import Kind
from fd_sync.core.incident import Incident
from fd_sync.core.payloads import Extras
from fd_sync.store.db import Database, where_equal
from fd_sync.store.times import iso

RETENTION = timedelta(days=30)  # delivered, cancelled and dropped events; dead ones are kept


class OutboxStatus(StrEnum):
    PENDING = "pending"  # owed to Flashduty (maybe attempted already)
    DELIVERED = "delivered"  # Flashduty acknowledged it
    DEAD = "dead"  # refused for good: the incident's later events wait for an operator
    CANCELLED = "cancelled"  # never attempted, and no longer true (the incident closed first)
    DROPPED = "dropped"  # an operator gave up on it (fd-sync outbox drop)


PENDING, DELIVERED, DEAD = OutboxStatus.PENDING, OutboxStatus.DELIVERED, OutboxStatus.DEAD
CANCELLED, DROPPED = OutboxStatus.CANCELLED, OutboxStatus.DROPPED
FINISHED = (DELIVERED, CANCELLED, DROPPED)  # forgotten after RETENTION
ACTIONABLE = (PENDING, DEAD)  # what an operator may drop


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    sys_id: str
    number: str
    kind: Kind
    destination: str
    incident: Incident
    attempts: int
    status: OutboxStatus = PENDING
    created_at: str = ""
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    extras: Extras = field(default_factory=Extras)  # the route's or dispatch's, as queued


@dataclass(frozen=True)
class OutboxCounts:
    pending: int = 0
    blocked: int = 0  # pending behind a dead event of the same incident
    dead: int = 0
    delivered: int = 0
    cancelled: int = 0


@dataclass(frozen=True)
class DeadReason:
    http_status: int | None
    error_code: str | None
    destination: str
    events: int
    message: str | None = None  # one of the group's messages, as Flashduty worded it


_COLUMNS = (
    "id, sys_id, number, kind, destination, event, attempts, status, created_at, http_status,"
    " error_code, error_message, request_id"
)
_INSERT = (
    "INSERT INTO outbox (sys_id, number, kind, destination, event, status, run_id, created_at)"
    " VALUES (?,?,?,?,?,?,?,?)"
)


def _in(statuses: Iterable[OutboxStatus]) -> str:
    return ", ".join(f"'{s.value}'" for s in statuses)


class Outbox:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    # --- the producer side: a cycle queues and cancels ------------------------------------

    def enqueue(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows of (sys_id, number, kind, destination, event JSON, status, run_id, created_at)."""
        self.db.executemany(_INSERT, rows)

    def untried_creates(self, sys_ids: Iterable[str]) -> set[str]:
        """Incidents whose open alert has not reached Flashduty: events of one incident
        leave in order, so an untried create means nothing of the alert was sent."""
        sql = (
            f"SELECT DISTINCT sys_id FROM outbox WHERE status = '{PENDING}' "
            "AND kind = 'create' AND attempts = 0 AND sys_id IN ({marks})"
        )
        return {row[0] for row in self.db.rows_in(sql, sys_ids)}

    def cancel_untried_alert(self, sys_id: str) -> int:
        """Cancel the open alert's events from its untried create on: the resolve of an
        earlier alert (maybe elsewhere) must still leave. Returns how many."""
        return self.db.execute(
            f"UPDATE outbox SET status = '{CANCELLED}', finished_at = ? "
            f"WHERE sys_id = ? AND status = '{PENDING}' AND attempts = 0 AND id >= "
            f"(SELECT MIN(id) FROM outbox WHERE sys_id = ? AND status = '{PENDING}' "
            "AND kind = 'create' AND attempts = 0)",
            [iso(self.clock()), sys_id, sys_id],
        )

    def cancel_updates(self, sys_id: str) -> int:
        """A responder closed the alert in Flashduty: its queued updates would open a new
        one (and page). Those before a queued create (a new alert) are cancelled."""
        return self.db.execute(
            f"UPDATE outbox SET status = '{CANCELLED}', finished_at = ? WHERE sys_id = ? "
            f"AND status = '{PENDING}' AND kind = 'update' AND id < COALESCE((SELECT MIN(id) "
            f"FROM outbox WHERE sys_id = ? AND status = '{PENDING}' AND kind = 'create'), "
            "9223372036854775807)",
            [iso(self.clock()), sys_id, sys_id],
        )

    def cancel(self, event_id: int) -> None:
        """An event that no longer needs sending (an update a later resolve supersedes)."""
        with self.db.transaction("cancel an event"):
            self.db.execute(
                f"UPDATE outbox SET status = '{CANCELLED}', finished_at = ? WHERE id = ? "
                f"AND status = '{PENDING}'",
                [iso(self.clock()), event_id],
            )

    # --- the consumer side: delivery ------------------------------------------------------

    def pending(
        self, *, after_id: int = 0, limit: int = 500, sys_id: str | None = None
    ) -> list[OutboxEvent]:
        """Pending events in queue order; only one incident's with ``sys_id``."""
        only, params = ("AND sys_id = ? ", [sys_id]) if sys_id else ("", [])
        rows = self.db.rows(
            f"SELECT {_COLUMNS} FROM outbox WHERE status = '{PENDING}' AND id > ? "
            f"{only}ORDER BY id LIMIT ?",
            [after_id, *params, limit],
            "read the outbox",
        )
        return [_event(row) for row in rows]

    def dead_incidents(self) -> set[str]:
        """Incidents with a dead event: their later events wait until an operator acts."""
        sql = f"SELECT DISTINCT sys_id FROM outbox WHERE status = '{DEAD}'"
        return {row[0] for row in self.db.rows(sql, (), "read the outbox")}

    def mark_attempt(self, event_id: int) -> None:
        """Call inside the transaction that commits before the event is sent."""
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ? WHERE id = ?",
            [iso(self.clock()), event_id],
        )

    def mark_delivered(self, event_id: int, *, http_status: int, request_id: str | None) -> None:
        """Call inside a transaction (the next event's attempt, or the drain's last)."""
        self.db.execute(
            f"UPDATE outbox SET status = '{DELIVERED}', finished_at = ?, http_status = ?,"
            " request_id = ?, error_code = NULL, error_message = NULL WHERE id = ?",
            [iso(self.clock()), http_status, request_id, event_id],
        )

    def mark_failed(
        self,
        event_id: int,
        *,
        dead: bool,
        http_status: int | None,
        error_code: str | None,
        error_message: str,
        request_id: str | None,
    ) -> None:
        """Record why an attempt failed; a dead event stays until an operator acts."""
        with self.db.transaction("record a delivery failure"):
            self.db.execute(
                "UPDATE outbox SET status = ?, finished_at = ?, http_status = ?, error_code = ?,"
                " error_message = ?, request_id = ? WHERE id = ?",
                [
                    DEAD if dead else PENDING,
                    iso(self.clock()) if dead else None,
                    http_status,
                    error_code,
                    error_message[:1000],
                    request_id,
                    event_id,
                ],
            )

    def purge_finished(self) -> int:
        """Forget delivered, cancelled and dropped events after RETENTION; dead ones stay."""
        with self.db.transaction("purge old events"):
            return self.db.execute(
                f"DELETE FROM outbox WHERE status IN ({_in(FINISHED)}) AND finished_at < ?",
                [iso(self.clock() - RETENTION)],
            )

    # --- operators (fd-sync outbox ..., status) -------------------------------------------

    def event(self, event_id: int) -> OutboxEvent | None:
        row = self.db.one(
            f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", [event_id], "read the outbox"
        )
        return _event(row) if row else None

    def events(
        self, *, status: OutboxStatus | None = None, limit: int = 100, sys_id: str | None = None
    ) -> list[OutboxEvent]:
        """Events of any status, newest first."""
        where, params = where_equal(status=status, sys_id=sys_id)
        rows = self.db.rows(
            f"SELECT {_COLUMNS} FROM outbox {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
            "read the outbox",
        )
        return [_event(row) for row in rows]

    def retry_dead(self, event_id: int | None = None) -> tuple[int, int]:
        """Dead events back to pending, keeping their error for the record until resent;
        returns (requeued, cancelled).

        A dead create was refused, so Flashduty never had that alert: when the incident's
        resolve of it is queued behind, the alert opened and closed unseen, and sending
        the pair now would page for a closed incident. Those events are cancelled instead,
        as they are for a create never attempted (see :meth:`cancel_untried_alert`).
        """
        where, params = ("AND id = ?", [event_id]) if event_id is not None else ("", [])
        now = iso(self.clock())
        cancelled = 0
        with self.db.transaction("requeue dead events"):
            creates = self.db.rows(
                f"SELECT id, sys_id, destination FROM outbox WHERE status = '{DEAD}' "
                f"AND kind = 'create' {where}",
                params,
            )
            for create_id, sys_id, destination in creates:
                resolve_id = self.db.scalar(
                    "SELECT MIN(id) FROM outbox WHERE sys_id = ? AND destination = ? "
                    f"AND kind = 'resolve' AND status = '{PENDING}' AND id > ?",
                    [sys_id, destination, create_id],
                )
                if resolve_id is not None:
                    cancelled += self.db.execute(
                        f"UPDATE outbox SET status = '{CANCELLED}', finished_at = ? "
                        "WHERE sys_id = ? AND id BETWEEN ? AND ? "
                        f"AND status IN ({_in(ACTIONABLE)})",
                        [now, sys_id, create_id, resolve_id],
                    )
            requeued = self.db.execute(
                f"UPDATE outbox SET status = '{PENDING}', finished_at = NULL "
                f"WHERE status = '{DEAD}' {where}",
                params,
            )
        return requeued, cancelled

    def drop(self, event: OutboxEvent) -> int:
        """Give up on one event, or with its create on a whole alert (from it on). Call
        inside a transaction; returns how many events were dropped."""
        now = iso(self.clock())
        if event.kind is Kind.CREATE:
            return self.db.execute(
                f"UPDATE outbox SET status = '{DROPPED}', finished_at = ? WHERE sys_id = ? "
                f"AND id >= ? AND status IN ({_in(ACTIONABLE)})",
                [now, event.sys_id, event.id],
            )
        return self.db.execute(
            f"UPDATE outbox SET status = '{DROPPED}', finished_at = ? WHERE id = ? "
            f"AND status IN ({_in(ACTIONABLE)})",
            [now, event.id],
        )

    def counts(self) -> OutboxCounts:
        """What a cycle reports and `status` shows: two cheap aggregate queries."""
        by_status: dict[str, int] = dict(
            self.db.rows(
                "SELECT status, COUNT(*) FROM outbox GROUP BY status", (), "read the outbox"
            )
        )
        blocked = self.db.scalar(
            f"SELECT COUNT(*) FROM outbox WHERE status = '{PENDING}' AND sys_id IN "
            f"(SELECT sys_id FROM outbox WHERE status = '{DEAD}')"
        )
        return OutboxCounts(
            pending=by_status.get(PENDING, 0),
            blocked=int(blocked),
            dead=by_status.get(DEAD, 0),
            delivered=by_status.get(DELIVERED, 0),
            cancelled=by_status.get(CANCELLED, 0),
        )

    def dead_reasons(self) -> list[DeadReason]:
        """Dead events grouped by what refused them, most first."""
        return [
            DeadReason(status, code, destination, n, message)
            for status, code, destination, n, message in self.db.rows(
                "SELECT http_status, error_code, destination, COUNT(*), MIN(error_message) "
                f"FROM outbox WHERE status = '{DEAD}' GROUP BY 1, 2, 3 ORDER BY 4 DESC"
            )
        ]


def _event(row: Sequence[Any]) -> OutboxEvent:
    (id_, sys_id, number, kind, destination, event, attempts, status, created_at, *errors) = row
    http_status, error_code, error_message, request_id = errors
    data = json.loads(event)
    return OutboxEvent(
        id=id_,
        sys_id=sys_id,
        number=number,
        kind=Kind(kind),
        destination=destination,
        incident=Incident.from_dict(data),
        attempts=attempts,
        status=OutboxStatus(status),
        created_at=created_at,
        http_status=http_status,
        error_code=error_code,
        error_message=error_message,
        request_id=request_id,
        extras=Extras.from_dict(data.get("extras")),
    )
