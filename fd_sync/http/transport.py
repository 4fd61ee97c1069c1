"""HTTP plumbing both remotes share: sessions, bounded exchanges, the retry policy.

Failures are sorted here, at the boundary, into two kinds (as singer-sdk does):
:class:`RetriableAPIError` when asking again may work (network errors,
timeouts, 429, 5xx, a garbled body) and :class:`FatalAPIError` when it will
not (other 4xx). The ServiceNow and Flashduty clients decide what each status
means for them; this module only guarantees that an exchange ends within its
deadline, reads at most ``max_bytes``, and never puts a URL (which may carry a
token) into an error message.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import requests
import tenacity
import urllib3

from fd_sync import __version__
from fd_sync.errors import APIError, Interrupted, RetriableAPIError

if TYPE_CHECKING:
    from requests.sessions import _Settings

USER_AGENT = f"fd-sync/{__version__} (+https://github.com/flashcatcloud)"
RETRY_AFTER_CAP = 60.0  # seconds; a longer Retry-After ends the run instead of stalling it


@dataclass(frozen=True)
class Exchange:
    """A completed HTTP exchange: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float = 0.0

    def json(self) -> Any:
        return decode_json(self.body)

    def server_time(self) -> datetime | None:
        """The remote's clock from its ``Date`` header, if it sent one we can read."""
        value = self.headers.get("Date")
        if not value:
            return None
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


_DECODER = msgspec.json.Decoder()


def decode_json(body: bytes) -> Any:
    """``json.loads``, decoded by msgspec (several times faster on a Table API page).

    msgspec refuses some documents ``json`` accepts (NaN, a float beyond its range, a lone
    surrogate): those are decoded by ``json``, so every answer means what it meant before,
    and one ``json`` refuses raises the same ValueError.
    """
    try:
        return _DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return json.loads(body)


