"""The ServiceNow Table API client: authentication, requests, errors, outbound only.

Paging lives in :mod:`fd_sync.servicenow.scan`; this module is the requests.

Every request is retried on transient failures; 401/403 are never retried,
because repeated failed logins can lock the integration account.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests

from fd_sync import logs, redaction
from fd_sync.config import ServiceNowConfig
from fd_sync.core.incident import FIELDS
from fd_sync.errors import (
    AccessDenied,
    FatalAPIError,
    FdSyncError,
    RemoteRejected,
    RetriableAPIError,
    TemporaryFailure,
)
from fd_sync.http.transport import (
    BackoffWait,
    Exchange,
    exchange,
    looks_like_html,
    make_session,
    parse_retry_after,
    retrying,
)
from fd_sync.servicenow import scan as keyset
from fd_sync.servicenow.budget import RequestBudget
from fd_sync.servicenow.oauth import OAuthTokens

MAX_RESPONSE_BYTES = 32 * 2**20
RETRY_BUDGET_SECONDS = 60.0  # no new attempt starts later than this into a request

T = TypeVar("T")


def _snow_error(body: bytes) -> str:
    """ServiceNow's own ``error.message: detail``, one line, bounded."""
    try:
        payload = json.loads(body)
        error = payload.get("error") or {}
        parts = [str(error.get("message") or ""), str(error.get("detail") or "")]
        text = ": ".join(p for p in parts if p)
    except (ValueError, AttributeError):
        text = ""
    return " ".join(redaction.redact(text).split())[:300]


