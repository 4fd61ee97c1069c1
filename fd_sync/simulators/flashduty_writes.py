"""Flashduty's incident writes on loopback, and incidents that other integrations open.

``POST /incident/comment``, ``/incident/resolve``, ``/incident/reopen`` (each
``incident_ids``: 1 to 100 ObjectIDs) and ``/incident/reset`` (one ``incident_id``, at
least one field), with the limits and errors of ``api-reference/on-call.openapi.en.json``
(``CommentIncidentRequest``, ``ResolveIncidentRequest``, ``ReopenIncidentRequest``,
``UpdateIncidentFieldsRequest``): a text over its ``maxLength`` or a malformed id is
``InvalidParameter``, an unknown incident ``ResourceNotFound`` (HTTP 400). The key acts as
the member who made it (:attr:`app_key_member`), so its writes appear in the feed with that
``creator_id``, and a resolve's ``from`` is ``console``: nothing marks them as an API's.

:meth:`open_incident` is a monitoring tool's alert (Prometheus, Zabbix) in any channel,
from an integration other than fd-sync's; :meth:`change_severity`, :meth:`merge_away`
are what responders do to it.
"""

from __future__ import annotations

import re
import secrets
import threading
from typing import Any

from fd_sync.simulators.flashduty_openapi import envelope_data, envelope_error
from fd_sync.simulators.http import Response

WRITE_PATHS = (
    "/incident/comment",
    "/incident/resolve",
    "/incident/reopen",
    "/incident/reset",
    "/incident/assign",
)
APP_KEY_MEMBER = 3999999  # the member who created the app key: its writes are theirs
MONITORING_INTEGRATION_ID = 77  # a Prometheus integration, say: not fd-sync's
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
TEXT_LIMITS = {"comment": 1024, "root_cause": 1024, "resolution": 1024, "reason": 1024}
RESET_LIMITS = {
    "title": (3, 200),
    "description": (3, 6144),
    "impact": (3, 6144),
    "root_cause": (3, 6144),
    "resolution": (3, 6144),
}
SEVERITIES = ("Info", "Warning", "Critical")


