"""The layers under HTTP: DNS, TCP and TLS, each its own line, to the host or the proxy."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from typing import TYPE_CHECKING

import requests

from fd_sync.ops.check.steps import NO_ANSWER_HINT, fail, ok

if TYPE_CHECKING:
    from fd_sync.ops.check import Checker


def reach(c: Checker, area: str, url: str) -> bool:
    """DNS, TCP and TLS to the host (or to the proxy when one is used)."""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    proxy = c.config.http.proxy or requests.utils.get_environ_proxies(url).get(parsed.scheme)
    if proxy:
        proxied = urllib.parse.urlsplit(proxy)
        c.add(ok(area, "proxy", f"via {proxied.hostname}:{proxied.port or 3128}"))
        host, port = proxied.hostname or "", proxied.port or 3128
    try:
        addresses = sorted(
            {str(a[4][0]) for a in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
        )
    except OSError as exc:
        c.add(
            fail(
                area,
                "dns",
                f"{host}: {exc.strerror or exc}",
                "check the host name and the resolver (/etc/resolv.conf); jump "
                "hosts that only reach the internet through a proxy need [http] "
                "proxy",
            )
        )
        return False
    c.add(ok(area, "dns", f"{host} -> {', '.join(addresses[:3])}"))
    timeout = min(10.0, c.config.servicenow.timeout_seconds)
    started = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        c.add(fail(area, "tcp", f"{host}:{port}: {reason}", NO_ANSWER_HINT))
        return False
    c.add(ok(area, "tcp", f"{host}:{port} ({(time.monotonic() - started) * 1000:.0f} ms)"))
    with sock:
        if parsed.scheme != "https" or proxy:
            return True  # through a proxy, TLS is negotiated inside the tunnel
        return tls(c, area, sock, parsed.hostname or host)


def tls(c: Checker, area: str, sock: socket.socket, server_name: str) -> bool:
    context = ssl.create_default_context(
        cafile=str(c.config.http.ca_bundle) if c.config.http.ca_bundle else None
    )
    try:
        with context.wrap_socket(sock, server_hostname=server_name) as tls:
            cert = tls.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        c.add(
            fail(
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
        c.add(fail(area, "tls", f"handshake failed: {exc}", NO_ANSWER_HINT))
        return False
    expires = cert.get("notAfter", "unknown")
    c.add(ok(area, "tls", f"certificate for {server_name} trusted (expires {expires})"))
    return True
