"""Push one event to a Flashduty integration and say exactly how it went.

Classification follows Flashcat's own reference client: network errors, 408,
429 and 5xx are worth retrying (429 after its ``Retry-After``); any other 4xx
is a permanent refusal; and a 2xx whose body carries an ``error`` object is a
failure, not a success. Every failure keeps Flashduty's ``error.code``,
``message`` and ``request_id``, which is what its support asks for.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity

from fd_sync import logs, redaction
from fd_sync.errors import FatalAPIError, RetriableAPIError
from fd_sync.http.poster import Poster
from fd_sync.http.ratelimit import SlidingWindowLimiter
from fd_sync.http.transport import (
    USER_AGENT,
    BackoffWait,
    Exchange,
    looks_like_html,
    parse_retry_after,
    retrying,
)

MAX_RESPONSE_BYTES = 1 << 20
RETRY_BUDGET_SECONDS = 90.0  # room for one Retry-After at its 60 s cap
# Codes that mean "later"; every other documented code means "never like this".
RETRIABLE_CODES = {"RequestTooFrequently", "InternalError"}
PUSH_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(frozen=True)
class Receipt:
    status: int
    request_id: str | None
    alert_key: str | None = None  # data.alert_key of the answer (standard alert.mdx), if any


def describe(exc: RetriableAPIError | FatalAPIError) -> str:
    """One line for logs and the outbox: status, Flashduty's code and message, request id."""
    parts = [f"HTTP {exc.status}" if exc.status else exc.reason]
    if exc.code:
        parts.append(exc.code)
    text = " ".join(parts)
    if exc.detail:
        text += f": {exc.detail}"
    elif exc.status and exc.reason != f"HTTP {exc.status}":
        text += f": {exc.reason}"
    if exc.request_id:
        text += f" (request_id {exc.request_id})"
    return text


def _envelope(response: Exchange) -> tuple[dict[str, Any] | None, str | None]:
    """Flashduty's JSON envelope (None if the body is not one) and the request id."""
    request_id = response.headers.get("Flashcat-Request-Id")
    try:
        payload = json.loads(response.body) if response.body.strip() else {}
    except ValueError:
        return None, request_id
    if not isinstance(payload, dict):
        return None, request_id
    rid = payload.get("request_id")
    return payload, (str(rid) if rid else request_id)


def flashduty_retrying(
    log: Any,
    event: str,
    *,
    max_attempts: int,
    wait: BackoffWait,
    sleep: Callable[[float], None],
    **context: Any,
) -> tenacity.Retrying:
    """The retry policy of every Flashduty call (pushes, OpenAPI), each retry logged as
    ``event`` with Flashduty's description of what failed."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            event,
            **context,
            attempt=state.attempt_number,
            error=describe(exc) if isinstance(exc, RetriableAPIError) else str(exc),
            wait_seconds=round(state.upcoming_sleep, 2),
        )

    return retrying(
        max_attempts=max_attempts,
        max_seconds=RETRY_BUDGET_SECONDS,
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
    )


class FlashdutyClient:
    """One push URL. Collaborators (session, limiter, sleep, clock) are injectable."""

    def __init__(
        self,
        push_url: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 5,
        limiter: SlidingWindowLimiter | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        proxy: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wait: BackoffWait | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.limiter = limiter
        self.poster = Poster(
            push_url,
            headers={**PUSH_HEADERS, "User-Agent": USER_AGENT},
            ca_bundle=ca_bundle,
            proxy=proxy,
        )
        self.sleep = sleep
        self.clock = clock
        self.wait = wait or BackoffWait(cap=10.0)
        self.log = logs.get("flashduty")
        self._policy: tenacity.Retrying | None = None

    @property
    def push_url(self) -> str:
        return self.poster.url

    @push_url.setter
    def push_url(self, url: str) -> None:
        self.poster.url = url

    def push(self, body: dict[str, Any]) -> Receipt:
        """Deliver, retrying transient failures; RetriableAPIError when they run out."""
        if self._policy is None:  # built once: the same for every push of this client
            self._policy = flashduty_retrying(
                self.log,
                "flashduty_retry",
                max_attempts=self.max_attempts,
                wait=self.wait,
                sleep=self.sleep,
            )
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return self._policy(lambda: self._attempt(data))

    def _attempt(self, data: bytes) -> Receipt:
        if self.limiter is not None:
            self.limiter.acquire()
        response = self.poster.post(
            data, timeout=self.timeout, max_bytes=MAX_RESPONSE_BYTES, clock=self.clock
        )
        return classify(response)


def classify(response: Exchange) -> Receipt:
    """A receipt for a success; otherwise raise the matching APIError."""
    payload, request_id = _envelope(response)
    error = payload.get("error") if payload else None
    code = message = None
    if isinstance(error, dict):
        code = str(error.get("code") or "") or None
        message = " ".join(redaction.redact(str(error.get("message") or "")).split())[:300] or None
    status = response.status
    if 200 <= status < 300:
        if error:
            # Flashcat's client counts a 2xx that carries an error as a failure.
            cls = RetriableAPIError if code in RETRIABLE_CODES or not code else FatalAPIError
            raise cls(
                f"HTTP {status} with an error",
                status=status,
                code=code,
                detail=message,
                request_id=request_id,
            )
        if payload is None:
            raise RetriableAPIError(
                f"HTTP {status} with a body that is not Flashduty's JSON (a proxy page?)",
                status=status,
                request_id=request_id,
            )
        data = payload.get("data")
        key = data.get("alert_key") if isinstance(data, dict) else None
        return Receipt(status=status, request_id=request_id, alert_key=str(key) if key else None)
    if status in (408, 429) or status >= 500:
        reason = "an HTML error page" if looks_like_html(response.body) else f"HTTP {status}"
        raise RetriableAPIError(
            reason,
            status=status,
            code=code,
            detail=message,
            request_id=request_id,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    raise FatalAPIError(
        f"HTTP {status}", status=status, code=code, detail=message, request_id=request_id
    )
