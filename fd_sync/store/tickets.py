"""Tickets from Flashduty: the ``tickets`` table and its two durable queues.

- :class:`Tickets`: each Flashduty incident that opens (or opened) a ServiceNow ticket,
  and the last version of the ticket fd-sync handled (state, urgency, version, newest
  comment forwarded), which includes the versions fd-sync's own writes produced: those are
  never sent back to Flashduty.
- :class:`TicketCreateQueue` (``t12`` in ``outbox list``): the POSTs owed to ServiceNow.
  Not idempotent: a create whose answer never came is looked up by ``correlation_id``
  before it is sent again.
- :class:`FlashdutyWriteQueue` (``f12``): the writes owed to Flashduty's OpenAPI
  (``/incident/comment``, ``resolve``, ``reopen``, ``reset``) for the tickets' incidents,
  in per-incident order; a dead one holds the incident's later writes. Each is matched
  once against the feed entry it causes (``echo_seen``), so fd-sync never writes its own
  comment or resolve back to the ticket.

Queues never commit: the steps are :class:`~fd_sync.store.ticket_steps.TicketSteps`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fd_sync.core.tickets import FlashdutySource, OpenAPIWrite, OwedWrite, TicketSeen
from fd_sync.core.turns import answered_mod_count
from fd_sync.store.db import Database, Row
from fd_sync.store.queue import DEAD, PENDING, DurableQueue, QueueStatus
from fd_sync.store.times import iso

CREATE_PREFIX = "t"
WRITE_PREFIX = "f"


@dataclass(frozen=True)
class TicketCreate:
    id: int
    incident_id: str
    sys_id: str  # the ticket's, once created
    number: str  # the ticket's once created; "#num" of the Flashduty incident until then
    fields: dict[str, str]
    status: QueueStatus
    attempts: int
    created_at: str
    http_status: int | None = None
    error_message: str | None = None
    finished_at: str | None = None

    @property
    def label(self) -> str:
        return f"{CREATE_PREFIX}{self.id}"


@dataclass(frozen=True)
class FlashdutyWrite:
    id: int
    incident_id: str
    sys_id: str
    number: str
    kind: str
    body: dict[str, Any]
    status: QueueStatus
    attempts: int
    created_at: str
    http_status: int | None = None
    error_message: str | None = None
    request_id: str | None = None
    finished_at: str | None = None

    @property
    def label(self) -> str:
        return f"{WRITE_PREFIX}{self.id}"

    @property
    def write(self) -> OpenAPIWrite:
        return OpenAPIWrite(self.kind, self.body)


class TicketCreateQueue(DurableQueue[TicketCreate]):
    table = "ticket_creates"
    label_prefix = CREATE_PREFIX
    direction = "servicenow"
    columns = (
        "id, incident_id, sys_id, number, fields, status, attempts, created_at, http_status,"
        " error_message, finished_at"
    )

    def decode(self, row: Row) -> TicketCreate:
        id_, incident_id, sys_id, number, fields, status, attempts, created, *rest = row
        http, error, finished = rest
        return TicketCreate(
            id_,
            incident_id,
            sys_id,
            number,
            json.loads(fields),
            QueueStatus(status),
            attempts,
            created,
            http,
            error,
            finished,
        )

    def queue(self, source: FlashdutySource, fields: Mapping[str, str], *, run_id: str) -> None:
        self.db.execute(
            "INSERT INTO ticket_creates (incident_id, sys_id, number, fields, status, run_id,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            [
                source.incident_id,
                "",
                f"#{source.num}",
                json.dumps(dict(fields)),
                PENDING.value,
                run_id,
                iso(self.clock()),
            ],
        )

    def opened(self, item_id: int, sys_id: str, number: str) -> None:
        self.db.execute(
            "UPDATE ticket_creates SET sys_id = ?, number = ? WHERE id = ?",
            [sys_id, number, item_id],
        )


class FlashdutyWriteQueue(DurableQueue[FlashdutyWrite]):
    table = "flashduty_writes"
    label_prefix = WRITE_PREFIX
    direction = "flashduty"
    failure_columns = ("error_code", "request_id")
    dead_holds_incident = True
    columns = (
        "id, incident_id, sys_id, number, kind, body, status, attempts, created_at, http_status,"
        " error_message, request_id, finished_at"
    )

    def decode(self, row: Row) -> FlashdutyWrite:
        id_, incident_id, sys_id, number, kind, body, status, attempts, created, *rest = row
        http_status, error_message, request_id, finished_at = rest
        return FlashdutyWrite(
            id_,
            incident_id,
            sys_id,
            number,
            kind,
            json.loads(body),
            QueueStatus(status),
            attempts,
            created,
            http_status,
            error_message,
            request_id,
            finished_at,
        )

    def queue(self, owed: Sequence[OwedWrite], *, run_id: str) -> None:
        """Queue these writes, in order; one whose ``source`` is queued already (a journal
        entry read again by the look-back) is not queued twice (a UNIQUE column)."""
        now = iso(self.clock())
        self.db.executemany(
            "INSERT INTO flashduty_writes (incident_id, sys_id, number, kind, body, source,"
            " status, run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(source) DO NOTHING",
            [
                (
                    item.incident_id,
                    item.sys_id,
                    item.number,
                    item.write.kind,
                    json.dumps(dict(item.write.body)),
                    item.source,
                    PENDING.value,
                    run_id,
                    now,
                )
                for item in owed
            ],
        )

    def unmatched(self, incident_ids: Iterable[str]) -> dict[str, list[tuple[int, str, str]]]:
        """Per incident, (id, kind, comment) of the writes tried and not yet seen in the feed,
        oldest first: what a feed entry may be the echo of."""
        if not self.present:
            return {}
        sql = (
            "SELECT incident_id, id, kind, body FROM flashduty_writes WHERE echo_seen = 0"
            " AND (attempts > 0 OR status = 'delivered') AND incident_id IN ({marks})"
            " ORDER BY id"
        )
        out: dict[str, list[tuple[int, str, str]]] = {}
        for incident_id, id_, kind, body in self.db.rows_in(sql, incident_ids):
            comment = str(json.loads(body).get("comment") or "")
            out.setdefault(incident_id, []).append((id_, kind, comment))
        return out

    def echo_seen(self, ids: Sequence[int]) -> None:
        self.db.executemany(
            "UPDATE flashduty_writes SET echo_seen = 1 WHERE id = ?", [(i,) for i in ids]
        )

    def seen_in_feed(self, item_id: int) -> bool:
        return bool(
            self.db.scalar("SELECT echo_seen FROM flashduty_writes WHERE id = ?", [item_id])
        )

    def held_incidents(self) -> set[str]:
        sql = f"SELECT DISTINCT incident_id FROM flashduty_writes WHERE status = '{DEAD}'"
        return {row[0] for row in self.db.rows(sql, ())}


_SEEN = "incident_id, sys_id, number, state, urgency, mod_count, last_comment, syncing, assigned_to"


def _seen(row: Row) -> TicketSeen:
    incident_id, sys_id, number, state, urgency, mod_count, last_comment, syncing, who = row
    return TicketSeen(
        incident_id,
        sys_id,
        number,
        state,
        urgency,
        int(mod_count),
        last_comment,
        bool(syncing),
        who,
    )


class Tickets:
    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def present(self) -> bool:
        return self.db.has_column("tickets", "incident_id")

    def add(self, sources: Sequence[FlashdutySource], now: datetime) -> None:
        found = iso(now)
        self.db.executemany(
            "INSERT INTO tickets (incident_id, num, title, channel_id, severity, start_time,"
            " found_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(incident_id) DO NOTHING",
            [
                (s.incident_id, s.num, s.title[:500], s.channel_id, s.severity, s.start_time, found)
                for s in sources
            ],
        )

    def known(self, incident_ids: Iterable[str]) -> set[str]:
        if not self.present:
            return set()
        sql = "SELECT incident_id FROM tickets WHERE incident_id IN ({marks})"
        return {row[0] for row in self.db.rows_in(sql, incident_ids)}

    def opened(self, incident_id: str, record: Mapping[str, Any], now: datetime) -> None:
        self.db.execute(
            "UPDATE tickets SET sys_id = ?, number = ?, state = ?, urgency = ?, mod_count = ?,"
            " opened_at = ?, assigned_to = ? WHERE incident_id = ?",
            [
                str(record.get("sys_id") or ""),
                str(record.get("number") or ""),
                str(record.get("state") or ""),
                str(record.get("urgency") or ""),
                answered_mod_count(record) or 0,
                iso(now),
                str(record.get("assigned_to") or ""),
                incident_id,
            ],
        )

    def by_sys_id(self, sys_ids: Iterable[str]) -> dict[str, TicketSeen]:
        if not self.present:
            return {}
        sql = f"SELECT {_SEEN} FROM tickets WHERE sys_id IN ({{marks}})"
        return {row[1]: _seen(row) for row in self.db.rows_in(sql, sys_ids)}

    def by_incident(self, incident_ids: Iterable[str]) -> dict[str, TicketSeen]:
        if not self.present:
            return {}
        sql = f"SELECT {_SEEN} FROM tickets WHERE sys_id IS NOT NULL AND incident_id IN ({{marks}})"
        return {row[0]: _seen(row) for row in self.db.rows_in(sql, incident_ids)}

    def handled(self, seen: TicketSeen) -> None:
        """The ticket's version handled: what later versions are compared with."""
        self.db.execute(
            "UPDATE tickets SET state = ?, urgency = ?, mod_count = ?, last_comment = ?,"
            " assigned_to = ? WHERE incident_id = ?",
            [
                seen.state,
                seen.urgency,
                seen.mod_count,
                seen.last_comment,
                seen.assigned_to,
                seen.incident_id,
            ],
        )

    def stop(self, incident_id: str) -> None:
        self.db.execute("UPDATE tickets SET syncing = 0 WHERE incident_id = ?", [incident_id])

    def newest_start(self) -> int:
        if not self.present:
            return 0
        return int(self.db.scalar("SELECT COALESCE(MAX(start_time), 0) FROM tickets", ()) or 0)

    def counts(self, since: datetime) -> tuple[int, int]:
        """(tickets opened, of which in the last day since ``since``) for `status`."""
        if not self.present:
            return 0, 0
        row = self.db.one(
            "SELECT COUNT(sys_id), SUM(CASE WHEN opened_at >= ? THEN 1 ELSE 0 END) FROM tickets",
            [iso(since)],
        )
        return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


__all__ = [
    "FlashdutyWrite",
    "FlashdutyWriteQueue",
    "TicketCreate",
    "TicketCreateQueue",
    "Tickets",
]
