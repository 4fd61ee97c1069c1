"""The Table API's writes: ``POST /api/now/table/incident`` (a new incident: 201, the
record, a ``Location`` header) and ``PATCH`` (and ``PUT``) ``/api/now/table/incident/{sys_id}``.

As the platform does it (REFERENCE section 7): unknown fields are ignored; journal fields
(``work_notes``, ``comments``) become ``sys_journal_field`` rows written by the API user and
read back empty; the version (``sys_updated_on``, ``sys_mod_count``, ``sys_updated_by``)
moves only when something changed; a data policy (:attr:`data_policy`) refuses with 403
``Data Policy Exception: The following fields are mandatory: ...``; a user without write
access (:attr:`deny_write`) gets 403 ``ACL Exception Update Failed due to security
constraints``. The answer is the record, rendered as a GET with the same parameters.

A POST may also meet a data policy on create (:attr:`create_policy`: 403 naming the
mandatory fields) and a reference field whose value names no record (400). What an
instance does with such a value varies (REFERENCE section 10); this one refuses it, and
takes a sys_id or the display value (a group's or user's name) of an existing record.
"""

from __future__ import annotations

import bisect
import json
import threading
from typing import Any

from fd_sync.simulators.http import Request, Response
from fd_sync.simulators.servicenow_data import (
    FIELD_LABELS,
    INCIDENT_COLUMNS,
    JOURNAL_FIELDS,
    REFERENCES,
    SimClock,
    new_sys_id,
)

READ_ONLY = (
    "sys_id",
    "number",
    "sys_updated_on",
    "sys_created_on",
    "sys_mod_count",
    "sys_updated_by",
)


def _error(status: int, message: str, detail: str | None = None) -> Response:
    return Response.json(
        {"error": {"message": message, "detail": detail}, "status": "failure"}, status
    )


