"""The links table: each alert fd-sync opened, its Flashduty incident, and how far that
incident's timeline was written back to ServiceNow.

A row starts when Flashduty acknowledges a create (with the alert_key its answer gave);
the write-back finds the incident and fills ``incident_id``; every read of the timeline
moves ``fd_updated_at``, ``read_at`` and ``cursor`` in the same transaction as the write it
queued, so a crash re-reads, never skips. ``watching`` ends once Flashduty has closed the
incident, the last of its timeline is written back, and no alert is open or held.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fd_sync.core.feed import FeedCursor
from fd_sync.store.db import Database
from fd_sync.store.queue import PENDING

_COLUMNS = (
    "sys_id, number, alert_key, destination, sent_at, incident_id, progress, fd_updated_at,"
    " read_at, cursor, own_mod_count, {origin}"
)
SERVICENOW_BORN, FLASHDUTY_BORN = "servicenow", "flashduty"  # where the incident began


@dataclass(frozen=True)
class Link:
    sys_id: str
    number: str
    alert_key: str | None
    destination: str | None
    sent_at: str  # when Flashduty acknowledged the create (ISO, UTC)
    incident_id: str | None
    progress: str | None
    fd_updated_at: int  # the incident's updated_at at the last timeline read (seconds)
    read_at: int  # when the timeline was last read (seconds, this host's clock)
    cursor: FeedCursor
    own_mod_count: int | None  # the ServiceNow version fd-sync's last write produced
    origin: str = SERVICENOW_BORN  # FLASHDUTY_BORN: a ticket fd-sync opened for the incident

    @property
    def is_ticket(self) -> bool:
        return self.origin == FLASHDUTY_BORN


@dataclass(frozen=True)
class Activity:
    """One watched incident's last moves, as the ledger has them."""

    sys_id: str
    sent_at: str  # ISO, UTC
    progress: str  # Flashduty's, at the last read
    fd_updated_at: int  # Unix seconds
    read_at: int  # Unix seconds of the last look (list-by-ids or timeline); 0: never
    servicenow_updated_on: str | None  # "YYYY-MM-DD HH:MM:SS" UTC
    owed: bool  # an event, a write-back or an OpenAPI write is pending


def _link(row: Sequence[Any]) -> Link:
    sys_id, number, key, destination, sent_at, incident_id, progress, updated, read, cursor = row[
        :10
    ]
    own, origin = row[10], row[11]
    return Link(
        sys_id,
        number,
        key,
        destination,
        sent_at,
        incident_id,
        progress,
        int(updated or 0),
        int(read or 0),
        FeedCursor.from_json(cursor),
        own,
        origin or SERVICENOW_BORN,
    )


