"""The Flashduty OpenAPI: escalation rules, and the names of people, teams and schedules.

Requests are ``POST {api_url}{path}?app_key=KEY`` with a JSON body and a 30 s
limit, as fd-servicenow made them. Answers use Flashduty's envelope
(``{"request_id", "data"}`` or ``{"request_id", "error": {"code",
"message"}}``) and are judged by the same rules as pushes
(:func:`fd_sync.flashduty.push.classify`), over the shared retry policy and HTTP
exchange of :mod:`fd_sync.http.transport`. Every failure names the path, the HTTP
status, Flashduty's code and message and the request id (also sent as
``Flashcat-Request-Id``), never the app_key, which rides in the query string
that the transport never quotes.

The account allows 50 requests per second and 1000 per minute; the client
paces itself below both, leaving room for other users of the same key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

from fd_sync import logs
from fd_sync.errors import (
    AccessDenied,
    FatalAPIError,
    NotFound,
    RemoteRejected,
    RetriableAPIError,
    TemporaryFailure,
)
from fd_sync.flashduty.push import classify, describe, flashduty_retrying
from fd_sync.http.ratelimit import SlidingWindowLimiter
from fd_sync.http.transport import (
    BackoffWait,
    exchange,
    make_session,
)

TIMEOUT_SECONDS = 30.0
LIMITS = ((40, 1.0), (900, 60.0))  # under the account's 50/s and 1000/min
BATCH = 100  # ids per /person/infos, /team/infos, /schedule/infos request
PAGE_LIMIT = 100  # the largest page /member/list and /channel/list serve
MAX_PAGES = 10000 // PAGE_LIMIT  # pagination.mdx: p x limit must be <= 10000
MAX_RESPONSE_BYTES = 8 * 2**20


def _items(data: Any) -> list[dict[str, Any]]:
    items = data.get("items") if isinstance(data, dict) else None
    return [i for i in items or () if isinstance(i, dict)]


def _wire_id(value: Any) -> Any:
    """Ids are int64 in Flashduty; schedule ids arrive as map keys, i.e. strings."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


class OpenAPIClient:
    """One account (app_key) on one Flashduty deployment (api_url)."""

    def __init__(
        self,
        api_url: str,
        app_key: str,
        *,
        session: requests.Session | None = None,
        max_attempts: int = 3,
        limiter: SlidingWindowLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wait: BackoffWait | None = None,
        key_source: str = "[flashduty] app_key",
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.app_key = app_key
        self.key_source = key_source  # where the key came from, for the fix a refusal names
        self.session = session or make_session()
        self.max_attempts = max_attempts
        self.limiter = limiter or SlidingWindowLimiter(LIMITS)
        self.sleep = sleep
        self.clock = clock
        self.wait = wait or BackoffWait(cap=10.0)
        self.log = logs.get("openapi")
        self.requests_made = 0  # what a cycle reports: its OpenAPI cost

    # --- the calls fd-sync makes ----------------------------------------------------

    def escalation_rules(self, channel_id: int) -> list[dict[str, Any]]:
        """Every escalation rule of a channel, enabled or not, in Flashduty's order."""
        return _items(self.call("/channel/escalate/rule/list", {"channel_id": channel_id}))

    def infos(self, kind: str, ids: Iterable[Any]) -> dict[str, dict[str, Any]]:
        """``person``, ``team`` or ``schedule`` records by id (as text), ``BATCH`` per request.

        Ids Flashduty does not know are left out, whether it omits them or
        refuses the batch with ResourceNotFound (then the batch is split).
        """
        wanted = list(dict.fromkeys(str(i) for i in ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), BATCH):
            found.update(self._infos(kind, wanted[start : start + BATCH]))
        return found

    def _infos(self, kind: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        try:
            data = self.call(f"/{kind}/infos", {f"{kind}_ids": [_wire_id(i) for i in ids]})
        except NotFound:
            if len(ids) == 1:
                return {}  # deleted since the rule was written
            middle = len(ids) // 2
            return self._infos(kind, ids[:middle]) | self._infos(kind, ids[middle:])
        return {str(item.get(f"{kind}_id")): item for item in _items(data)}

    def channels(self) -> list[dict[str, Any]]:
        return self.paged("/channel/list")

    def members(self) -> list[dict[str, Any]]:
        return self.paged("/member/list")

    def paged(self, path: str, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a paged list (``p`` from 1, ``limit`` at most 100).

        pagination.mdx: ``has_next_page`` says whether to go on; ``total`` is capped
        (exact below 1000 only), so it never ends a listing. Where an endpoint sends
        no ``has_next_page`` (``/member/list`` in the platform spec), a short page does.
        """
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            data = self.call(path, {**(body or {}), "p": page, "limit": PAGE_LIMIT})
            batch = _items(data)
            items.extend(batch)
            more = data.get("has_next_page") if isinstance(data, dict) else None
            if more is False or (more is None and len(batch) < PAGE_LIMIT) or not batch:
                break
        return items

    # --- one request -----------------------------------------------------------------

    def call(self, path: str, body: dict[str, Any], *, repeatable: bool = True) -> Any:
        """POST one OpenAPI request; its ``data``, or an FdSyncError naming what failed.

        A write that is not ``repeatable`` (a comment: sent twice, it shows twice) is
        retried only after a 429, answered before anything is done; after a timeout, a
        dropped connection or a 5xx it may have landed, and the caller finds out first."""

        policy = flashduty_retrying(
            self.log,
            "openapi_retry",
            max_attempts=self.max_attempts,
            wait=self.wait,
            sleep=self.sleep,
            path=path,
        )
        data = json.dumps(body).encode()

        def attempt() -> dict[str, Any]:
            try:
                return self._attempt(path, data)
            except RetriableAPIError as exc:
                if not repeatable and exc.status != 429:
                    exc.retry = False  # it may have landed: never blindly again
                raise

        try:
            payload = policy(attempt)
        except FatalAPIError as exc:
            raise self._refused(path, exc) from None
        except RetriableAPIError as exc:
            raise TemporaryFailure(
                f"Flashduty OpenAPI {self.api_url}{path}: {describe(exc)}; try again later"
            ) from None
        return payload.get("data")

    def _attempt(self, path: str, data: bytes) -> dict[str, Any]:
        self.limiter.acquire()
        self.requests_made += 1
        response = exchange(
            self.session,
            "POST",
            f"{self.api_url}{path}",
            timeout=TIMEOUT_SECONDS,
            max_bytes=MAX_RESPONSE_BYTES,
            clock=self.clock,
            params={"app_key": self.app_key},
            data=data,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        classify(response)  # raises unless a 2xx envelope without an error
        payload = json.loads(response.body)
        return payload if isinstance(payload, dict) else {}

    def _refused(self, path: str, exc: FatalAPIError) -> RemoteRejected | AccessDenied:
        where = f"Flashduty OpenAPI {self.api_url}{path}"
        if exc.status in (401, 403):
            return AccessDenied(
                f"{where} refused the app key from {self.key_source} ({describe(exc)}); "
                "check the key (Flashduty: Account settings > APP Key) and its permissions"
            )
        if exc.code == "ResourceNotFound":
            return NotFound(f"{where}: {describe(exc)}")
        return RemoteRejected(f"{where}: {describe(exc)}")
