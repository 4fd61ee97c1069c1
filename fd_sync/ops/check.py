"""``fd-sync check``: find the misconfiguration before it bites.

The troubleshooting section of the ServiceNow-side integration, as a command:
each layer is tested in order (DNS, TCP, TLS, HTTP, credentials, read access,
a one-row query, the clocks; then Flashduty's push endpoint) and reported as
one line with a hint for the operator. A failure at one layer skips the layers
above it, because their errors would only repeat it. Nothing here creates an
alert unless ``--send-test`` asks for one.
"""

from __future__ import annotations

import dataclasses
import secrets
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

from fd_sync import wiring
from fd_sync.config import Config
from fd_sync.core.decide import Kind
from fd_sync.core.incident import Incident
from fd_sync.core.payloads import build
from fd_sync.errors import (
    EX_NOPERM,
    EX_OK,
    EX_PROTOCOL,
    EX_TEMPFAIL,
    AccessDenied,
    FatalAPIError,
    FdSyncError,
    RemoteRejected,
    RetriableAPIError,
)
from fd_sync.flashduty.push import FlashdutyClient, describe
from fd_sync.servicenow.client import ServiceNowClient

SKEW_WARNING_SECONDS = 60
NO_ANSWER_HINT = (
    "no HTTP answer at all (what fd-servicenow reported as 'HTTP status 0'): the host is "
    "unreachable, a firewall blocks outbound HTTPS, or a proxy is needed ([http] proxy)"
)


@dataclass
class Step:
    area: str
    name: str
    level: str  # ok | warn | fail | skip
    detail: str
    hint: str = ""
    exit_code: int = EX_OK

    def lines(self) -> list[str]:
        out = [f"{self.level:<4}  {self.area:<10} {self.name:<11} {self.detail}"]
        if self.hint:
            out.append(f"{'':<4}  {'':<10} {'':<11} hint: {self.hint}")
        return out


def _ok(area: str, name: str, detail: str) -> Step:
    return Step(area, name, "ok", detail)


def _fail(area: str, name: str, detail: str, hint: str, code: int = EX_TEMPFAIL) -> Step:
    return Step(area, name, "fail", detail, hint, code)


