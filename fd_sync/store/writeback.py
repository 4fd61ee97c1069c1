"""The write-back queue: writes owed to ServiceNow incidents, a :class:`DurableQueue`.

A row is queued in the Ledger step that advances the incident's timeline cursor (so
nothing read is lost), attempted before its PATCH and delivered after ServiceNow answered
(:meth:`Ledger.record_write`). A part ServiceNow refuses (a data policy, an ACL) stays
``dead`` with ServiceNow's message until ``fd-sync outbox retry``. A refused work note
holds the incident's later notes behind it (a retry then writes them all, in order); a
refused state change alone holds nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fd_sync.core.writeback import Intents
from fd_sync.store.db import Row
from fd_sync.store.queue import DEAD, PENDING, DurableQueue, QueueStatus
from fd_sync.store.times import iso

ID_PREFIX = "w"  # `outbox list` shows write-backs as w12, beside Flashduty's events 12


@dataclass(frozen=True)
class NewWrite:
    """A write owed to one incident, before it has an id."""

    sys_id: str
    number: str
    incident_id: str
    note: str
    intents: Intents
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class Write(NewWrite):
    """A queued write, as the queue keeps it."""

    id: int = 0
    status: QueueStatus = QueueStatus.PENDING
    attempts: int = 0
    created_at: str = ""
    http_status: int | None = None
    error_message: str | None = None
    finished_at: str | None = None

    @property
    def label(self) -> str:
        return f"{ID_PREFIX}{self.id}"


class WritebackQueue(DurableQueue[Write]):
    table = "writeback"
    label_prefix = ID_PREFIX
    direction = "servicenow"

    columns = (
        "id, sys_id, number, incident_id, note, intents, kinds, status, attempts, created_at,"
        " http_status, error_message, finished_at"
    )

    def decode(self, row: Row) -> Write:
        id_, sys_id, number, incident_id, note, intents, kinds, status, attempts, created, *err = (
            row
        )
        http_status, error_message, finished_at = err
        return Write(
            sys_id,
            number,
            incident_id,
            note,
            Intents.from_json(intents),
            tuple(json.loads(kinds)),
            id=id_,
            status=QueueStatus(status),
            attempts=attempts,
            created_at=created,
            http_status=http_status,
            error_message=error_message,
            finished_at=finished_at,
        )

    def queue(self, write: NewWrite, *, run_id: str, status: QueueStatus = PENDING) -> int:
        return self.db.insert(
            "INSERT INTO writeback (sys_id, number, incident_id, note, intents, kinds, status,"
            " run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                write.sys_id,
                write.number,
                write.incident_id,
                write.note,
                write.intents.to_json(),
                json.dumps(list(write.kinds)),
                status.value,
                run_id,
                iso(self.clock()),
            ],
        )

    def keep_refused(
        self, write: NewWrite, *, http_status: int | None, message: str, run_id: str
    ) -> int:
        """A part ServiceNow refused, kept dead on its own (the rest of the write went)."""
        new_id = self.queue(write, run_id=run_id, status=DEAD)
        self.db.execute(
            "UPDATE writeback SET finished_at = ?, http_status = ?, error_message = ? WHERE id = ?",
            [iso(self.clock()), http_status, message[:1000], new_id],
        )
        return new_id

    def pending_by_incident(self) -> dict[str, list[Write]]:
        """Every pending write, grouped by incident in queue order."""
        groups: dict[str, list[Write]] = {}
        for write in self.pending(limit=1_000_000):
            groups.setdefault(write.sys_id, []).append(write)
        return groups

    def holding_incidents(self) -> set[str]:
        """Incidents with a refused work note: their later notes wait behind it, so that a
        retry writes them in order (a refused state change alone holds nothing)."""
        if not self.present:
            return set()
        sql = f"SELECT DISTINCT sys_id FROM writeback WHERE status = '{DEAD}' AND note != ''"
        return {row[0] for row in self.db.rows(sql, (), "read the write-back queue")}

    def oldest_pending_at(self) -> str | None:
        if not self.present:
            return None
        value = self.db.scalar(f"SELECT MIN(created_at) FROM writeback WHERE status = '{PENDING}'")
        return str(value) if value else None
