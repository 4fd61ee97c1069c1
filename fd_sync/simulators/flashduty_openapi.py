"""Flashduty's OpenAPI on loopback: the account's people, teams, schedules, channels and
escalation rules, as ``rules``, ``explain`` and ``dispatch --rule-name`` read them.

``POST /channel/escalate/rule/list``, ``/person/infos``, ``/team/infos``,
``/schedule/infos``, and the paged ``/channel/list`` and ``/member/list``, with the
documented field names and paging (pagination.mdx): a wrong ``app_key`` gets the 401
envelope, a missing channel or id ``ResourceNotFound`` (HTTP 400). A mixin of
:class:`~fd_sync.simulators.flashduty.FlashdutySim`; tests seed it with
:meth:`add_person`, :meth:`add_team`, :meth:`add_schedule`, :meth:`add_channel` and
:meth:`add_rule`.
"""

from __future__ import annotations

import bisect
import itertools
import json
import secrets
import threading
from collections.abc import Callable
from typing import Any

from fd_sync.simulators.http import Request, Response

OPENAPI_PATHS = (
    "/channel/escalate/rule/list",
    "/person/infos",
    "/team/infos",
    "/schedule/infos",
    "/channel/list",
    "/member/list",
)
INCIDENT_PATHS = (
    "/alert/list",
    "/incident/list",
    "/incident/list-by-ids",
    "/incident/info",
    "/incident/feed",
)
TOTAL_CAP = 1000  # pagination.mdx: total is exact below 1000 only
MAX_OFFSET = 10000  # pagination.mdx: p x limit must be <= 10000


def envelope_error(code: str, message: str, status: int) -> Response:
    rid = secrets.token_hex(12)
    return Response.json(
        {"request_id": rid, "error": {"code": code, "message": message}},
        status,
        **{"Flashcat-Request-Id": rid},
    )


def envelope_data(data: Any) -> Response:
    rid = secrets.token_hex(12)
    return Response.json({"request_id": rid, "data": data}, **{"Flashcat-Request-Id": rid})


def layer(
    *,
    person_ids: tuple[int, ...] = (),
    team_ids: tuple[int, ...] = (),
    schedule_ids: tuple[int, ...] = (),
    escalate_window: int = 30,
    force_escalate: bool = False,
    critical: tuple[str, ...] = ("sms", "voice"),
    warning: tuple[str, ...] = ("email",),
    info: tuple[str, ...] = ("email",),
) -> dict[str, Any]:
    """One escalation layer with the field names of /channel/escalate/rule/list."""
    return {
        "escalate_window": escalate_window,
        "force_escalate": force_escalate,
        "target": {
            "person_ids": [*person_ids],
            "team_ids": [*team_ids],
            "schedule_to_role_ids": {str(s): [0] for s in schedule_ids},
            "by": {"critical": [*critical], "warning": [*warning], "info": [*info]},
            "webhooks": [],
        },
    }


