"""The incidents table: each incident as last acted on, and where its open alert lives."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fd_sync.core.decide import DEFAULT_DESTINATION, Decision, LedgerEntry
from fd_sync.core.incident import Incident, is_closed_state
from fd_sync.core.payloads import Extras
from fd_sync.store.db import JSON, Database


@dataclass(frozen=True)
class IncidentVersion:
    """An incident's version as the ledger last saw it, and whether its alert is open."""

    updated_on: str
    mod_count: int
    state: str
    alert_open: bool

    @property
    def open_in_servicenow(self) -> bool:
        return not is_closed_state(self.state)


_UPSERT = (
    "INSERT INTO incidents (sys_id, number, updated_on, mod_count, state, alert_open,"
    " fingerprint, snapshot, changed_at, destination, pinned, pin_extras, held)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(sys_id) DO UPDATE SET number=excluded.number,"
    " updated_on=excluded.updated_on, mod_count=excluded.mod_count,"
    " state=excluded.state, alert_open=excluded.alert_open,"
    " fingerprint=excluded.fingerprint, snapshot=excluded.snapshot,"
    " changed_at=excluded.changed_at, destination=excluded.destination,"
    " pinned=excluded.pinned, held=excluded.held,"
    " pin_extras=CASE WHEN excluded.pinned = 0 THEN NULL"
    " ELSE COALESCE(excluded.pin_extras, incidents.pin_extras) END"
)


class Incidents:
    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def _routed(self) -> bool:
        """Whether m002 is applied: a read-only open of an older ledger is not migrated."""
        return self.db.has_column("incidents", "destination")

    def entries_as_stored(self, sys_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        """The rows alone: whether an open alert reached Flashduty is the outbox's to say,
        so everyone else asks :meth:`Ledger.entries`."""
        routes = "destination, pinned" if self._routed else "NULL, 0"
        held = "held" if self.db.has_writeback_tables else "0"
        sql = (
            "SELECT sys_id, updated_on, mod_count, alert_open, fingerprint,"
            f" {routes}, {held} FROM incidents WHERE sys_id IN ({{marks}})"
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
                held=bool(was_held),
            )
            for sys_id, updated_on, mod_count, alert_open, fingerprint, where, pinned, was_held in (
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

    def upsert(
        self, decisions: Sequence[Decision], *, now: str, pins: Mapping[str, Extras]
    ) -> None:
        """Each decided incident as acted on; ``pins`` are the choices of a dispatch, kept
        while the incident stays pinned (a row that leaves its pin forgets it)."""
        rows = []
        for d in decisions:
            inc, entry = d.incident, d.entry
            pin = pins.get(inc.sys_id)
            rows.append(
                (
                    inc.sys_id,
                    inc.number,
                    entry.updated_on,
                    entry.mod_count,
                    inc.state,
                    int(entry.alert_open),
                    entry.fingerprint,
                    JSON.encode(inc.to_dict()),
                    now,
                    entry.destination,
                    int(entry.pinned),
                    JSON.encode(pin.to_dict()) if pin else None,
                    int(entry.held),
                )
            )
        self.db.executemany(_UPSERT, rows)

    def forget_alert(self, sys_id: str) -> None:
        """The incident has no alert any more (its create was dropped by an operator)."""
        self.db.execute(
            "UPDATE incidents SET alert_open = 0, destination = NULL, pinned = 0,"
            " pin_extras = NULL WHERE sys_id = ?",
            [sys_id],
        )

    def closed_in_flashduty(self, sys_id: str, *, held: bool) -> None:
        """A responder closed the alert in Flashduty: it is not open any more; ``held``
        while ServiceNow still has the incident open (an edit must not page again)."""
        self.db.execute(
            "UPDATE incidents SET alert_open = 0, pinned = 0, pin_extras = NULL, held = ?"
            " WHERE sys_id = ?",
            [int(held), sys_id],
        )

    def reopened_in_flashduty(self, sys_id: str, destination: str | None) -> None:
        """Flashduty reopened the incident: its alert is open again where it was."""
        self.db.execute(
            "UPDATE incidents SET alert_open = 1, held = 0, fingerprint = '',"
            " destination = COALESCE(?, destination, ?) WHERE sys_id = ?",
            [destination, DEFAULT_DESTINATION, sys_id],
        )

    def own_version(self, incident: Incident, *, held: bool) -> None:
        """fd-sync's own write made this version: the next poll must not act on it."""
        self.db.execute(
            "UPDATE incidents SET updated_on = ?, mod_count = ?, state = ?, snapshot = ?,"
            " held = ?, fingerprint = CASE WHEN alert_open = 1 THEN ? ELSE fingerprint END"
            " WHERE sys_id = ?",
            [
                incident.updated_on,
                incident.mod_count,
                incident.state,
                JSON.encode(incident.to_dict()),
                int(held),
                incident.fingerprint(),
                incident.sys_id,
            ],
        )

    def held(self) -> dict[str, str]:
        """sys_id -> number of incidents closed in Flashduty but open in ServiceNow."""
        if not self.db.has_writeback_tables:
            return {}
        return dict(self.db.rows("SELECT sys_id, number FROM incidents WHERE held = 1"))

    def versions(self, sys_ids: Iterable[str]) -> dict[str, IncidentVersion]:
        sql = (
            "SELECT sys_id, updated_on, mod_count, state, alert_open FROM incidents"
            " WHERE sys_id IN ({marks})"
        )
        return {
            r[0]: IncidentVersion(r[1], r[2], r[3], bool(r[4]))
            for r in self.db.rows_in(sql, sys_ids)
        }

    def count(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM incidents"))

    def open_count(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM incidents WHERE alert_open = 1"))