class Checker:
    """Runs the checks in order; collaborators injectable for tests."""

    def __init__(self, config: Config, *, echo: Callable[[str], None] = print) -> None:
        self.config = config
        self.echo = echo
        self.steps: list[Step] = []

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        for line in step.lines():
            self.echo(line)
        return step

    @property
    def exit_code(self) -> int:
        failed = [s.exit_code for s in self.steps if s.level == "fail"]
        return failed[0] if failed else EX_OK

    # --- the sequence -------------------------------------------------------------------

    def run(self, *, send_test: bool = False) -> int:
        self.add(_ok("config", "valid", str(self.config.path)))
        for warning in self.config.warnings:
            self.add(Step("config", "warning", "warn", warning))
        if self._network("servicenow", self.config.servicenow.instance_url):
            self._servicenow()
        reachable: dict[str, bool] = {}  # host -> network steps passed; probed once each
        for label, push_url, push_format in self._push_endpoints():
            host = urllib.parse.urlsplit(push_url).netloc
            if host not in reachable:
                reachable[host] = self._network("flashduty", push_url)
            if not reachable[host]:
                continue
            client = self._probe(label, push_url, push_format)
            if client is not None and send_test and label == "push_url":
                self._send_test(client)
        if self.config.flashduty.app_key and self._network(
            "openapi", self.config.flashduty.api_url
        ):
            self._openapi()
        return self.exit_code

    def _network(self, area: str, url: str) -> bool:
        """DNS, TCP and TLS to the host (or to the proxy when one is used)."""
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname or ""
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        proxy = self.config.http.proxy or requests.utils.get_environ_proxies(url).get(parsed.scheme)
        if proxy:
            proxied = urllib.parse.urlsplit(proxy)
            self.add(_ok(area, "proxy", f"via {proxied.hostname}:{proxied.port or 3128}"))
            host, port = proxied.hostname or "", proxied.port or 3128
        try:
            addresses = sorted(
                {a[4][0] for a in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
            )
        except OSError as exc:
            self.add(
                _fail(
                    area,
                    "dns",
                    f"{host}: {exc.strerror or exc}",
                    "check the host name and the resolver (/etc/resolv.conf); jump "
                    "hosts that only reach the internet through a proxy need [http] "
                    "proxy",
                )
            )
            return False
        self.add(_ok(area, "dns", f"{host} -> {', '.join(addresses[:3])}"))
        timeout = min(10.0, self.config.servicenow.timeout_seconds)
        started = time.monotonic()
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            self.add(_fail(area, "tcp", f"{host}:{port}: {reason}", NO_ANSWER_HINT))
            return False
        self.add(_ok(area, "tcp", f"{host}:{port} ({(time.monotonic() - started) * 1000:.0f} ms)"))
        with sock:
            if parsed.scheme != "https" or proxy:
                return True  # through a proxy, TLS is negotiated inside the tunnel
            return self._tls(area, sock, parsed.hostname or host)

    def _tls(self, area: str, sock: socket.socket, server_name: str) -> bool:
        context = ssl.create_default_context(
            cafile=str(self.config.http.ca_bundle) if self.config.http.ca_bundle else None
        )
        try:
            with context.wrap_socket(sock, server_hostname=server_name) as tls:
                cert = tls.getpeercert() or {}
        except ssl.SSLCertVerificationError as exc:
            self.add(
                _fail(
                    area,
                    "tls",
                    f"certificate not trusted: {exc.verify_message}",
                    f"what fd-servicenow reported as 'HTTP status 0': the certificate of "
                    f"{server_name} is not trusted; if a private CA or a TLS-inspecting proxy "
                    "signed it, set [http] ca_bundle to that CA's PEM file",
                )
            )
            return False
        except (ssl.SSLError, OSError) as exc:
            self.add(_fail(area, "tls", f"handshake failed: {exc}", NO_ANSWER_HINT))
            return False
        expires = cert.get("notAfter", "unknown")
        self.add(_ok(area, "tls", f"certificate for {server_name} trusted (expires {expires})"))
        return True

    # --- ServiceNow ---------------------------------------------------------------------

    def _servicenow(self) -> None:
        sn = self.config.servicenow
        one_try = dataclasses.replace(sn, max_attempts=1)
        client = ServiceNowClient(one_try, session=wiring.session(self.config))
        who = f"user {sn.username}" if sn.auth == "basic" else f"OAuth client {sn.client_id}"
        try:
            rows, server_now = client.table_get({"sysparm_fields": "sys_id", "sysparm_limit": "1"})
        except AccessDenied as exc:
            self.add(
                _fail(
                    "servicenow",
                    "auth",
                    str(exc),
                    "fd-sync never retries a refused login, so checking again is safe",
                    EX_NOPERM,
                )
            )
            return
        except RemoteRejected as exc:
            self.add(_fail("servicenow", "read", str(exc), "check [servicenow] table", EX_PROTOCOL))
            return
        except FdSyncError as exc:
            hint = (
                NO_ANSWER_HINT
                if "connection" in str(exc) or "TLS" in str(exc)
                else (
                    "the instance answered, but not with the Table API's JSON: it may be down, "
                    "hibernating (developer instances), or a proxy or SSO page stands in between"
                )
            )
            self.add(_fail("servicenow", "http", str(exc), hint, exc.exit_code))
            return
        self.add(_ok("servicenow", "auth", f"{who} accepted"))
        self.add(_ok("servicenow", "read", f"table {sn.table}: {len(rows)} row(s) readable"))
        try:
            newest, server_now = client.newest()
        except FdSyncError as exc:
            self.add(
                _fail("servicenow", "query", str(exc), "check [servicenow] query", exc.exit_code)
            )
            return
        query = " matching [servicenow] query" if sn.query else ""
        self.add(_ok("servicenow", "query", f"newest change{query}: {newest or 'none yet'}"))
        self._clocks(server_now, newest)

    def _clocks(self, server_now: datetime, newest: str | None) -> None:
        skew = (datetime.now(UTC) - server_now).total_seconds()
        if abs(skew) > SKEW_WARNING_SECONDS:
            self.add(
                Step(
                    "servicenow",
                    "clock",
                    "warn",
                    f"this host's clock is {skew:+.0f} s off ServiceNow's",
                    "fd-sync takes its time from ServiceNow, so syncing is unaffected; "
                    "fix NTP so that log timestamps agree",
                )
            )
        else:
            self.add(_ok("servicenow", "clock", f"within {abs(skew):.0f} s of ServiceNow's"))
        if newest and newest > server_now.strftime("%Y-%m-%d %H:%M:%S"):
            self.add(
                Step(
                    "servicenow",
                    "data",
                    "warn",
                    f"a row is dated in the future ({newest})",
                    "fd-sync caps its watermark at ServiceNow's clock, so it is not "
                    "blinded; the row itself has bad data",
                )
            )

    # --- Flashduty ----------------------------------------------------------------------

    def _push_endpoints(self) -> list[tuple[str, str, str]]:
        """(label, push URL, format) of [flashduty] push_url and of every route's own."""
        fd = self.config.flashduty
        endpoints = [("push_url", fd.push_url, fd.push_format)]
        endpoints += [
            (f"route {d.name.removeprefix('route:')}", d.push_url, d.push_format)
            for d in self.config.routing.destinations
        ]
        return endpoints

    def _probe(self, label: str, push_url: str, push_format: str) -> FlashdutyClient | None:
        """An empty event is refused by validation: it proves the route and the key without
        creating an alert. Returns the client when the endpoint is usable."""
        client = FlashdutyClient(
            push_url,
            timeout=self.config.flashduty.timeout_seconds,
            max_attempts=1,
            session=wiring.session(self.config),
        )
        try:
            client.push({})
        except FatalAPIError as exc:
            rejected = (
                f"the integration key or token in {label} was rejected: copy the push "
                "URL again from the Flashduty integration"
            )
            hints = {
                400: None,
                401: rejected,
                403: rejected,
                404: f"no such route: check the path of {label}",
            }
            hint = hints.get(exc.status or 0, "Flashduty refused the probe unexpectedly")
            if hint is None:
                self.add(
                    _ok(
                        "flashduty",
                        "push",
                        f"{label}: reachable, {push_format} format; "
                        "an empty probe was refused as expected (no alert created)",
                    )
                )
                return client
            self.add(_fail("flashduty", "push", f"{label}: {describe(exc)}", hint, EX_PROTOCOL))
            return None
        except RetriableAPIError as exc:
            self.add(
                _fail(
                    "flashduty",
                    "push",
                    f"{label}: {describe(exc)}",
                    "Flashduty did not answer usefully; try again, or check the proxy",
                )
            )
            return None
        self.add(
            Step(
                "flashduty",
                "push",
                "warn",
                f"{label}: an empty probe was accepted",
                "unexpected: the endpoint may not be Flashduty's",
            )
        )
        return client

    def _openapi(self) -> None:
        """With an app_key: the OpenAPI answers, the key is accepted, the channel exists."""
        fd = self.config.flashduty
        try:
            client = wiring.openapi_client(self.config, purpose="check")
            client.call("/channel/list", {"p": 1, "limit": 1})
        except AccessDenied as exc:
            self.add(
                _fail(
                    "openapi",
                    "app_key",
                    str(exc),
                    "create or copy an APP key in Flashduty and set [flashduty] app_key",
                    EX_NOPERM,
                )
            )
            return
        except FdSyncError as exc:
            self.add(
                _fail(
                    "openapi",
                    "reach",
                    str(exc),
                    "check [flashduty] api_domain and the proxy",
                    exc.exit_code,
                )
            )
            return
        self.add(_ok("openapi", "app_key", f"{fd.api_url}: app_key accepted"))
        if fd.channel_id is None:
            return
        try:
            rules = client.escalation_rules(fd.channel_id)
        except FdSyncError as exc:
            self.add(
                _fail("openapi", "channel", str(exc), "check [flashduty] channel_id", exc.exit_code)
            )
            return
        enabled = [r for r in rules if r.get("status") != "disabled"]
        self.add(
            _ok(
                "openapi",
                "channel",
                f"channel {fd.channel_id}: {len(enabled)} enabled escalation rule(s)",
            )
        )

    def _send_test(self, client: FlashdutyClient) -> None:
        tag = secrets.token_hex(8)
        incident = Incident(
            sys_id=f"fdsynctest{tag}",
            number="FDSYNC-TEST",
            updated_on="",
            mod_count=0,
            state="1",
            urgency="3",
            short_description="fd-sync test alert (safe to ignore)",
            description="Sent by `fd-sync check --send-test` to prove the path to Flashduty; "
            "it is resolved right away.",
        )
        fd = self.config.flashduty
        resolved = dataclasses.replace(incident, state="6")
        sn = self.config.servicenow
        try:
            opened = client.push(
                build(
                    fd.push_format,
                    Kind.CREATE,
                    incident,
                    instance_url=sn.instance_url,
                    table=sn.table,
                )
            )
            closed = client.push(
                build(
                    fd.push_format,
                    Kind.RESOLVE,
                    resolved,
                    instance_url=sn.instance_url,
                    table=sn.table,
                )
            )
        except (FatalAPIError, RetriableAPIError) as exc:
            self.add(
                _fail(
                    "flashduty",
                    "send-test",
                    describe(exc),
                    "the probe passed but a real event did not: see the message",
                    EX_PROTOCOL,
                )
            )
            return
        self.add(
            _ok(
                "flashduty",
                "send-test",
                f"test alert sent (request_id "
                f"{opened.request_id}) and resolved (request_id {closed.request_id})",
            )
        )


def run_check(config: Config, *, send_test: bool, echo: Callable[[str], None]) -> int:
    checker = Checker(config, echo=echo)
    code = checker.run(send_test=send_test)
    failed = sum(1 for s in checker.steps if s.level == "fail")
    echo("all checks passed" if not failed else f"{failed} check(s) failed")
    return code
