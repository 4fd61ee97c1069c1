"""The write-back queue: writes owed to ServiceNow incidents, with the outbox's guarantees.

A row is committed together with the timeline cursor it came from (so nothing read is
lost), marked attempted before its PATCH and delivered after ServiceNow answered, each
in a committed transaction: a crash between the PATCH and the mark repeats that one
work note on the next cycle, never more, and never loses it. A part ServiceNow refuses
(a data policy, an ACL) stays ``dead`` with ServiceNow's message until ``fd-sync outbox
retry``; it does not hold back the notes that follow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fd_sync.core.writeback import Intents
from fd_sync.store.db import Database, where_equal
from fd_sync.store.outbox import RETENTION, OutboxStatus
from fd_sync.store.times import iso

PENDING, DELIVERED, DEAD = OutboxStatus.PENDING, OutboxStatus.DELIVERED, OutboxStatus.DEAD
DROPPED = OutboxStatus.DROPPED
ID_PREFIX = "w"  # `outbox list` shows write-backs as w12, beside Flashduty's events 12

_COLUMNS = (
    "id, sys_id, number, incident_id, note, intents, kinds, status, attempts, created_at,"
    " http_status, error_message"
)


@dataclass(frozen=True)
class Write:
    id: int
    sys_id: str
    number: str
    incident_id: str
    note: str
    intents: Intents
    kinds: tuple[str, ...]
    status: OutboxStatus
    attempts: int
    created_at: str
    http_status: int | None = None
    error_message: str | None = None

    @property
    def label(self) -> str:
        return f"{ID_PREFIX}{self.id}"


def _write(row: Sequence[Any]) -> Write:
    id_, sys_id, number, incident_id, note, intents, kinds, status, attempts, created, *err = row
    return Write(
        id_,
        sys_id,
        number,
        incident_id,
        note,
        Intents.from_json(intents),
        tuple(json.loads(kinds)),
        OutboxStatus(status),
        attempts,
        created,
        *err,
    )


class WritebackQueue:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def queue(
        self,
        sys_id: str,
        number: str,
        incident_id: str,
        *,
        note: str,
        intents: Intents,
        kinds: Sequence[str],
        run_id: str,
    ) -> int:
        """Call in the transaction that advances the incident's timeline cursor."""
        return self.db.insert(
            "INSERT INTO writeback (sys_id, number, incident_id, note, intents, kinds, status,"
            " run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                sys_id,
                number,
                incident_id,
                note,
                intents.to_json(),
                json.dumps(list(kinds)),
                PENDING.value,
                run_id,
                iso(self.clock()),
            ],
        )

    def pending(self) -> list[Write]:
        rows = self.db.rows(
            f"SELECT {_COLUMNS} FROM writeback WHERE status = '{PENDING}' ORDER BY id",
            (),
            "read the write-back queue",
        )
        return [_write(r) for r in rows]

    def mark_attempt(self, ids: Sequence[int]) -> None:
        with self.db.transaction("record a write-back attempt"):
            self.db.executemany(
                "UPDATE writeback SET attempts = attempts + 1, last_attempt_at = ? WHERE id = ?",
                [(iso(self.clock()), i) for i in ids],
            )

    def mark_delivered(self, ids: Sequence[int], *, http_status: int) -> None:
        """Call inside a transaction (with the own-version record of the same write)."""
        self.db.executemany(
            f"UPDATE writeback SET status = '{DELIVERED}', finished_at = ?, http_status = ?,"
            " error_message = NULL WHERE id = ?",
            [(iso(self.clock()), http_status, i) for i in ids],
        )

    def mark_failed(
        self, ids: Sequence[int], *, dead: bool, http_status: int | None, message: str
    ) -> None:
        with self.db.transaction("record a write-back failure"):
            self.db.executemany(
                "UPDATE writeback SET status = ?, finished_at = ?, http_status = ?,"
                " error_message = ? WHERE id = ?",
                [
                    (
                        (DEAD if dead else PENDING).value,
                        iso(self.clock()) if dead else None,
                        http_status,
                        message[:1000],
                        i,
                    )
                    for i in ids
                ],
            )

    def refused_part(
        self, write: Write, intents: Intents, *, http_status: int | None, message: str, run_id: str
    ) -> int:
        """The state change ServiceNow refused, kept dead on its own: the notes went."""
        new_id = self.queue(
            write.sys_id,
            write.number,
            write.incident_id,
            note="",
            intents=intents,
            kinds=("state",),
            run_id=run_id,
        )
        self.db.execute(
            f"UPDATE writeback SET status = '{DEAD}', finished_at = ?, http_status = ?,"
            " error_message = ? WHERE id = ?",
            [iso(self.clock()), http_status, message[:1000], new_id],
        )
        return new_id

    # --- operators ------------------------------------------------------------------------

    def events(
        self, *, status: OutboxStatus | None = None, limit: int = 100, sys_id: str | None = None
    ) -> list[Write]:
        if not self.db.two_way:
            return []
        where, params = where_equal(status=status, sys_id=sys_id)
        rows = self.db.rows(
            f"SELECT {_COLUMNS} FROM writeback {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
            "read the write-back queue",
        )
        return [_write(r) for r in rows]

    def get(self, write_id: int) -> Write | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM writeback WHERE id = ?", [write_id])
        return _write(row) if row else None

    def retry_dead(self, write_id: int | None = None) -> int:
        where, params = ("AND id = ?", [write_id]) if write_id is not None else ("", [])
        with self.db.transaction("requeue refused write-backs"):
            return self.db.execute(
                f"UPDATE writeback SET status = '{PENDING}', finished_at = NULL "
                f"WHERE status = '{DEAD}' {where}",
                params,
            )

    def drop(self, write_id: int) -> int:
        with self.db.transaction("drop a write-back"):
            return self.db.execute(
                f"UPDATE writeback SET status = '{DROPPED}', finished_at = ? WHERE id = ? "
                f"AND status IN ('{PENDING}', '{DEAD}')",
                [iso(self.clock()), write_id],
            )

    def counts(self) -> dict[str, int]:
        if not self.db.two_way:
            return {}
        return dict(self.db.rows("SELECT status, COUNT(*) FROM writeback GROUP BY status"))

    def purge_finished(self) -> int:
        if not self.db.two_way:
            return 0
        with self.db.transaction("purge old write-backs"):
            return self.db.execute(
                f"DELETE FROM writeback WHERE status IN ('{DELIVERED}', '{DROPPED}')"
                " AND finished_at < ?",
                [iso(self.clock() - RETENTION)],
            )
