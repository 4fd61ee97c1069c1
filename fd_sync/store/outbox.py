"""The outbox: events owed to Flashduty's push endpoints, a :class:`DurableQueue`.

What it adds to the shared lifecycle: events carry the incident as it was decided and the
extras of its route; one incident's events leave strictly in order, so a dead event holds
the incident's later ones (``dead_holds_incident``); a retry or drop of a create takes its
whole alert along. The crash contract is the Ledger's (:meth:`Ledger.attempt`): the
delivered mark of one event rides in the commit of the next one's attempt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fd_sync.core.decide import Decision, Kind
from fd_sync.core.incident import Incident
from fd_sync.core.payloads import NO_EXTRAS, Extras
from fd_sync.store.db import JSON, Row
from fd_sync.store.queue import (
    ACTIONABLE,
    CANCELLED,
    DEAD,
    PENDING,
    DeadReason,
    DurableQueue,
    QueueStatus,
    statuses_sql,
)
from fd_sync.store.times import iso


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    sys_id: str
    number: str
    kind: Kind
    destination: str
    incident: Incident
    attempts: int
    status: QueueStatus = PENDING
    created_at: str = ""
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    extras: Extras = field(default_factory=Extras)  # the route's or dispatch's, as queued
    finished_at: str | None = None  # delivered, refused for good, cancelled or dropped

    @property
    def label(self) -> str:
        return str(self.id)


@dataclass(frozen=True)
class Acknowledged:
    """An event Flashduty acknowledged whose delivered mark is not committed yet."""

    event: OutboxEvent
    http_status: int
    request_id: str | None
    alert_key: str | None  # what Flashduty's answer named the alert


_INSERT = (
    "INSERT INTO outbox (sys_id, number, kind, destination, event, status, run_id, created_at)"
    " VALUES (?,?,?,?,?,?,?,?)"
)


class Outbox(DurableQueue[OutboxEvent]):
    table = "outbox"
    label_prefix = ""
    direction = "flashduty"
    failure_columns = ("error_code", "request_id")
    dead_holds_incident = True

    columns = (
        "id, sys_id, number, kind, destination, event, attempts, status, created_at, http_status,"
        " error_code, error_message, request_id, finished_at"
    )

    def decode(self, row: Row) -> OutboxEvent:
        (id_, sys_id, number, kind, destination, event, attempts, status, created_at, *errors) = row
        http_status, error_code, error_message, request_id, finished_at = errors
        data = json.loads(event)
        return OutboxEvent(
            id=id_,
            sys_id=sys_id,
            number=number,
            kind=Kind(kind),
            destination=destination,
            incident=Incident.from_dict(data),
            attempts=attempts,
            status=QueueStatus(status),
            created_at=created_at,
            http_status=http_status,
            error_code=error_code,
            error_message=error_message,
            request_id=request_id,
            extras=Extras.from_dict(data.get("extras")),
            finished_at=finished_at,
        )

    # --- the producer side: a cycle queues and cancels ------------------------------------

    def enqueue(
        self, decisions: Sequence[Decision], *, extras: Mapping[str, Extras], run_id: str
    ) -> dict[str, int]:
        """Every event of these decisions, in order; counts by kind. A create or update
        carries the incident with the extras of its route; a resolve the incident alone."""
        now = iso(self.clock())
        counts: dict[str, int] = {}
        rows = []
        for d in decisions:
            inc = d.incident
            snapshot: str | None = None
            for event in d.events:
                counts[event.kind.value] = counts.get(event.kind.value, 0) + 1
                body = inc.to_dict()
                if event.kind is Kind.RESOLVE:
                    payload = snapshot = snapshot or JSON.encode(body)
                else:
                    body["extras"] = extras.get(inc.sys_id, NO_EXTRAS).to_dict()
                    payload = JSON.encode(body)
                row = (inc.sys_id, inc.number, event.kind.value, event.destination, payload)
                rows.append((*row, PENDING.value, run_id, now))
        self.db.executemany(_INSERT, rows)
        return counts

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

    # --- what the shared lifecycle narrows ------------------------------------------------

    def _moot_before_retry(self, where: str, params: Sequence[Any]) -> int:
        """A dead create was refused, so Flashduty never had that alert: when the incident's
        resolve of it is queued behind, the alert opened and closed unseen, and sending the
        pair now would page for a closed incident. Those events are cancelled instead, as
        they are for a create never attempted (see :meth:`cancel_untried_alert`)."""
        cancelled = 0
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
                    f"AND status IN ({statuses_sql(ACTIONABLE)})",
                    [iso(self.clock()), sys_id, create_id, resolve_id],
                )
        return cancelled

    def _drops_what_follows(self, item: OutboxEvent) -> bool:
        """Dropping a create gives up on its whole alert, from it on."""
        return item.kind is Kind.CREATE

    def dead_reasons(self) -> list[DeadReason]:
        """Dead events grouped by what refused them, most first."""
        return [
            DeadReason(status, code, destination, n, message)
            for status, code, destination, n, message in self.db.rows(
                "SELECT http_status, error_code, destination, COUNT(*), MIN(error_message) "
                f"FROM outbox WHERE status = '{DEAD}' GROUP BY 1, 2, 3 ORDER BY 4 DESC"
            )
        ]
