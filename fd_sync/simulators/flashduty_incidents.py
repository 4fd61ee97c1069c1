"""Flashduty's incidents on loopback: alerts open incidents, responders act on them, and the
On-call OpenAPI reads them, as ``api-reference/on-call.openapi.en.json`` documents.

Each accepted create opens an alert (an ObjectID ``alert_id``) and an incident with its
timeline (``i_new``, the escalation rule's first ``i_assign``); the resolve fd-sync pushes
closes both (``i_rslv`` with ``from = "event"``). Tests act as responders through
:meth:`ack`, :meth:`unack`, :meth:`comment`, :meth:`assign`, :meth:`resolve`,
:meth:`reopen` and :meth:`notify`; a responder's close closes the alert, so a later
update for the same key opens a new one (and pages), as Flashduty does.

Endpoints: ``/alert/list`` (``start_time``/``end_time`` required, span at most 31 days,
``alert_keys``, ``alert_ids``, ``is_active``, ``integration_ids``, ``by_updated_at``,
``p``/``limit`` <= 100, ``asc``), ``/incident/list`` (window on the start time, ``progress``,
``incident_ids``), ``/incident/list-by-ids`` (at most 100 ids), ``/incident/info`` and
``/incident/feed`` (``p``, ``limit`` <= 100, ``asc``, ``types``; ``created_at`` in
milliseconds). Incident times are whole seconds, as Flashduty's are. Which ``alert_key``
an alert pushed in the ServiceNow format gets is not documented: :attr:`servicenow_alert_key`
chooses (the ``sys_id``, the ``number``, or a hash only the push answer tells).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from fd_sync.simulators.flashduty_openapi import INCIDENT_PATHS, envelope_data, envelope_error
from fd_sync.simulators.http import Response

__all__ = ["INCIDENT_PATHS", "IncidentSide"]

MAX_SPAN = 31 * 86400  # on-call.openapi: "Max span 31 days"
MAX_IDS = 100
DEFAULT_RESPONDER = 4000000  # the member the escalation rule's first layer assigns
PUSH_INTEGRATION_ID = 1  # the integration fd-sync pushes to (its alerts' integration_id)
PUSH_CHANNEL_ID = 1  # the channel that integration routes to


class IncidentSide:
    """The incidents behind the alerts, and the endpoints that read them."""

    _lock: threading.RLock
    url: str
    persons: dict[int, dict[str, Any]]  # the OpenAPI side's members

    def _init_incidents(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall  # Unix time; tests may move it
        self.alerts: dict[str, dict[str, Any]] = {}  # alert_id -> AlertItem
        self.active_alert: dict[str, str] = {}  # key as received -> its open alert_id
        self.fd_incidents: dict[str, dict[str, Any]] = {}  # incident_id -> IncidentInfo
        self.feeds: dict[str, list[dict[str, Any]]] = {}  # incident_id -> its timeline
        self.servicenow_alert_key = "sys_id"  # or "number", or "hash"
        self._object_ids = itertools.count(1)
        self._nums = itertools.count(1)

    # --- what an event does --------------------------------------------------------------

    def _object_id(self) -> str:
        return f"{int(self.wall()):08x}{next(self._object_ids):016x}"[:24]

    def alert_key_for(self, fmt: str, body: dict[str, Any]) -> str:
        """The alert_key Flashduty gives the alert of this body."""
        if fmt == "standard":
            return str(body["alert_key"])
        if self.servicenow_alert_key == "number":
            return str(body["number"])
        if self.servicenow_alert_key == "hash":
            return hashlib.md5(str(body["sys_id"]).encode(), usedforsecurity=False).hexdigest()
        return str(body["sys_id"])

    def _entry(self, incident_id: str, kind: str, creator: int, detail: dict[str, Any]) -> None:
        now = self.wall()
        self.feeds[incident_id].append(
            {
                "ref_id": incident_id,
                "type": kind,
                "detail": detail,
                "account_id": 1,
                "creator_id": creator,
                "deleted_at": 0,
                "created_at": int(now * 1000),
                "updated_at": int(now * 1000),
            }
        )
        self.fd_incidents[incident_id]["updated_at"] = int(now)

    def _opened(
        self,
        key: str,
        alert_key: str,
        title: str,
        labels: dict[str, Any],
        *,
        integration_id: int = PUSH_INTEGRATION_ID,
        channel_id: int = PUSH_CHANNEL_ID,
        severity: str = "Warning",
        description: str = "",
    ) -> str:
        """An event opened a new alert: a new incident, its timeline begun. Call locked.
        Returns the incident's id."""
        now = int(self.wall())
        alert_id, incident_id = self._object_id(), self._object_id()
        channel = getattr(self, "channels", {}).get(channel_id, {})
        self.alerts[alert_id] = {
            "_key": key,  # as the push side knows it (not served)
            "alert_id": alert_id,
            "alert_key": alert_key,
            "alert_status": "Warning",
            "title": title,
            "start_time": now,
            "last_time": now,
            "end_time": 0,
            "created_at": now,
            "updated_at": now,
            "labels": labels,
            "integration_id": integration_id,
            "channel_id": channel_id,
            "incident": {"incident_id": incident_id, "title": title, "progress": "Triggered"},
        }
        self.active_alert[key] = alert_id
        self.fd_incidents[incident_id] = {
            "incident_id": incident_id,
            "num": f"{next(self._nums):06X}",
            "title": title,
            "description": description,
            "incident_severity": severity,
            "channel_id": channel_id,
            "channel_name": channel.get("channel_name", ""),
            "integration_id": integration_id,
            "integration_ids": [integration_id],
            "creator_id": 0,
            "progress": "Triggered",
            "start_time": now,
            "end_time": 0,
            "ack_time": 0,
            "close_time": 0,
            "closer_id": 0,
            "resolution": "",
            "created_at": now,
            "updated_at": now,
            "responders": [],
            "labels": labels,
            "detail_url": f"{self.url}/incident/{incident_id}",
            "alert_ids": [alert_id],
        }
        self.feeds[incident_id] = []
        self._entry(incident_id, "i_new", 0, {"title": title, "severity": severity})
        self._entry(
            incident_id,
            "i_assign",
            0,
            {"type": "escalate", "layer_idx": 0, "person_ids": [DEFAULT_RESPONDER]},
        )
        return incident_id

    def _event_closed(self, key: str) -> None:
        """fd-sync's resolve closed the alert: its incident closes with origin "event"."""
        alert_id = self.active_alert.pop(key, None)
        if alert_id is None:
            return
        self._close_alert(alert_id)
        incident_id = self.alerts[alert_id]["incident"]["incident_id"]
        incident = self.fd_incidents[incident_id]
        if incident["progress"] != "Closed":
            self._close(incident, closer=0, origin="event")

    def _close_alert(self, alert_id: str) -> None:
        alert = self.alerts[alert_id]
        now = int(self.wall())
        alert.update(alert_status="Ok", end_time=now, updated_at=now)

    def _close(self, incident: dict[str, Any], *, closer: int, origin: str) -> None:
        now = int(self.wall())
        incident.update(progress="Closed", close_time=now, end_time=now, closer_id=closer)
        for alert_id in incident["alert_ids"]:
            self.alerts[alert_id]["incident"]["progress"] = "Closed"
        self._entry(incident["incident_id"], "i_rslv", closer, {"from": origin})

    # --- responders (what tests and the demo do in Flashduty) -------------------------------

    def incident_of(self, key: str) -> str:
        """The incident of the newest alert with this key (as received: sys_id or alert_key)."""
        with self._lock:
            alert_id = self.active_alert.get(key)
            if alert_id is None:
                matching = [a for a in self.alerts.values() if a.get("_key") == key]
                if not matching:
                    raise KeyError(f"no alert for {key}")
                alert_id = matching[-1]["alert_id"]
            return str(self.alerts[alert_id]["incident"]["incident_id"])

    def _act(self, incident_id: str, kind: str, person: int, detail: dict[str, Any]) -> None:
        with self._lock:
            self._entry(incident_id, kind, person, detail)

    def ack(self, incident_id: str, person: int) -> None:
        with self._lock:
            incident = self.fd_incidents[incident_id]
            now = int(self.wall())
            incident.update(progress="Processing", ack_time=incident["ack_time"] or now)
            self._progress(incident, "Processing")
            self._responder(incident, person, now).update(acknowledged_at=now)
            self._entry(incident_id, "i_ack", person, {})

    def unack(self, incident_id: str, person: int) -> None:
        with self._lock:
            incident = self.fd_incidents[incident_id]
            incident.update(progress="Triggered")
            self._progress(incident, "Triggered")
            self._responder(incident, person, int(self.wall())).update(acknowledged_at=0)
            self._entry(incident_id, "i_unack", person, {})

    def _responder(self, incident: dict[str, Any], person: int, now: int) -> dict[str, Any]:
        """The incident's responder entry for a person (documented: person_id, assigned_at,
        acknowledged_at, person_name, email), added on first contact."""
        for entry in incident["responders"]:
            if entry["person_id"] == person:
                return entry
        info = self.persons.get(person, {})
        entry = {
            "person_id": person,
            "assigned_at": now,
            "acknowledged_at": 0,
            "person_name": info.get("person_name", ""),
            "email": info.get("email", ""),
        }
        incident["responders"].append(entry)
        return entry

    def comment(self, incident_id: str, person: int, text: str) -> None:
        self._act(incident_id, "i_comm", person, {"comment": text})

    def assign(self, incident_id: str, person: int, to: list[int]) -> None:
        with self._lock:
            self.fd_incidents[incident_id]["assigned_to"] = {"person_ids": to, "type": "reassign"}
            detail = {"type": "reassign", "person_ids": to, "to": to}
            self._entry(incident_id, "i_assign", person, detail)

    def notify(self, incident_id: str, to: list[int], by: str = "sms") -> None:
        persons = [{"person_id": p} for p in to]
        self._act(incident_id, "i_notify", 0, {"by": by, "layer_idx": 0, "persons": persons})

    def resolve(
        self, incident_id: str, person: int, resolution: str = "", *, origin: str = "console"
    ) -> None:
        """A responder (or, with origin "autorslv", Flashduty) closes the incident: its
        alerts close too, so the next event for the same key opens a new alert."""
        with self._lock:
            incident = self.fd_incidents[incident_id]
            incident["resolution"] = resolution
            for alert_id in incident["alert_ids"]:
                self._close_alert(alert_id)
                for key, active in list(self.active_alert.items()):
                    if active == alert_id:
                        del self.active_alert[key]
                        self._responder_closed(key)
            self._close(incident, closer=person, origin=origin)

    def reopen(self, incident_id: str, person: int, reason: str = "") -> None:
        with self._lock:
            incident = self.fd_incidents[incident_id]
            incident.update(progress="Triggered", close_time=0, end_time=0, closer_id=0)
            for alert_id in incident["alert_ids"]:
                alert = self.alerts[alert_id]
                alert.update(alert_status="Warning", end_time=0, updated_at=int(self.wall()))
                alert["incident"]["progress"] = "Triggered"
                self.active_alert[alert["_key"]] = alert_id
                self._responder_reopened(alert["_key"])
            self._entry(incident_id, "i_reopen", person, {"reason": reason})

    def _progress(self, incident: dict[str, Any], progress: str) -> None:
        for alert_id in incident["alert_ids"]:
            self.alerts[alert_id]["incident"]["progress"] = progress

    # Hooks for the push side (FlashdutySim keeps which keys are open).
    def _responder_closed(self, key: str) -> None:  # pragma: no cover - overridden
        pass

    def _responder_reopened(self, key: str) -> None:  # pragma: no cover - overridden
        pass

    # --- the OpenAPI ------------------------------------------------------------------------

    def _incidents_api(self, path: str, body: dict[str, Any]) -> Response:
        def bad(message: str) -> Response:
            return envelope_error("InvalidParameter", message, 400)

        with self._lock:
            if path == "/incident/list-by-ids":
                ids = body.get("incident_ids")
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    return bad("incident_ids must be a list of strings")
                if len(ids) > MAX_IDS:
                    return bad(f"at most {MAX_IDS} incident_ids")
                items = [
                    self._public(self.fd_incidents[i])
                    for i in ids
                    if i in self.fd_incidents and not self.fd_incidents[i].get("_gone")
                ]
                return envelope_data({"items": items})
            if path == "/incident/info":
                incident = self.fd_incidents.get(str(body.get("incident_id")))
                if incident is None:
                    return envelope_error("ResourceNotFound", "incident not found", 400)
                return envelope_data(self._public(incident))
            if path == "/incident/feed":
                return self._feed(body, bad)
            window = self._span(body)
            if isinstance(window, str):
                return bad(window)
            page = self._paging(body)
            if isinstance(page, str):
                return bad(page)
            if path == "/alert/list":
                rows = self._alert_rows(body, window)
            else:
                rows = self._incident_rows(body, window)
            rows.sort(key=lambda r: r["start_time"], reverse=not body.get("asc", False))
            p, limit = page
            items = rows[(p - 1) * limit : p * limit]
            return envelope_data(
                {
                    "items": items,
                    "total": min(len(rows), 1000),
                    "has_next_page": p * limit < len(rows),
                }
            )

    def _public(self, incident: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in incident.items() if k != "alert_ids" and not k.startswith("_")}
        closer = incident["closer_id"]
        persons = getattr(self, "persons", {})
        if closer and closer in persons:
            out["closer"] = dict(persons[closer])
        return out

    @staticmethod
    def _span(body: dict[str, Any]) -> tuple[int, int] | str:
        start, end = body.get("start_time"), body.get("end_time")
        if not isinstance(start, int) or not isinstance(end, int):
            return "start_time and end_time (Unix seconds) are required"
        if end < start or end - start > MAX_SPAN:
            return "the time range must not exceed 31 days"
        return start, end

    @staticmethod
    def _paging(body: dict[str, Any]) -> tuple[int, int] | str:
        p, limit = body.get("p", 1), body.get("limit", 20)
        if not isinstance(p, int) or not isinstance(limit, int) or not 0 < limit <= 100 or p < 1:
            return "p and limit (1-100) are integers"
        if p * limit > 10000:
            return "p x limit must be <= 10000"
        return p, limit

    def _alert_rows(self, body: dict[str, Any], window: tuple[int, int]) -> list[dict[str, Any]]:
        start, end = window
        field = "updated_at" if body.get("by_updated_at") else "start_time"
        keys, ids = body.get("alert_keys"), body.get("alert_ids")
        rows = []
        for alert in self.alerts.values():
            if not start <= alert[field] <= end:
                continue
            if keys and alert["alert_key"] not in keys:
                continue
            if ids and alert["alert_id"] not in ids:
                continue
            active = alert["alert_status"] != "Ok"
            if "is_active" in body and bool(body["is_active"]) != active:
                continue
            if (
                body.get("integration_ids")
                and alert["integration_id"] not in body["integration_ids"]
            ):
                continue
            rows.append({k: v for k, v in alert.items() if not k.startswith("_")})
        return rows

    def _incident_rows(self, body: dict[str, Any], window: tuple[int, int]) -> list[dict[str, Any]]:
        start, end = window
        wanted = {p for p in str(body.get("progress") or "").split(",") if p}
        severities = {s for s in str(body.get("incident_severity") or "").split(",") if s}
        ids, channels = body.get("incident_ids"), body.get("channel_ids")
        return [
            self._public(i)
            for i in self.fd_incidents.values()
            if start <= i["start_time"] <= end
            and not i.get("_gone")
            and (not wanted or i["progress"] in wanted)
            and (not severities or i["incident_severity"] in severities)
            and (not ids or i["incident_id"] in ids)
            and (not channels or i["channel_id"] in channels)
        ]

    def _feed(self, body: dict[str, Any], bad: Callable[[str], Response]) -> Response:
        incident_id = body.get("incident_id")
        if not isinstance(incident_id, str) or incident_id not in self.feeds:
            return envelope_error("ResourceNotFound", "incident not found", 400)
        page = self._paging(body)
        if isinstance(page, str):
            return bad(page)
        types = body.get("types") or ()
        rows = [e for e in self.feeds[incident_id] if not types or e["type"] in types]
        if not body.get("asc", False):
            rows = rows[::-1]
        p, limit = page
        return envelope_data(
            {"items": rows[(p - 1) * limit : p * limit], "has_next_page": p * limit < len(rows)}
        )
