"""The incidents table: each incident as last acted on, and where its open alert lives."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from fd_sync.core.decide import LedgerEntry
from fd_sync.core.incident import Incident
from fd_sync.core.payloads import Extras
from fd_sync.store.db import Database

_UPSERT = (
    "INSERT INTO incidents (sys_id, number, updated_on, mod_count, state, alert_open,"
    " fingerprint, snapshot, changed_at, destination, pinned, pin_extras)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(sys_id) DO UPDATE SET number=excluded.number,"
    " updated_on=excluded.updated_on, mod_count=excluded.mod_count,"
    " state=excluded.state, alert_open=excluded.alert_open,"
    " fingerprint=excluded.fingerprint, snapshot=excluded.snapshot,"
    " changed_at=excluded.changed_at, destination=excluded.destination,"
    " pinned=excluded.pinned, pin_extras=CASE WHEN excluded.pinned = 0 THEN NULL"
    " ELSE COALESCE(excluded.pin_extras, incidents.pin_extras) END"
)


class Incidents:
    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def _routed(self) -> bool:
        """Whether m002 is applied: a read-only open of an older ledger is not migrated."""
        return self.db.has_column("incidents", "destination")

    def entries(self, sys_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        """What the ledger knows of these incidents (alert_reached is the outbox's to say)."""
        routes = "destination, pinned" if self._routed else "NULL, 0"
        sql = (
            "SELECT sys_id, updated_on, mod_count, alert_open, fingerprint,"
            f" {routes} FROM incidents WHERE sys_id IN ({{marks}})"
        )
        return {
            sys_id: LedgerEntry(
                sys_id,
                updated_on,
                mod_count,
                bool(alert_open),
                fingerprint,
                destination=where,
                pinned=bool(pinned),
            )
            for sys_id, updated_on, mod_count, alert_open, fingerprint, where, pinned in (
                self.db.rows_in(sql, sys_ids)
            )
        }

    def open_alerts(self) -> dict[str, str]:
        """sys_id -> number of every incident whose alert is open in Flashduty."""
        return dict(self.db.rows("SELECT sys_id, number FROM incidents WHERE alert_open = 1"))

    def snapshots(self, sys_ids: Iterable[str]) -> dict[str, Incident]:
        """The last version of each incident the ledger acted on."""
        sql = "SELECT sys_id, snapshot FROM incidents WHERE sys_id IN ({marks})"
        return {
            sys_id: Incident.from_dict(json.loads(snapshot))
            for sys_id, snapshot in self.db.rows_in(sql, sys_ids)
        }

    def pins(self, sys_ids: Iterable[str]) -> dict[str, Extras]:
        """What the dispatch of each pinned incident chose; its updates carry the same."""
        if not self._routed:
            return {}  # an older ledger, opened read-only: nothing was ever pinned
        sql = "SELECT sys_id, pin_extras FROM incidents WHERE pinned = 1 AND sys_id IN ({marks})"
        return {
            sys_id: Extras.from_dict(json.loads(text) if text else None)
            for sys_id, text in self.db.rows_in(sql, sys_ids)
        }

    def upsert(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows in the column order of ``_UPSERT``; a row that leaves its pin forgets it."""
        self.db.executemany(_UPSERT, rows)

    def forget_alert(self, sys_id: str) -> None:
        """The incident has no alert any more (its create was dropped by an operator)."""
        self.db.execute(
            "UPDATE incidents SET alert_open = 0, destination = NULL, pinned = 0,"
            " pin_extras = NULL WHERE sys_id = ?",
            [sys_id],
        )

    def count(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM incidents"))

    def open_count(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM incidents WHERE alert_open = 1"))
