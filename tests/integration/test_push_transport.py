"""The push path (urllib3, not requests: see fd_sync.http.poster) keeps the transport's
promises: TLS verified against [http] ca_bundle, the operator's proxy or the environment's
(NO_PROXY honoured), one deadline to the last byte, and no silent re-send."""

from __future__ import annotations

import base64
import select
import socket
import socketserver
import threading
import urllib.parse

import pytest

from fd_sync.errors import RetriableAPIError
from fd_sync.flashduty.push import FlashdutyClient
from fd_sync.simulators.flashduty import FlashdutySim

BODY = {"event_status": "Warning", "title_rule": "disk", "alert_key": "a" * 32}


class _Relay(socketserver.StreamRequestHandler):
    """An HTTP proxy: CONNECT tunnels, and absolute-URI requests forwarded as they are."""

    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1")
        method, target, _ = line.split()
        head = []
        while (header := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            head.append(header)
        names = {h.split(b":", 1)[0].strip().lower(): h.split(b":", 1)[1].strip() for h in head}
        self.server.seen.append((method, target, names.get(b"proxy-authorization")))  # type: ignore[attr-defined]
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urllib.parse.urlsplit(target)
            upstream = socket.create_connection((url.hostname, url.port))
            path = url.path + (f"?{url.query}" if url.query else "")
            kept = [h for h in head if not h.lower().startswith(b"proxy-")]
            upstream.sendall(f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(kept) + b"\r\n")
            length = int(names.get(b"content-length", b"0"))
            if length:
                upstream.sendall(self.rfile.read(length))
        self._pipe(upstream)

    def _pipe(self, upstream: socket.socket) -> None:
        client = self.connection  # nothing is left buffered: clients wait for each answer
        try:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 5)
                if not ready:
                    return
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        finally:
            upstream.close()


class Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.seen: list[tuple[str, str, bytes | None]] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy():
    server = Proxy()
    yield server
    server.shutdown()
    server.server_close()


def test_a_push_goes_through_the_configured_proxy_with_its_credentials(flashduty, proxy):
    client = FlashdutyClient(
        flashduty.push_url_standard,
        proxy=proxy.url.replace("http://", "http://ops:s3cret@"),
        max_attempts=1,
    )
    assert client.push(BODY).status == 200
    ((method, target, auth),) = proxy.seen
    assert (method, target) == ("POST", flashduty.push_url_standard)
    assert auth == b"Basic " + base64.b64encode(b"ops:s3cret")
    assert [e.kind for e in flashduty.events()] == ["create"]


def test_https_through_the_proxy_is_tunnelled_and_trusts_the_ca_bundle(tls, proxy):
    with FlashdutySim(tls=tls.server_context) as sim:
        client = FlashdutyClient(
            sim.push_url_standard, proxy=proxy.url, ca_bundle=tls.ca_file, max_attempts=1
        )
        assert client.push(BODY).status == 200
        (method, target, _), *_ = proxy.seen
        assert method == "CONNECT" and target == sim.url.split("//", 1)[1]


def test_the_environment_proxy_applies_unless_no_proxy_names_the_host(
    flashduty, proxy, monkeypatch
):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert FlashdutyClient(flashduty.push_url_standard, max_attempts=1).push(BODY).status == 200
    assert len(proxy.seen) == 1
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    FlashdutyClient(flashduty.push_url_standard, max_attempts=1).push(BODY)
    assert len(proxy.seen) == 1  # straight there


def test_an_untrusted_certificate_names_the_fix_and_is_not_retried(tls):
    with FlashdutySim(tls=tls.server_context) as sim:
        client = FlashdutyClient(sim.push_url_standard, max_attempts=3)
        with pytest.raises(RetriableAPIError) as info:
            client.push(BODY)
        assert "ca_bundle" in info.value.reason and info.value.retry is False
        assert len(sim.requests) == 0


def test_a_trickling_answer_hits_the_deadline(flashduty):
    flashduty.inject(trickle=0.3)
    client = FlashdutyClient(flashduty.push_url_standard, timeout=1.0, max_attempts=1)
    with pytest.raises(RetriableAPIError) as info:
        client.push(BODY)
    assert "within 1 s" in info.value.reason


def test_a_dropped_connection_is_reported_not_silently_sent_again(flashduty):
    flashduty.inject(drop=True, path="/event/push/")
    client = FlashdutyClient(flashduty.push_url_standard, max_attempts=1)
    with pytest.raises(RetriableAPIError) as info:
        client.push(BODY)
    assert "dropped" in info.value.reason
    assert len(flashduty.requests) == 1  # urllib3 did not re-send it behind our back
