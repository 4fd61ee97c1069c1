"""A ServiceNow instance on loopback: the Table API and OAuth, as documented.

What it reproduces, because pollers have been bitten by each of these:

- every value is a string; reference fields are ``{"link", "value"}`` unless
  ``sysparm_exclude_reference_link=true``; dot-walked fields such as
  ``assignment_group.name`` may be requested in ``sysparm_fields``; unknown
  fields there are ignored;
- encoded queries with ``^``, ``^OR``, ``^NQ`` and ``ORDERBY``; invalid terms
  are silently dropped (see :mod:`.encoded_query`);
- ``sysparm_limit`` is applied *before* ACLs: rows in :attr:`acl_hidden` count
  against the limit and are then removed, so pages come back short or empty;
- rows committed late: :meth:`hide` keeps a row out of every answer until
  :meth:`reveal`, although its ``sys_updated_on`` is already in the past;
- duplicated rows in one answer (:attr:`duplicate_rows`);
- a ``Date`` header from the simulated clock, which tests may move;
- the tables routes and dispatch read: ``sys_user``, ``sys_user_group``,
  ``sys_user_grmember`` (dot-walk ``user.name``), ``sys_journal_field``
  (comments, written by :meth:`comment`), ``cmdb_ci``, ``core_company``, and
  custom incident columns (:meth:`add_column`) for ``extra_fields``.

Writes go through :meth:`create`, :meth:`update`, :meth:`delete`: they stamp
``sys_updated_on`` from :attr:`clock` and bump ``sys_mod_count`` as the platform does.
"""

from __future__ import annotations

import base64
import bisect
import email.utils
import itertools
import math
import secrets
import ssl
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

from fd_sync.simulators.http import Request, Response, SimServer
from fd_sync.simulators.servicenow_data import (
    CHOICES,
    INCIDENT_COLUMNS,
    SEED_DESCRIPTION,
    SEED_GROUPS,
    SEED_TITLES,
    SEED_USERS,
    SN_FORMAT,
    SimClock,
    new_sys_id,
    stable_sys_id,
)
from fd_sync.simulators.servicenow_reads import TableReads
from fd_sync.simulators.servicenow_writes import TableWrites

__all__ = ["CHOICES", "ServiceNowSim", "SimClock", "new_sys_id", "stable_sys_id"]


def _error(status: int, message: str, detail: str | None = None) -> Response:
    return Response.json(
        {"error": {"message": message, "detail": detail}, "status": "failure"}, status
    )