class Links:
    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def columns(self) -> str:
        # A read-only open of a ledger before m005 has no origin: all were ServiceNow-born.
        has_origin = self.db.has_column("links", "origin")
        return _COLUMNS.format(origin="origin" if has_origin else f"'{SERVICENOW_BORN}'")

    def sent(
        self, sys_id: str, number: str, *, alert_key: str | None, destination: str, sent_at: str
    ) -> None:
        """A create reached Flashduty: a new alert, whose incident is still to be found."""
        self.db.execute(
            "INSERT INTO links (sys_id, number, alert_key, destination, sent_at, watching)"
            " VALUES (?,?,?,?,?,1) ON CONFLICT(sys_id) DO UPDATE SET number=excluded.number,"
            " alert_key=excluded.alert_key, destination=excluded.destination,"
            " sent_at=excluded.sent_at, incident_id=NULL, progress=NULL, fd_updated_at=0,"
            " read_at=0, cursor=NULL, watching=1",
            [sys_id, number, alert_key, destination, sent_at],
        )

    def ticket(self, sys_id: str, number: str, *, incident_id: str, sent_at: str) -> None:
        """A ticket fd-sync opened: linked from the start, its whole timeline still to read."""
        self.db.execute(
            "INSERT INTO links (sys_id, number, sent_at, incident_id, watching, origin)"
            " VALUES (?,?,?,?,1,?) ON CONFLICT(sys_id) DO NOTHING",
            [sys_id, number, sent_at, incident_id, FLASHDUTY_BORN],
        )

    def watch_again(self, sys_id: str) -> None:
        """A ticket reopened in ServiceNow: its Flashduty timeline matters again."""
        self.db.execute("UPDATE links SET watching = 1 WHERE sys_id = ?", [sys_id])

    def linked_incidents(self, incident_ids: Iterable[str]) -> set[str]:
        """Which of these Flashduty incidents are linked to a ServiceNow incident fd-sync pushed."""
        if not self.db.has_writeback_tables:
            return set()
        sql = "SELECT incident_id FROM links WHERE incident_id IN ({marks})"
        return {row[0] for row in self.db.rows_in(sql, incident_ids)}

    def oldest_unlinked(self) -> str | None:
        """When the oldest alert whose incident is not found yet was sent (ISO)."""
        if not self.db.has_writeback_tables:
            return None
        value = self.db.scalar(
            "SELECT MIN(sent_at) FROM links WHERE watching = 1 AND incident_id IS NULL"
        )
        return str(value) if value else None

    def unlinked(self, limit: int = 1000) -> list[Link]:
        """Alerts whose Flashduty incident is not known yet, oldest first."""
        if not self.db.has_writeback_tables:
            return []
        rows = self.db.rows(
            f"SELECT {self.columns} FROM links WHERE watching = 1 AND incident_id IS NULL"
            " ORDER BY sent_at LIMIT ?",
            [limit],
        )
        return [_link(r) for r in rows]

    def watched(self) -> list[Link]:
        """Linked incidents whose timeline is still read each cycle."""
        if not self.db.has_writeback_tables:
            return []
        rows = self.db.rows(
            f"SELECT {self.columns} FROM links WHERE watching = 1 AND incident_id IS NOT NULL"
            " ORDER BY sys_id"
        )
        return [_link(r) for r in rows]

    def activity(self) -> list[Activity]:
        """What the read cadence needs of each watched incident (see core.cadence)."""
        if not self.db.has_writeback_tables:
            return []
        owed: set[str] = set()
        for table in ("outbox", "writeback", "flashduty_writes"):
            owed.update(
                r[0] for r in self.db.rows(f"SELECT sys_id FROM {table} WHERE status = '{PENDING}'")
            )
        rows = self.db.rows(
            "SELECT l.sys_id, l.sent_at, l.progress, l.fd_updated_at,"
            " CASE WHEN l.checked_at > l.read_at THEN l.checked_at ELSE l.read_at END,"
            " i.updated_on"
            " FROM links l LEFT JOIN incidents i ON i.sys_id = l.sys_id"
            " WHERE l.watching = 1 AND l.incident_id IS NOT NULL ORDER BY l.sys_id"
        )
        return [
            Activity(r[0], r[1], r[2] or "", int(r[3] or 0), int(r[4] or 0), r[5], r[0] in owed)
            for r in rows
        ]

    def checked(self, sys_ids: Iterable[str], at: int) -> None:
        """list-by-ids looked at these incidents at ``at`` (the read cadence counts it)."""
        self.db.executemany(
            "UPDATE links SET checked_at = ? WHERE sys_id = ?", [(at, s) for s in sys_ids]
        )

    def get(self, sys_ids: Iterable[str]) -> dict[str, Link]:
        sql = f"SELECT {self.columns} FROM links WHERE sys_id IN ({{marks}})"
        return {row[0]: _link(row) for row in self.db.rows_in(sql, sys_ids)}

    def link(self, sys_id: str, incident_id: str) -> None:
        self.db.execute("UPDATE links SET incident_id = ? WHERE sys_id = ?", [incident_id, sys_id])

    def record_read(
        self,
        sys_id: str,
        *,
        progress: str,
        updated_at: int,
        read_at: int,
        cursor: FeedCursor,
        watching: bool,
    ) -> None:
        """The timeline was read up to ``cursor``; call in the transaction that queues its write."""
        self.db.execute(
            "UPDATE links SET progress = ?, fd_updated_at = ?, read_at = ?, cursor = ?,"
            " watching = ? WHERE sys_id = ?",
            [progress, updated_at, read_at, cursor.to_json(), int(watching), sys_id],
        )

    def own_write(self, sys_id: str, mod_count: int) -> None:
        self.db.execute("UPDATE links SET own_mod_count = ? WHERE sys_id = ?", [mod_count, sys_id])

    def counts(self) -> tuple[int, int]:
        """(watched, waiting for their incident) for `status`."""
        if not self.db.has_writeback_tables:
            return 0, 0
        row = self.db.one(
            "SELECT COUNT(incident_id), COUNT(*) - COUNT(incident_id) FROM links WHERE watching = 1"
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)
