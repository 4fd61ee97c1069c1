"""Flashduty's push endpoints on loopback, validating bodies as the documentation states.

Both integrations are served: ``/event/push/servicenow/<token>`` (the
ServiceNow-sync body) and ``/event/push/alert/standard?integration_key=<key>``
(standard alert events). Answers use Flashduty's envelope: ``{"request_id",
"data"}`` on success, ``{"request_id", "error": {"code", "message"}}`` on
failure, with the request id also in ``Flashcat-Request-Id``.

The simulator keeps what Flashduty would show: which alerts are open, and the
ordered events of each incident, so tests can compare the open set with
ServiceNow's and check that events alternate create/resolve. It also records
every limit a body exceeds (:attr:`violations`): fd-sync must never send one.

The OpenAPI that ``rules``, ``explain`` and ``dispatch --rule-name`` read is served
too, by :mod:`fd_sync.simulators.flashduty_openapi`.
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fd_sync.simulators.flashduty_incidents import INCIDENT_PATHS, IncidentSide
from fd_sync.simulators.flashduty_openapi import (
    OPENAPI_PATHS,
    OpenAPIDirectory,
    envelope_error,
    layer,
)
from fd_sync.simulators.flashduty_writes import WRITE_PATHS, IncidentWrites
from fd_sync.simulators.http import Request, Response, SimServer

__all__ = ["FlashdutySim", "Received", "layer"]

SEVERITIES = ("Critical", "Warning", "Info")
# servicenow-sync.mdx, "Status Mapping": the State a body carries -> the incident's progress.
PROGRESS = {
    "New": "Triggered",
    "In Progress": "Processing",
    "On Hold": "Snoozed",  # "Default snooze 2 hours"
    "Resolved": "Closed",
    "Closed": "Closed",
    "Canceled": "Closed",
}
CLOSED_STATES = tuple(state for state, progress in PROGRESS.items() if progress == "Closed")
BAD_INTEGRATION_KEY = "integration_key is not a valid one"  # standard alert.mdx, failed response
_LABEL_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Received:
    """One accepted event, normalised across both formats."""

    key: str  # sys_id (ServiceNow format) or alert_key (standard)
    kind: str  # create | update | resolve, as the receiver understood it
    fmt: str
    body: dict[str, Any]
    request_id: str
    duplicate: bool = False  # the same body as this incident's previous event (a re-send)
    at: float = field(default_factory=time.monotonic)


class FlashdutySim(IncidentWrites, IncidentSide, OpenAPIDirectory, SimServer):
    name = "flashduty"

    def __init__(
        self,
        *,
        token: str = "fdtoken0123456789abcdef",
        integration_key: str = "fdkey0123456789abcdef",
        app_key: str = "fdappkey0123456789abcdef",
        rate_limit_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(port=port, tls=tls)
        self.clock = clock  # for the rate limit and arrival times; tests may fake it
        self.token = token
        self.integration_key = integration_key
        self._init_directory(app_key)
        self._init_incidents()
        self._init_writes()
        self.rate_limit_per_minute = rate_limit_per_minute
        self.received: list[Received] = []
        self.open: dict[str, dict[str, Any]] = {}  # key -> last body of the open alert
        self.progress: dict[str, str] = {}  # ServiceNow format: key -> Triggered, Snoozed, ...
        self.violations: list[str] = []
        self.rate_limited = 0
        self._window: deque[float] = deque()
        self._last: dict[str, dict[str, Any]] = {}
        self._last_kind: dict[str, str] = {}
        self.arrived = threading.Condition(self._lock)

    @property
    def push_url_servicenow(self) -> str:
        return f"{self.url}/event/push/servicenow/{self.token}"

    @property
    def push_url_standard(self) -> str:
        return f"{self.url}/event/push/alert/standard?integration_key={self.integration_key}"

    # --- what Flashduty would show --------------------------------------------------------

    def open_keys(self) -> set[str]:
        with self._lock:
            return set(self.open)

    def history(self, *, include_duplicates: bool = False) -> dict[str, list[str]]:
        """Per incident, the kinds of accepted events in arrival order (re-sends left out)."""
        out: dict[str, list[str]] = {}
        with self._lock:
            for event in self.received:
                if event.duplicate and not include_duplicates:
                    continue
                out.setdefault(event.key, []).append(event.kind)
        return out

    def duplicates(self) -> int:
        with self._lock:
            return sum(1 for e in self.received if e.duplicate)

    def events(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_open(self, keys: set[str], timeout: float = 10.0) -> bool:
        """Block until exactly these alerts are open (an event, not a sleep)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: set(self.open) == keys, timeout)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` events were accepted (an event, not a sleep)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.arrived.wait(remaining)
        return True

    # --- HTTP ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.method != "POST":  # standard alert.mdx, error codes
            return envelope_error("MethodNotAllowed", "HTTP method not supported", 400)
        if request.path in (*OPENAPI_PATHS, *INCIDENT_PATHS, *WRITE_PATHS):
            return self._openapi(request)
        if request.path.startswith("/event/push/servicenow/"):
            token = request.path[len("/event/push/servicenow/") :].strip("/")
            if not secrets.compare_digest(token, self.token):
                return envelope_error("Unauthorized", "invalid integration token", 401)
            fmt = "servicenow"
        elif request.path.rstrip("/") == "/event/push/alert/standard":
            key = request.query.get("integration_key", "")
            if not secrets.compare_digest(key, self.integration_key):
                # As the standard alert page's failed response shows: 400, not 401.
                return envelope_error("InvalidParameter", BAD_INTEGRATION_KEY, 400)
            fmt = "standard"
        else:
            return envelope_error("RouteNotFound", f"no route for {request.path}", 404)
        if len(request.body) > MAX_BODY:
            return envelope_error("EntityTooLarge", "request body too large", 413)
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            return envelope_error("InvalidContentType", "content type must be JSON", 400)
        if self._over_rate_limit():
            return envelope_error("RequestTooFrequently", "too many requests", 429)
        try:
            body = json.loads(request.body)
        except ValueError:
            return envelope_error("InvalidParameter", "body is not valid JSON", 400)
        if not isinstance(body, dict):
            return envelope_error("InvalidParameter", "body must be an object", 400)
        check = self._check_servicenow if fmt == "servicenow" else self._check_standard
        problem = check(body)
        if problem:
            return envelope_error("InvalidParameter", problem, 400)
        return self._accept(fmt, body)

    def _over_rate_limit(self) -> bool:
        if not self.rate_limit_per_minute:
            return False
        now = self.clock()
        with self._lock:
            while self._window and self._window[0] <= now - 60:
                self._window.popleft()
            if len(self._window) >= self.rate_limit_per_minute:
                self.rate_limited += 1
                return True
            self._window.append(now)
        return False

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _check_standard(self, body: dict[str, Any]) -> str | None:
        status = body.get("event_status")
        if status not in (*SEVERITIES, "Ok"):
            return "event_status must be one of Critical, Warning, Info, Ok"
        title = body.get("title_rule")
        if not isinstance(title, str) or not title:
            return "title_rule is required"
        if len(title) > 512:  # truncated by Flashduty; fd-sync must not rely on it
            self._violation(f"title_rule of {len(title)} chars")
            body["title_rule"] = title[:512]
        key = body.get("alert_key")
        if key is None or key == "":
            if status == "Ok":
                return "alert_key is required to recover an alert"
            body["alert_key"] = secrets.token_urlsafe(16)  # "rely on system auto-generation"
        elif not isinstance(key, str):
            return "alert_key must be a string"
        elif len(key) > 255:
            return "alert_key longer than 255"
        description = body.get("description", "")
        if not isinstance(description, str):
            return "description must be a string"
        if len(description) > 2048:
            self._violation(f"description of {len(description)} chars")
            body["description"] = description[:2048]
        labels = body.get("labels", {})
        if not isinstance(labels, dict):
            return "labels must be an object"
        if len(labels) > 50:
            self._violation(f"{len(labels)} labels")
            return "at most 50 labels"
        for k, v in labels.items():
            if not _LABEL_KEY.fullmatch(k) or len(k) > 128:
                return f"invalid label key {k[:40]!r}"
            if not isinstance(v, str):
                return f"label {k} must be a string"
            if len(v) > 2048:
                self._violation(f"label {k} of {len(v)} chars")
                labels[k] = v[:2048]
        return None

    def _check_servicenow(self, body: dict[str, Any]) -> str | None:
        action = body.get("action_type")
        if action not in ("insert", "update", "rule_update"):
            return "action_type must be insert, update or rule_update"
        for name in ("number", "sys_id"):
            if not isinstance(body.get(name), str) or not body.get(name):
                return f"{name} is required"
        if action == "rule_update" and not isinstance(body.get("state"), str):
            return "state is required for rule_update"
        if len(body.get("short_description") or "") > 512:
            self._violation("short_description over 512 chars")
        if len(body.get("description") or "") > 2048:
            self._violation("description over 2048 chars")
        return None

    def _accept(self, fmt: str, body: dict[str, Any]) -> Response:
        if fmt == "standard":
            key = body["alert_key"]
            closing = body["event_status"] == "Ok"
        else:
            # servicenow-sync.mdx: rule_update or a closed State close the incident; an
            # update for a sys_id without an incident opens one (fd-servicenow's button).
            key = body["sys_id"]
            state = body.get("state")
            closing = body["action_type"] == "rule_update" or state in CLOSED_STATES
        rid = secrets.token_hex(12)
        with self.arrived:
            previous = self._last.get(key)
            duplicate = previous == body
            self._last[key] = body
            if duplicate:
                kind = self._last_kind[key]
            elif closing:
                kind = "resolve"
                self.open.pop(key, None)
            else:
                kind = "update" if key in self.open else "create"
                self.open[key] = body
            if fmt == "servicenow" and not duplicate:
                self.progress[key] = PROGRESS.get(
                    str(body.get("state")), "Closed" if closing else "Triggered"
                )
            alert_key = self.alert_key_for(fmt, body)
            if not duplicate and kind == "create":
                title = body.get("title_rule") or body.get("short_description") or body["number"]
                self._opened(key, alert_key, str(title), dict(body.get("labels") or {}))
            elif not duplicate and kind == "resolve":
                self._event_closed(key)
            self._last_kind[key] = kind
            self.received.append(Received(key, kind, fmt, body, rid, duplicate, at=self.clock()))
            self.arrived.notify_all()
        return Response.json(
            {"request_id": rid, "data": {"alert_key": alert_key}}, **{"Flashcat-Request-Id": rid}
        )

    def _responder_closed(self, key: str) -> None:
        """A responder closed the alert: Flashduty no longer has it open."""
        self.open.pop(key, None)
        self.progress[key] = "Closed"

    def _responder_reopened(self, key: str) -> None:
        self.open[key] = self._last.get(key, {})
        self.progress[key] = "Triggered"