class ServiceNowSim(TableWrites, TableReads, SimServer):
    name = "servicenow"

    def __init__(
        self,
        *,
        username: str = "svc.fdsync",
        password: str = "sn-password-0a1b2c",
        client_id: str = "fd-sync-client",
        client_secret: str = "sn-client-secret-3d4e5f",
        clock: SimClock | None = None,
        token_lifetime: int = 1800,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(port=port, tls=tls)
        self.username = username
        self.password = password
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock or SimClock()
        self.token_lifetime = token_lifetime
        self.tables: dict[str, dict[str, dict[str, str]]] = {
            "incident": {},
            "sys_user": {},
            "sys_user_group": {},
            "cmdb_ci": {},
            "core_company": {},
            "sys_audit_delete": {},
            "sys_user_grmember": {},
            "sys_journal_field": {},
            "sys_choice": {},
        }
        self.custom_columns: set[str] = set()  # u_ fields an instance adds to incident
        self._index: list[tuple[str, str]] = []  # incident (sys_updated_on, sys_id), sorted
        self.hidden: set[str] = set()  # committed late: invisible to every query for now
        self.acl_hidden: set[str] = set()  # the integration user may not read these
        self.duplicate_rows = 0  # the next N answers repeat one of their rows
        self.deny_read = False  # 403 on the table: missing role or ACL
        self.deny_tables: set[str] = set()  # 403 on these tables only
        # 200 and no rows on these tables: a read ACL the platform applies silently
        # (sys_journal_field, REFERENCE section 10)
        self.silent_tables: set[str] = set()
        self.invalid_returns_no_rows = False
        # A rate-limit rule for the user (REFERENCE section 10): requests an hour, counted
        # in the clock's hours; 0: none. What the bench reads: every request's time.
        self.rate_limit_per_hour = 0
        self.rate_limited = 0  # 429s answered
        self.api_times: list[float] = []  # clock time (epoch) of every Table API request
        self._hour_counts: dict[int, int] = {}
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self.refresh_tokens: set[str] = set()
        self._numbers = itertools.count(10001)
        self._version = 0  # bumped on every write: invalidates the cached matches below
        self._matches: dict[tuple[str, str], list[str]] = {}  # (table, query) -> sys_ids
        self._matches_version = 0
        self._init_writes()
        for element, labels in CHOICES.items():  # a base instance's choice list, in English
            for value, label in labels.items():
                self.set_choice(element, value, label)

    # --- data ---------------------------------------------------------------------------

    def set_choice(
        self, element: str, value: str, label: str, *, language: str = "en", inactive: bool = False
    ) -> None:
        """Relabel (or add, or with ``inactive`` retire) one choice of an incident field, as a
        customised or localised instance has it; display values follow the English labels."""
        sys_id = stable_sys_id(f"incident.{element}.{value}.{language}")
        with self._lock:
            self.tables["sys_choice"][sys_id] = {
                "sys_id": sys_id,
                "name": "incident",
                "element": element,
                "value": value,
                "label": label,
                "language": language,
                "inactive": "true" if inactive else "false",
                "sequence": value,
            }
            self._version += 1

    def add_group(self, name: str, sys_id: str | None = None) -> str:
        sys_id = sys_id or new_sys_id()
        with self._lock:
            self.tables["sys_user_group"][sys_id] = {"sys_id": sys_id, "name": name}
            self._version += 1
        return sys_id

    def add_user(
        self,
        name: str,
        *,
        user_name: str = "",
        email: str = "",
        sys_id: str | None = None,
        active: bool = True,
    ) -> str:
        sys_id = sys_id or new_sys_id()
        with self._lock:
            self.tables["sys_user"][sys_id] = {
                "sys_id": sys_id,
                "name": name,
                "user_name": user_name or name.lower(),
                "email": email,
                "active": "true" if active else "false",
            }
            self._version += 1
        return sys_id

    def add_member(self, group_id: str, user_id: str) -> str:
        """Put a user in a group (a sys_user_grmember row)."""
        return self._add("sys_user_grmember", group=group_id, user=user_id)

    def add_ci(self, name: str) -> str:
        return self._add("cmdb_ci", name=name)

    def add_company(self, name: str) -> str:
        return self._add("core_company", name=name)

    def add_column(self, name: str) -> None:
        """A custom incident column (``u_service``), readable and queryable from now on."""
        with self._lock:
            self.custom_columns.add(name)

    def comment(self, sys_id: str, text: str, *, by: str = "admin") -> dict[str, str]:
        """An additional comment, as the form saves it: a journal row and an incident update."""
        self._journal(sys_id, "comments", text, by)
        return self.update(sys_id)

    def work_note(self, sys_id: str, text: str, *, by: str = "admin") -> dict[str, str]:
        """A work note an agent saves on the form: a journal row by them and an update."""
        self._journal(sys_id, "work_notes", text, by)
        return self.update(sys_id, sys_updated_by=by)

    def _journal(self, sys_id: str, element: str, text: str, by: str) -> None:
        self._add(
            "sys_journal_field",
            name="incident",
            element=element,
            element_id=sys_id,
            value=text,
            sys_created_on=self.clock.text(),
            sys_created_by=by,
        )

    def _add(self, table: str, **fields: str) -> str:
        sys_id = new_sys_id()
        with self._lock:
            self.tables[table][sys_id] = {"sys_id": sys_id, **fields}
        return sys_id

    def create(self, *, updated_on: str | None = None, **fields: Any) -> dict[str, str]:
        """A new incident, stamped now (or at ``updated_on``, for late or skewed rows)."""
        with self._lock:
            sys_id = str(fields.pop("sys_id", None) or new_sys_id())
            stamp = updated_on or self.clock.text()
            row = {column: "" for column in INCIDENT_COLUMNS}
            row.update(
                sys_id=sys_id,
                number=f"INC{next(self._numbers):07d}",
                state="1",
                impact="2",
                urgency="2",
                priority="3",
                active="true",
                sys_created_on=stamp,
                opened_at=stamp,
                sys_mod_count="0",
                sys_updated_by="admin",
            )
            row.update({k: str(v) for k, v in fields.items()})
            row["sys_updated_on"] = stamp
            self.tables["incident"][sys_id] = row
            bisect.insort(self._index, (stamp, sys_id))
            self._version += 1
            return dict(row)

    def seed(
        self,
        count: int,
        *,
        open_ratio: float = 0.02,
        span: timedelta = timedelta(days=90),
        end: datetime | None = None,
        burst: int = 5,
    ) -> None:
        """Add ``count`` deterministic incidents at once, as a long-lived instance holds them.

        For benchmarks: ``create()`` re-sorts the index per row, this sorts once.
        Changes are spread evenly over ``span`` up to ``end`` (default: an hour
        ago), ``burst`` rows sharing each second, so keyset pages end inside a
        second; exactly ``round(count * open_ratio)`` incidents are open, spread
        evenly. Groups and users come from small fixed pools.
        """
        groups = [self.add_group(name, stable_sys_id(f"group-{name}")) for name in SEED_GROUPS]
        users = [self.add_user(name, sys_id=stable_sys_id(f"user-{name}")) for name in SEED_USERS]
        end = end or self.clock.now() - timedelta(hours=1)
        seconds = max(1, (count + burst - 1) // burst)
        step = span.total_seconds() / seconds
        opened = round(count * open_ratio)
        with self._lock:
            incidents = self.tables["incident"]
            blank = dict.fromkeys(INCIDENT_COLUMNS, "")
            for i in range(count):
                sys_id = stable_sys_id(f"incident-{i}")
                moment = end - timedelta(seconds=int((seconds - 1 - i // burst) * step))
                stamp = moment.strftime(SN_FORMAT)
                created = (moment - timedelta(hours=1 + i % 48)).strftime(SN_FORMAT)
                is_open = (i + 1) * opened // count > i * opened // count
                state = "123"[i % 3] if is_open else "77776"[i % 5]
                row = dict(blank)
                row.update(
                    sys_id=sys_id,
                    number=f"INC{next(self._numbers):07d}",
                    short_description=SEED_TITLES[i % len(SEED_TITLES)].format(n=i),
                    description=SEED_DESCRIPTION.format(n=i),
                    state=state,
                    impact="123"[i % 3],
                    urgency="123"[(i // 3) % 3],
                    priority="12345"[i % 5],
                    assignment_group=groups[i % len(groups)],
                    assigned_to=users[i % len(users)] if i % 4 else "",
                    category="software",
                    active="true" if is_open else "false",
                    sys_created_on=created,
                    opened_at=created,
                    sys_mod_count=str(i % 7),
                    sys_updated_on=stamp,
                )
                incidents[sys_id] = row
                self._index.append((stamp, sys_id))
            self._index.sort()
            self._version += 1

    def update(
        self, sys_id: str, *, updated_on: str | None = None, **fields: Any
    ) -> dict[str, str]:
        """Change an incident as a form save would: new timestamp, mod count + 1."""
        with self._lock:
            row = self.tables["incident"][sys_id]
            self._index.remove((row["sys_updated_on"], sys_id))
            row.update({k: str(v) for k, v in fields.items()})
            if "state" in fields:
                row["active"] = "false" if row["state"] in ("6", "7", "8") else "true"
            row["sys_updated_on"] = updated_on or self.clock.text()
            row.setdefault("sys_updated_by", "")
            if "sys_updated_by" not in fields:
                row["sys_updated_by"] = "admin"  # a person, through the form
            row["sys_mod_count"] = str(int(row["sys_mod_count"]) + 1)
            bisect.insort(self._index, (row["sys_updated_on"], sys_id))
            self._version += 1
            return dict(row)

    def resolve(self, sys_id: str, state: str = "6") -> dict[str, str]:
        return self.update(sys_id, state=state)

    def delete(self, sys_id: str) -> None:
        with self._lock:
            row = self.tables["incident"].pop(sys_id)
            self._index.remove((row["sys_updated_on"], sys_id))
            self._version += 1
            audit_id = new_sys_id()
            self.tables["sys_audit_delete"][audit_id] = {
                "sys_id": audit_id,
                "tablename": "incident",
                "documentkey": sys_id,
                "sys_created_on": self.clock.text(),
            }

    def hide(self, sys_id: str) -> None:
        with self._lock:
            self.hidden.add(sys_id)
            self._version += 1

    def reveal(self, sys_id: str) -> None:
        with self._lock:
            self.hidden.discard(sys_id)
            self._version += 1

    def incident(self, sys_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self.tables["incident"][sys_id])

    def incidents(self) -> list[dict[str, str]]:
        with self._lock:
            return [dict(r) for r in self.tables["incident"].values()]

    def open_sys_ids(self) -> set[str]:
        """What ServiceNow considers open: states other than Resolved, Closed, Canceled."""
        with self._lock:
            return {
                s for s, r in self.tables["incident"].items() if r["state"] not in ("6", "7", "8")
            }

    # --- HTTP ---------------------------------------------------------------------------

    def date_header(self) -> str:
        return email.utils.format_datetime(self.clock.now().astimezone(UTC), usegmt=True)

    def handle(self, request: Request) -> Response:
        if request.path == "/oauth_token.do" and request.method == "POST":
            return self._oauth(request)
        if not request.path.startswith("/api/now/table/"):
            return _error(404, "Requested URI does not represent any resource")
        if request.method not in ("GET", "POST", "PATCH", "PUT"):
            return _error(405, "Method not allowed")
        if not self._authenticated(request):
            return _error(401, "User Not Authenticated", "Required to provide Auth information")
        limited, headers = self._rate_limit()
        if limited is not None:
            return limited
        response = self._table_api(request)
        response.headers.update(headers)
        return response

    def _rate_limit(self) -> tuple[Response | None, dict[str, str]]:
        """The rule's headers for this request, or its 429 past the hour's limit."""
        now = self.clock.now().timestamp()
        with self._lock:
            self.api_times.append(now)
            limit = self.rate_limit_per_hour
            if not limit:
                return None, {}
            hour = int(now // 3600)
            reset = (hour + 1) * 3600
            used = self._hour_counts.get(hour, 0)
            headers = {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Reset": str(reset),
                "X-RateLimit-Rule": "fd-sync simulated rule",
            }
            if used >= limit:
                self.rate_limited += 1
                response = _error(429, "Rate limit exceeded", "Too many requests this hour")
                retry = max(1, math.ceil(reset - now))
                response.headers.update(headers, **{"Retry-After": str(retry)})
                response.headers["X-RateLimit-Remaining"] = "0"
                return response, {}
            self._hour_counts[hour] = used + 1
            headers["X-RateLimit-Remaining"] = str(limit - used - 1)
            return None, headers

    def _table_api(self, request: Request) -> Response:
        table, _, record = request.path[len("/api/now/table/") :].strip("/").partition("/")
        if request.method == "POST":
            if record:
                return _error(405, "Method not allowed", "POST creates: table, no sys_id")
            return self._post(table, request)
        if request.method != "GET":
            if not record:
                return _error(405, "Method not allowed", "PATCH needs a record: table/sys_id")
            return self._patch(table, record, request)
        if table not in self.tables:
            return _error(400, f"Invalid table {table}")
        if self.deny_read or table in self.deny_tables:
            return _error(403, "User Not Authorized", "ACL restricts the record retrieval")
        return self._table_get(table, request.query)

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            # UTF-8, as ServiceNow reads it (RFC 7617's charset); compared as bytes.
            return secrets.compare_digest(
                user.encode(), self.username.encode()
            ) and secrets.compare_digest(password.encode(), self.password.encode())
        if header.startswith("Bearer "):
            with self._lock:
                expiry = self.tokens.get(header[7:])
            return expiry is not None and time.monotonic() < expiry
        return False

    def _oauth(self, request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl(request.body.decode()))
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return Response.json(
                {"error_description": "access_denied", "error": "server_error"}, 401
            )
        grant = form.get("grant_type")
        if grant == "password":
            if form.get("username") != self.username or form.get("password") != self.password:
                return Response.json(
                    {"error_description": "access_denied", "error": "server_error"}, 401
                )
        elif grant == "refresh_token":
            with self._lock:
                if form.get("refresh_token") not in self.refresh_tokens:
                    return Response.json(
                        {"error_description": "access_denied", "error": "server_error"}, 401
                    )
        elif grant != "client_credentials":
            return Response.json({"error": "unsupported_grant_type"}, 400)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[access] = time.monotonic() + self.token_lifetime
            self.refresh_tokens.add(refresh)
        return Response.json(
            {
                "access_token": access,
                "refresh_token": refresh,
                "scope": "useraccount",
                "token_type": "Bearer",
                "expires_in": self.token_lifetime - 1,
            }
        )

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()