class IncidentWrites:
    """A mixin of :class:`~fd_sync.simulators.flashduty.FlashdutySim`."""

    _lock: threading.RLock
    fd_incidents: dict[str, dict[str, Any]]
    alerts: dict[str, dict[str, Any]]
    _opened: Any
    _entry: Any
    _object_id: Any
    persons: dict[int, dict[str, Any]]
    comment: Any
    resolve: Any
    reopen: Any

    def _init_writes(self) -> None:
        self.app_key_member = APP_KEY_MEMBER
        self.persons[APP_KEY_MEMBER] = {
            "person_id": APP_KEY_MEMBER,
            "person_name": "API key owner",
            "email": "owner@example.com",
        }
        self.openapi_writes: list[tuple[str, dict[str, Any]]] = []  # (path, body) accepted

    # --- what tests and the demo do -------------------------------------------------------

    def open_incident(
        self,
        title: str,
        *,
        channel_id: int,
        severity: str = "Critical",
        integration_id: int = MONITORING_INTEGRATION_ID,
        labels: dict[str, str] | None = None,
        description: str = "",
    ) -> str:
        """A monitoring alert opens an incident in ``channel_id``; returns its incident_id."""
        with self._lock:
            key = f"monitoring-{secrets.token_hex(6)}"
            return str(
                self._opened(
                    key,
                    key,
                    title,
                    dict(labels or {}),
                    integration_id=integration_id,
                    channel_id=channel_id,
                    severity=severity,
                    description=description,
                )
            )

    def change_severity(self, incident_id: str, person: int, severity: str) -> None:
        """A responder changes the severity (feed ``i_r_severity``)."""
        with self._lock:
            incident = self.fd_incidents[incident_id]
            before = incident["incident_severity"]
            incident["incident_severity"] = severity
            detail = {"from": before, "to": severity}
            self._entry(incident_id, "i_r_severity", person, detail)

    def move(self, incident_id: str, channel_id: int) -> None:
        """A responder moves the incident to another channel."""
        with self._lock:
            self.fd_incidents[incident_id]["channel_id"] = channel_id

    def merge_away(self, incident_id: str) -> None:
        """Merged into another incident (or deleted): no OpenAPI read finds it any more."""
        with self._lock:
            self.fd_incidents[incident_id]["_gone"] = True

    def writes_to(self, incident_id: str, path: str | None = None) -> list[dict[str, Any]]:
        """The accepted OpenAPI writes naming this incident, oldest first."""
        with self._lock:
            return [
                body
                for p, body in self.openapi_writes
                if (path is None or p == path)
                and incident_id in (body.get("incident_ids") or [body.get("incident_id")])
            ]

    # --- the endpoints --------------------------------------------------------------------

    def _incident_writes(self, path: str, body: dict[str, Any]) -> Response:
        def bad(message: str) -> Response:
            return envelope_error("InvalidParameter", message, 400)

        for name, limit in TEXT_LIMITS.items():
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                return bad(f"{name} must be a string of at most {limit} characters")
        with self._lock:
            if path == "/incident/reset":
                return self._reset(body, bad)
            if path == "/incident/assign":
                return self._assign(body, bad)
            ids = body.get("incident_ids")
            if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
                return bad("incident_ids must list 1 to 100 incident ids")
            if not all(isinstance(i, str) and _OBJECT_ID.fullmatch(i) for i in ids):
                return bad("incident_ids must be 24-hex ObjectIDs")
            missing = [i for i in ids if i not in self.fd_incidents]
            if missing:
                return envelope_error("ResourceNotFound", f"incident {missing[0]} not found", 400)
            self.openapi_writes.append((path, dict(body)))
            member = self.app_key_member
            for incident_id in ids:
                incident = self.fd_incidents[incident_id]
                if path == "/incident/comment":
                    self.comment(incident_id, member, str(body.get("comment") or ""))
                elif path == "/incident/resolve" and incident["progress"] != "Closed":
                    self.resolve(incident_id, member, str(body.get("resolution") or ""))
                elif path == "/incident/reopen" and incident["progress"] == "Closed":
                    self.reopen(incident_id, member, str(body.get("reason") or ""))
            return envelope_data({})

    def _assign(self, body: dict[str, Any], bad: Any) -> Response:
        """AssignIncidentRequest: ``incident_id`` or ``incident_ids``, and ``assigned_to``
        with ``person_ids`` (1 to 100 members) or an escalation rule."""
        ids = body.get("incident_ids") or ([body["incident_id"]] if body.get("incident_id") else [])
        if not ids or not all(isinstance(i, str) and _OBJECT_ID.fullmatch(i) for i in ids):
            return bad("incident_id or incident_ids (24-hex ObjectIDs) is required")
        target = body.get("assigned_to")
        people = target.get("person_ids") if isinstance(target, dict) else None
        if not isinstance(people, list) or not 1 <= len(people) <= 100:
            return bad("assigned_to.person_ids must list 1 to 100 member ids")
        if not all(isinstance(p, int) and p in self.persons for p in people):
            return bad("assigned_to.person_ids names a member who does not exist")
        missing = [i for i in ids if i not in self.fd_incidents]
        if missing:
            return envelope_error("ResourceNotFound", f"incident {missing[0]} not found", 400)
        self.openapi_writes.append(("/incident/assign", dict(body)))
        kind = str(target.get("type") or "assign") if isinstance(target, dict) else "assign"
        for incident_id in ids:
            self.fd_incidents[incident_id]["assigned_to"] = {"person_ids": people, "type": kind}
            detail = {"type": kind, "person_ids": people, "to": people}
            self._entry(incident_id, "i_assign", self.app_key_member, detail)
        return envelope_data({})

    def _reset(self, body: dict[str, Any], bad: Any) -> Response:
        incident_id = body.get("incident_id")
        if not isinstance(incident_id, str) or not _OBJECT_ID.fullmatch(incident_id):
            return bad("incident_id must be a 24-hex ObjectID")
        incident = self.fd_incidents.get(incident_id)
        if incident is None:
            return envelope_error("ResourceNotFound", f"incident {incident_id} not found", 400)
        given = {k: v for k, v in body.items() if k != "incident_id"}
        if not given:
            return bad("at least one field must be provided")
        for name, (low, high) in RESET_LIMITS.items():
            value = given.get(name)
            if value is not None and (not isinstance(value, str) or not low <= len(value) <= high):
                return bad(f"{name} must be {low} to {high} characters")
        severity = given.get("incident_severity")
        if severity is not None and severity not in SEVERITIES:
            return bad("incident_severity must be one of Info, Warning, Critical")
        self.openapi_writes.append(("/incident/reset", dict(body)))
        if severity is not None and severity != incident["incident_severity"]:
            detail = {"from": incident["incident_severity"], "to": severity}
            incident["incident_severity"] = severity
            self._entry(incident_id, "i_r_severity", self.app_key_member, detail)
        if "title" in given and given["title"] != incident["title"]:
            incident["title"] = given["title"]
            self._entry(incident_id, "i_r_title", self.app_key_member, {"to": given["title"]})
        for name in ("description", "impact", "root_cause", "resolution"):
            if name in given:
                incident[name] = given[name]
        return envelope_data({})