class _Session(requests.Session):
    """A session that reads the proxy environment once per origin, not once per request.

    requests consults the environment on every request (proxy variables, NO_PROXY,
    ~/.netrc, REQUESTS_CA_BUNDLE): about 0.3 ms of CPU a request, more than the rest
    of an event's delivery. Here HTTPS_PROXY/NO_PROXY are resolved once per scheme
    and host and kept; netrc and REQUESTS_CA_BUNDLE were never wanted (credentials
    and ``ca_bundle`` are explicit, and ``exchange`` passes ``verify`` itself).
    """

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self._environment_proxies: dict[tuple[str, str], dict[str, str]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if not self.proxies:  # an explicit [http] proxy wins over the environment
            origin = urllib.parse.urlsplit(url)[:2]
            if origin not in self._environment_proxies:
                self._environment_proxies[origin] = requests.utils.get_environ_proxies(url)
            settings["proxies"] = {**self._environment_proxies[origin], **settings["proxies"]}
        return settings


def make_session(
    *, ca_bundle: str | os.PathLike[str] | None = None, proxy: str | None = None
) -> requests.Session:
    """A keep-alive session. TLS verification is always on; ``ca_bundle`` replaces the
    system CAs. Without ``proxy``, HTTPS_PROXY/NO_PROXY from the environment apply."""
    session = _Session()
    session.headers["User-Agent"] = USER_AGENT
    if ca_bundle:
        session.verify = str(ca_bundle)
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    return session


def network_reason(exc: Exception, timeout: float) -> tuple[str, bool]:
    """A short, URL-free description of a transport failure (requests' or urllib3's), and
    whether to retry now."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError | urllib3.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
            return (
                "TLS certificate not trusted (self-signed, private CA or a TLS-inspecting "
                "proxy? set [http] ca_bundle to its CA)",
                False,
            )
        return "TLS handshake failed", True
    if isinstance(exc, requests.exceptions.ProxyError | urllib3.exceptions.ProxyError):
        return "the proxy refused or failed the connection", True
    if isinstance(exc, requests.exceptions.ConnectTimeout) or (
        # urllib3's NewConnectionError (refused, DNS) is a ConnectTimeoutError too
        isinstance(exc, urllib3.exceptions.ConnectTimeoutError)
        and not isinstance(exc, urllib3.exceptions.NewConnectionError)
    ):
        return f"no TCP connection within {timeout:g} s (firewall or wrong host?)", True
    if isinstance(
        exc, requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError | TimeoutError
    ):
        return f"no answer within {timeout:g} s", True
    lowered = text.lower()
    if any(
        s in lowered
        for s in (
            "name or service not known",
            "nodename nor servname",
            "temporary failure in name resolution",
            "no address associated",
            "failed to resolve",
            "getaddrinfo failed",
        )
    ):
        return "DNS lookup failed (check the host name and the resolver)", True
    if "connection refused" in lowered:
        return "connection refused (nothing listens there, or a firewall rejects it)", True
    if any(
        s in lowered
        for s in (
            "remotedisconnected",
            "connection aborted",
            "connection reset",
            "broken pipe",
            "incompleteread",
            "protocolerror",
        )
    ):
        return "connection dropped before the answer was complete", True
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | urllib3.exceptions.ProtocolError):
        return "connection dropped before the answer was complete", True
    return f"network error ({type(exc).__name__})", True


def exchange(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    clock: Callable[[], float] = time.monotonic,
    prepared: requests.PreparedRequest | None = None,
    **kwargs: Any,
) -> Exchange:
    """One request whose total time, headers to last byte, is bounded by ``timeout``.

    ``requests`` timeouts bound each socket read, so a remote that trickles a
    byte a second would never trip them; this reads the body in chunks
    against one deadline and a size cap. ``prepared``, a request the caller
    prepared from ``session`` (``method``, ``url`` and ``kwargs`` then unused),
    is sent as it is: requests' per-call preparation is most of a small POST's
    client CPU.
    """
    started = clock()
    deadline = started + timeout
    try:
        if prepared is not None:
            settings = session.merge_environment_settings(
                prepared.url, {}, True, session.verify, None
            )
            response = session.send(
                prepared,
                timeout=(min(timeout, 10.0), timeout),
                stream=True,
                verify=session.verify,
                proxies=settings["proxies"],
            )
        else:
            # verify= per request: otherwise REQUESTS_CA_BUNDLE would override ca_bundle.
            response = session.request(
                method,
                url,
                timeout=(min(timeout, 10.0), timeout),
                stream=True,
                verify=session.verify,
                **kwargs,
            )
    except requests.RequestException as exc:
        reason, retry = network_reason(exc, timeout)
        raise RetriableAPIError(reason, retry=retry) from None
    try:
        body = read_bounded(response.raw, response.status_code, max_bytes, deadline, timeout, clock)
    finally:
        response.close()
    return Exchange(
        status=response.status_code,
        headers=response.headers,
        body=body,
        elapsed=clock() - started,
    )


def read_bounded(
    raw: urllib3.BaseHTTPResponse,
    status: int,
    max_bytes: int,
    deadline: float,
    timeout: float,
    clock: Callable[[], float],
) -> bytes:
    """The whole body, or a RetriableAPIError past the deadline or the size cap."""
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            # read1 returns as soon as some bytes arrive; iter_content would wait
            # for a whole chunk and let a trickling remote outlive the deadline.
            chunk = raw.read1(65536, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > max_bytes:
                raise RetriableAPIError(
                    f"answer larger than {max_bytes // 2**20} MiB", status=status, retry=False
                )
            if clock() > deadline:
                raise RetriableAPIError(f"answer not complete within {timeout:g} s")
            chunks.append(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        reason, retry = network_reason(exc, timeout)
        raise RetriableAPIError(reason, retry=retry) from None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))


class BackoffWait:
    """Exponential backoff with equal jitter, capped; a server's Retry-After wins."""

    def __init__(
        self,
        *,
        initial: float = 0.5,
        cap: float = 30.0,
        retry_after_cap: float = RETRY_AFTER_CAP,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.retry_after_cap = retry_after_cap
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, APIError) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry_after_cap)
        base = min(self.cap, self.initial * 2 ** (retry_state.attempt_number - 1))
        return base / 2 + base / 2 * self.rng()


def interruptible_sleep(stop: threading.Event) -> Callable[[float], None]:
    """A sleep for retry waits that ends the wait, and the retrying, when ``stop`` is set."""

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise Interrupted("stop requested during a retry wait")

    return sleep


def _should_retry(exc: BaseException) -> bool:
    return isinstance(exc, RetriableAPIError) and exc.retry


def retrying(
    *,
    max_attempts: int,
    max_seconds: float,
    wait: BackoffWait,
    sleep: Callable[[float], None] = time.sleep,
    before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
) -> tenacity.Retrying:
    """The one retry policy: retriable errors only, bounded in attempts and in time."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_should_retry),
        stop=tenacity.stop_after_attempt(max_attempts) | tenacity.stop_before_delay(max_seconds),
        wait=wait,
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