class OpenAPIDirectory:
    """The account behind the OpenAPI, and the endpoints that read it."""

    app_key: str
    url: str  # SimServer's property
    clock: Callable[[], float]  # FlashdutySim's: the rate limits' time
    _lock: threading.RLock  # SimServer's
    _incidents_api: Any  # IncidentSide's: the incident endpoints
    _incident_writes: Any  # IncidentWrites': comment, resolve, reopen, reset

    def _init_directory(self, app_key: str) -> None:
        self.app_key = app_key
        # The account's OpenAPI limits (per minute, per second), and what the bench reads.
        self.openapi_limit_per_minute = 1000
        self.openapi_limit_per_second = 50
        self.openapi_times: list[float] = []  # self.clock() of every accepted request
        self.openapi_limited = 0  # 429s answered
        self.persons: dict[int, dict[str, Any]] = {}
        self.teams: dict[int, dict[str, Any]] = {}
        self.schedules: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.rules: dict[int, list[dict[str, Any]]] = {}  # channel id -> its escalation rules
        self._ids = itertools.count(4000001)

    @property
    def api_domain(self) -> str:
        """What [flashduty] api_domain is set to for this simulator."""
        return self.url

    def add_person(self, name: str, email: str = "") -> int:
        """A member of the account: ``/person/infos`` says person_*, ``/member/list`` member_*."""
        person_id = next(self._ids)
        self.persons[person_id] = {"person_id": person_id, "person_name": name, "email": email}
        return person_id

    def add_team(self, name: str, person_ids: tuple[int, ...] = ()) -> int:
        team_id = next(self._ids)
        self.teams[team_id] = {"team_id": team_id, "team_name": name, "person_ids": [*person_ids]}
        return team_id

    def add_schedule(self, name: str) -> int:
        schedule_id = next(self._ids)
        self.schedules[schedule_id] = {"schedule_id": schedule_id, "schedule_name": name}
        return schedule_id

    def add_channel(self, name: str, channel_id: int | None = None) -> int:
        channel_id = channel_id or next(self._ids)
        self.channels[channel_id] = {"channel_id": channel_id, "channel_name": name}
        self.rules.setdefault(channel_id, [])
        return channel_id

    def add_rule(
        self,
        channel_id: int,
        name: str,
        layers: list[dict[str, Any]],
        *,
        status: str = "enabled",
        rule_id: str | None = None,
    ) -> str:
        """An escalation rule; build its layers with :func:`layer`."""
        rule_id = rule_id or secrets.token_hex(12)
        self.rules[channel_id].append(
            {
                "rule_id": rule_id,
                "rule_name": name,
                "channel_id": channel_id,
                "status": status,
                "layers": layers,
            }
        )
        return rule_id

    def _openapi_over_limit(self) -> bool:
        now = self.clock()
        with self._lock:
            times = self.openapi_times
            last_minute = len(times) - bisect.bisect_right(times, now - 60)
            last_second = len(times) - bisect.bisect_right(times, now - 1)
            if (
                last_minute >= self.openapi_limit_per_minute
                or last_second >= self.openapi_limit_per_second
            ):
                self.openapi_limited += 1
                return True
            times.append(now)
        return False

    def _openapi(self, request: Request) -> Response:
        if not secrets.compare_digest(request.query.get("app_key", ""), self.app_key):
            return envelope_error("Unauthorized", "invalid app_key", 401)
        if self._openapi_over_limit():
            # REFERENCE section 1: 50 a second and 1000 a minute per account; 429 beyond.
            return envelope_error("RequestTooFrequently", "too many requests", 429)
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return envelope_error("InvalidParameter", "body is not valid JSON", 400)
        if not isinstance(body, dict):
            return envelope_error("InvalidParameter", "body must be an object", 400)
        path = request.path
        if path in INCIDENT_PATHS:
            return self._incidents_api(path, body)
        if path.startswith("/incident/"):
            return self._incident_writes(path, body)
        if path == "/channel/escalate/rule/list":
            channel = body.get("channel_id")
            if not isinstance(channel, int):
                return envelope_error("InvalidParameter", "channel_id must be an integer", 400)
            if channel not in self.rules:
                return envelope_error("ResourceNotFound", f"channel {channel} not found", 400)
            return envelope_data({"items": self.rules[channel]})
        if path in ("/channel/list", "/member/list"):
            return self._page(path, body)
        kind = path.split("/")[1]  # person, team, schedule
        table = {"person": self.persons, "team": self.teams, "schedule": self.schedules}[kind]
        ids = body.get(f"{kind}_ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            return envelope_error("InvalidParameter", f"{kind}_ids must be integers", 400)
        missing = [i for i in ids if i not in table]
        if missing:
            return envelope_error("ResourceNotFound", f"{kind} {missing[0]} not found", 400)
        return envelope_data({"items": [table[i] for i in ids]})

    def _page(self, path: str, body: dict[str, Any]) -> Response:
        """pagination.mdx: p from 1, limit <= 100, p x limit <= 10000, total capped, and
        has_next_page on /channel/list (the platform spec lists none for /member/list)."""
        page, limit = body.get("p", 1), body.get("limit", 20)
        if not isinstance(page, int) or not isinstance(limit, int) or not 0 < limit <= 100:
            return envelope_error("InvalidParameter", "p and limit (1-100) are integers", 400)
        if page < 1 or page * limit > MAX_OFFSET:
            return envelope_error("InvalidParameter", "p x limit must be <= 10000", 400)
        if path == "/channel/list":
            rows = list(self.channels.values())
        else:
            rows = [
                {"member_id": p["person_id"], "member_name": p["person_name"], "email": p["email"]}
                for p in self.persons.values()
            ]
        items = rows[(page - 1) * limit : page * limit]
        data: dict[str, Any] = {"items": items, "total": min(len(rows), TOTAL_CAP)}
        if path == "/channel/list":
            data["has_next_page"] = page * limit < len(rows)
        else:
            data.update(p=page, limit=limit)
        return envelope_data(data)