def _json_body(request: Request) -> dict[str, Any] | Response:
    """The request's JSON object, or the platform's answer to a body that is not one."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _error(400, "Exception while reading request", "Invalid JSON")
    if not isinstance(body, dict):
        return _error(400, "Exception while reading request", "The payload is not valid JSON.")
    return body


class TableWrites:
    """PATCH of one incident, with the platform's side effects."""

    tables: dict[str, dict[str, dict[str, str]]]
    custom_columns: set[str]
    username: str
    clock: SimClock
    _index: list[tuple[str, str]]
    _lock: threading.RLock
    _version: int
    _renderer: Any  # TableReads'

    def _init_writes(self) -> None:
        self.deny_write = False  # the integration user may read but not write incidents
        # state value -> fields that must be filled for it (a data policy on resolve, close)
        self.data_policy: dict[str, tuple[str, ...]] = {}
        self.tables.setdefault("sys_data_policy_rule", {})
        self.writes: list[tuple[str, dict[str, Any]]] = []  # (sys_id, body) of each PATCH
        self.created: list[str] = []  # sys_ids of the incidents POSTed, in order
        self.create_policy: tuple[str, ...] = ()  # fields a data policy wants on create
        self.posts = 0  # POSTs received, refused or not
        self.written = threading.Condition(self._lock)

    def require_on_close(self, *fields: str, states: tuple[str, ...] = ("6", "7")) -> None:
        """A data policy: resolving (and closing) needs these fields, as many instances have."""
        with self._lock:
            for state in states:
                self.data_policy[state] = fields
            for name in fields:
                sys_id = new_sys_id()
                self.tables["sys_data_policy_rule"][sys_id] = {
                    "sys_id": sys_id,
                    "table": "incident",
                    "field": name,
                    "mandatory": "true",
                    "conditions": "stateIN" + ",".join(states),
                }

    def wait_for_writes(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` PATCHes changed something (an event, not a sleep)."""
        with self.written:
            return self.written.wait_for(lambda: len(self.writes) >= count, timeout)

    def journal(self, sys_id: str, element: str = "work_notes") -> list[dict[str, str]]:
        """The journal entries of an incident, oldest first (what the form shows)."""
        with self._lock:
            rows = [
                r
                for r in self.tables["sys_journal_field"].values()
                if r["element_id"] == sys_id and r["element"] == element
            ]
        return sorted(rows, key=lambda r: r["sys_created_on"])  # stable: in write order

    def _post(self, table: str, request: Request) -> Response:
        if table != "incident":
            return _error(403, "Operation Failed", "fd-sync's simulator creates incidents only")
        body = _json_body(request)
        if isinstance(body, Response):
            return body
        with self._lock:
            self.posts += 1
            if self.deny_write:
                return _error(
                    403,
                    "Operation Failed",
                    "ACL Exception Insert Failed due to security constraints",
                )
            known = set(INCIDENT_COLUMNS) | self.custom_columns
            fields = {
                k: str(v)
                for k, v in body.items()
                if k in known and k not in READ_ONLY and k not in JOURNAL_FIELDS
            }
            for name, value in list(fields.items()):
                if name in REFERENCES and value:
                    target = self.tables.get(REFERENCES[name], {})
                    by_name = [i for i, r in target.items() if value in (r.get("name"), i)]
                    if not by_name:
                        return _error(
                            400,
                            "Invalid reference",
                            f"{name}: no {REFERENCES[name]} record matches {value!r}",
                        )
                    fields[name] = by_name[0]
            missing = [f for f in self.create_policy if not fields.get(f)]
            if missing:
                labels = ", ".join(FIELD_LABELS.get(f, f) for f in missing)
                return _error(
                    403,
                    "Operation Failed",
                    f"Data Policy Exception: \n The following fields are mandatory: {labels}",
                )
            row = self.create(**fields)  # type: ignore[attr-defined]
            stored = self.tables["incident"][row["sys_id"]]
            stored["sys_updated_by"] = self.username
            notes = {k: str(v) for k, v in body.items() if k in JOURNAL_FIELDS and str(v).strip()}
            if notes:
                self._write_row(stored, {}, notes)
            self.created.append(row["sys_id"])
            self.written.notify_all()
            render = self._renderer("incident", request.query)
            location = f"{getattr(self, 'url', '')}/api/now/table/incident/{row['sys_id']}"
            response = Response.json({"result": render(stored)}, 201)
            response.headers["Location"] = location
            return response

    def wait_for_created(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` incidents were POSTed (an event, not a sleep)."""
        with self.written:
            return self.written.wait_for(lambda: len(self.created) >= count, timeout)

    def _patch(self, table: str, sys_id: str, request: Request) -> Response:
        if table != "incident":
            return _error(403, "Operation Failed", "fd-sync's simulator writes incidents only")
        body = _json_body(request)
        if isinstance(body, Response):
            return body
        with self._lock:
            row = self.tables["incident"].get(sys_id)
            if row is None:
                return _error(
                    404,
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                )
            if self.deny_write:
                return _error(
                    403,
                    "Operation Failed",
                    "ACL Exception Update Failed due to security constraints",
                )
            known = set(INCIDENT_COLUMNS) | self.custom_columns
            changes = {
                k: str(v)
                for k, v in body.items()
                if k in known
                and k not in READ_ONLY
                and k not in JOURNAL_FIELDS
                and row.get(k) != str(v)
            }
            notes = {k: str(v) for k, v in body.items() if k in JOURNAL_FIELDS and str(v).strip()}
            after = {**row, **changes}
            missing = [
                f for f in self.data_policy.get(after.get("state", ""), ()) if not after.get(f)
            ]
            if missing and changes:
                labels = ", ".join(FIELD_LABELS.get(f, f) for f in missing)
                return _error(
                    403,
                    "Operation Failed",
                    f"Data Policy Exception: \n The following fields are mandatory: {labels}",
                )
            if changes or notes:
                self._write_row(row, changes, notes)
                self.writes.append((sys_id, dict(body)))
                self.written.notify_all()
            render = self._renderer("incident", request.query)
            return Response.json({"result": render(row)})

    def _write_row(
        self, row: dict[str, str], changes: dict[str, str], notes: dict[str, str]
    ) -> None:
        stamp = self.clock.text()
        for element, text in notes.items():
            journal_id = new_sys_id()
            self.tables["sys_journal_field"][journal_id] = {
                "sys_id": journal_id,
                "name": "incident",
                "element": element,
                "element_id": row["sys_id"],
                "value": text,
                "sys_created_on": stamp,
                "sys_created_by": self.username,
            }
        self._index.remove((row["sys_updated_on"], row["sys_id"]))
        row.update(changes)
        if "state" in changes:
            row["active"] = "false" if row["state"] in ("6", "7", "8") else "true"
        row["sys_updated_on"] = stamp
        row["sys_updated_by"] = self.username
        row["sys_mod_count"] = str(int(row["sys_mod_count"] or 0) + 1)
        bisect.insort(self._index, (stamp, row["sys_id"]))
        self._version += 1