def basic_auth(username: str | None, password: str | None) -> str:
    """The Basic credentials in UTF-8 (RFC 7617), as ServiceNow reads them: requests would
    encode them as Latin-1 and fail on a name such as ``svc.fdsync™`` or a password with €."""
    pair = f"{username or ''}:{password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class ServiceNowClient:
    """A read-only Table API client. Collaborators are injectable for tests."""

    def __init__(
        self,
        config: ServiceNowConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wait: BackoffWait | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self.config = config
        # [servicenow] max_requests_per_hour and the instance's rate-limit headers
        self.budget = budget or RequestBudget(config.max_requests_per_hour)
        self.requests_made = 0  # what a cycle reports: its ServiceNow cost
        self.session = session or make_session()
        self.sleep = sleep
        self.clock = clock
        self.wait = wait or BackoffWait(cap=30.0)
        self.log = logs.get("servicenow")
        self.last_server_now: datetime | None = None  # ServiceNow's clock at its last answer
        self.tokens = OAuthTokens(config, self.session, clock) if config.auth == "oauth" else None

    @property
    def base(self) -> str:
        return self.config.instance_url

    @property
    def fields(self) -> tuple[str, ...]:
        """What an incident row is read with: fd-sync's fields and [servicenow] extra_fields."""
        return (*FIELDS, *self.config.extra_fields)

    # --- public ---------------------------------------------------------------------

    def newest(self) -> tuple[str | None, datetime]:
        """The newest ``sys_updated_on`` in the table (None if empty) and ServiceNow's clock."""
        return keyset.newest(self)

    def scan(self, low: str, **options: Any) -> Iterator[keyset.Page]:
        """Pages of rows changed at or after ``low``: see :func:`fd_sync.servicenow.scan.pages`."""
        return keyset.pages(self, low, **options)

    # --- requests -------------------------------------------------------------------

    def table_get(
        self, params: dict[str, str], *, table: str | None = None
    ) -> tuple[list[Any], datetime]:
        """GET a table (default: the incident table) with fd-sync's fixed parameters;
        rows and ServiceNow's clock."""
        table = table or self.config.table
        url = f"{self.base}/api/now/table/{table}"
        query = {
            "sysparm_display_value": "false",
            "sysparm_exclude_reference_link": "true",
            "sysparm_no_count": "true",
            **params,
        }

        def attempt() -> tuple[list[Any], datetime]:
            response = self._get(url, query)
            # Without a Date header the local clock stands in; it only caps the watermark.
            server_now = response.server_time() or datetime.now(UTC)
            rows = self._decode(response)
            self.last_server_now = server_now
            return rows, server_now

        return self._with_retries(attempt, table)

    def table_patch(
        self, sys_id: str, body: dict[str, Any], *, repeatable: bool = True
    ) -> dict[str, Any]:
        """PATCH one record of the incident table; the record as it is after the write.

        The answer is rendered as the scan reads rows (same fields, raw values), so the
        version it carries can be compared with the ledger's. A refusal (400, 403, 404)
        raises :class:`FatalAPIError` with ServiceNow's own message, for the caller to word;
        401 and the retriable failures are handled as for reads. A write that is not
        ``repeatable`` (a journal entry: sent twice, it is written twice) is retried only
        after a 429, which ServiceNow answers before doing anything; after a timeout, a
        dropped connection or a 5xx it may have landed, and the caller must find out
        before sending it again.
        """
        url = f"{self.base}/api/now/table/{self.config.table}/{sys_id}"
        return self._write("PATCH", url, body, repeatable=repeatable)

    def table_post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST a new record to the incident table (201 and the record). Not repeatable:
        retried only after a 429; after a timeout, a dropped connection or a 5xx the record
        may exist, and the caller looks it up (by ``correlation_id``) before posting again."""
        url = f"{self.base}/api/now/table/{self.config.table}"
        return self._write("POST", url, body, repeatable=False)

    def _write(
        self, method: str, url: str, body: dict[str, Any], *, repeatable: bool
    ) -> dict[str, Any]:
        """One write; the record it left, rendered as the scan reads rows."""
        query = {
            "sysparm_display_value": "false",
            "sysparm_exclude_reference_link": "true",
            "sysparm_fields": ",".join(self.fields),
        }
        data = json.dumps(body).encode()

        def attempt() -> dict[str, Any]:
            try:
                response = self._send(method, url, query, data)
            except RetriableAPIError as exc:
                if not repeatable and exc.status != 429:
                    exc.retry = False  # it may have landed: never blindly again
                raise
            payload = response.json() if response.body else {}
            result = payload.get("result") if isinstance(payload, dict) else None
            return result if isinstance(result, dict) else {}

        return self._with_retries(attempt, self.config.table, refusals=True)

    def _with_retries(self, attempt: Callable[[], T], table: str, *, refusals: bool = False) -> T:
        def before_sleep(state: Any) -> None:
            exc = state.outcome.exception()
            self.log.warning(
                "servicenow_retry",
                attempt=state.attempt_number,
                reason=getattr(exc, "reason", str(exc)),
                status=getattr(exc, "status", None),
                wait_seconds=round(state.upcoming_sleep, 2),
            )

        policy = retrying(
            max_attempts=self.config.max_attempts,
            max_seconds=RETRY_BUDGET_SECONDS,
            wait=self.wait,
            sleep=self.sleep,
            before_sleep=before_sleep,
        )
        started = self.clock()
        attempts = 0

        def counted() -> T:
            nonlocal attempts
            attempts += 1
            return attempt()

        try:
            return policy(counted)
        except RetriableAPIError as exc:
            status = f" (HTTP {exc.status})" if exc.status else ""
            raise TemporaryFailure(
                f"ServiceNow {self.base}: {exc.reason}{status}; gave up after {attempts} "
                f"attempt(s) in {self.clock() - started:.0f} s; nothing was lost, "
                "the next run continues"
            ) from None
        except FatalAPIError as exc:
            if refusals and exc.status != 401 and not 300 <= (exc.status or 0) < 400:
                raise  # a write refused: the writer names the incident and keeps the rest
            raise self._fatal(exc, table) from None

    def _fatal(self, exc: FatalAPIError, table: str) -> FdSyncError:
        detail = f": {exc.detail}" if exc.detail else ""
        who = (
            f"user {self.config.username!r}"
            if self.config.username
            else f"OAuth client {self.config.client_id!r}"
        )
        if exc.status is not None and 300 <= exc.status < 400:
            return AccessDenied(
                f"ServiceNow {self.base} redirected the API request of {who} (HTTP {exc.status}"
                f"{detail}): single sign-on (SSO) or a login page is in the way of the REST API; "
                "give the integration user a local password with basic auth (in ServiceNow: "
                "'Web service access only', outside SSO) or use OAuth ([servicenow] auth)"
            )
        if exc.status == 401:
            source = self.config.credential_source
            where = f" ({source})" if source else ""
            return AccessDenied(
                f"ServiceNow {self.base} rejected the credentials of {who} (HTTP 401{detail}); "
                f"check [servicenow] username and password{where}. fd-sync does not retry, "
                "so the account is not locked"
            )
        if exc.status == 403:
            return AccessDenied(
                f"ServiceNow {self.base} denied {who} read access to table "
                f"{table!r} (HTTP 403{detail}); grant the itil role or a read ACL"
            )
        if exc.status == 400:
            return RemoteRejected(
                f"ServiceNow {self.base} rejected the query (HTTP 400{detail}); "
                "check [servicenow] table and query"
            )
        if exc.status == 404:
            return RemoteRejected(
                f"ServiceNow {self.base} has no table API for {table!r} "
                f"(HTTP 404{detail}); check [servicenow] instance_url and table"
            )
        status = f"HTTP {exc.status}" if exc.status else "refused"
        return RemoteRejected(f"ServiceNow {self.base}: {exc.reason} ({status}{detail})")

    def _get(self, url: str, params: dict[str, str]) -> Exchange:
        return self._send("GET", url, params)

    def _send(
        self, method: str, url: str, params: dict[str, str], data: bytes | None = None
    ) -> Exchange:
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.tokens is not None:
            headers["Authorization"] = f"Bearer {self.tokens.access_token()}"
        else:
            headers["Authorization"] = basic_auth(self.config.username, self.config.password)

        what = f"{method} {urllib.parse.urlsplit(url).path.removeprefix('/api/now/table/')}"

        def send() -> Exchange:
            self.budget.spend(write=data is not None, what=what)
            self.requests_made += 1
            return exchange(
                self.session,
                method,
                url,
                timeout=self.config.timeout_seconds,
                max_bytes=MAX_RESPONSE_BYTES,
                clock=self.clock,
                params=params,
                headers=headers,
                data=data,
                allow_redirects=False,  # a redirect is SSO or a login page: said, not followed
            )

        response = send()
        if response.status == 401 and self.tokens is not None and self.tokens.forget():
            # The token expired early or was revoked: one fresh token, then judge.
            headers["Authorization"] = f"Bearer {self.tokens.access_token()}"
            response = send()
        self.budget.observe(response.headers)
        self._raise_for_status(response)
        return response

    def _raise_for_status(self, response: Exchange) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        detail = _snow_error(response.body)
        if 300 <= status < 400:
            where = urllib.parse.urlsplit(response.headers.get("Location", "")).hostname
            raise FatalAPIError(
                f"HTTP {status}", status=status, detail=f"redirected to {where or 'elsewhere'}"
            )
        if status in {408, 429}:
            raise RetriableAPIError(
                "rate limited" if status == 429 else "request timeout",
                status=status,
                detail=detail,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500:
            kind = "an HTML error page" if looks_like_html(response.body) else "a server error"
            reason = detail or f"answered with {kind}"
            if "maximum execution time" in detail.lower():
                reason = (
                    f"{detail} (the query ran too long: lower [servicenow] page_size or "
                    "index the fields of [servicenow] query)"
                )
            raise RetriableAPIError(reason, status=status, detail=detail)
        raise FatalAPIError(f"HTTP {status}", status=status, detail=detail)

    def _decode(self, response: Exchange) -> list[Any]:
        """The ``result`` array; anything else is retried, then ends the run with exit 75."""
        if looks_like_html(response.body):
            raise RetriableAPIError(
                "answered with an HTML page instead of JSON (a login page or a proxy in "
                "between?); check instance_url and that the user may use the REST API",
                status=response.status,
            )
        try:
            payload = response.json()
        except ValueError:
            raise RetriableAPIError(
                f"answered with a body that is not JSON or is truncated "
                f"({len(response.body)} bytes)",
                status=response.status,
            ) from None
        result = payload.get("result") if isinstance(payload, dict) else None
        if not isinstance(result, list):
            raise RetriableAPIError("answered without a result list", status=response.status)
        return result
