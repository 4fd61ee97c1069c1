"""A small loopback HTTP server with fault injection, shared by both simulators.

Standard library only (``http.server``), so ``fd-sync demo`` needs nothing the
package does not already install. HTTP/1.1 with keep-alive, as real endpoints
speak it. A :class:`Fault` replaces or disturbs the answer to the next
matching requests: an error status, an HTML page, a dropped connection, a
delay past the client's timeout, a truncated or trickled body, or a hold that
parks the request until the test releases it (to kill a client mid-request).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, /, **headers: str) -> Response:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json;charset=UTF-8", **headers})


CONTROL_PREFIX = "/_sim/"  # POST /_sim/<command>: the control plane of a simulator process
HTML_ERROR = (
    "<!DOCTYPE html><html><head><title>{status} Bad Gateway</title></head>"
    "<body><h1>{status}</h1><p>The proxy could not reach the upstream server.</p></body></html>"
)


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next ``times`` matching requests."""

    status: int | None = None  # answer this status instead of the real answer
    body: bytes | str | None = None  # with this body (default: an HTML page for 5xx)
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # wait this long, then handle and answer normally (or with status)
    slow_answer: float = 0.0  # handle at once, answer this much later
    truncate: bool = False  # promise the whole body, send half, close
    trickle: float = 0.0  # send the body one byte every `trickle` seconds
    hold: threading.Event | None = None  # park the request until this is set
    path: str = ""  # only requests whose path starts with this
    method: str = ""  # only this method
    after: int = 0  # let this many matching requests through first
    times: int = 1
    arrived: threading.Event = field(default_factory=threading.Event)  # set when it fires
    handled: threading.Event = field(default_factory=threading.Event)  # set once answered inside
    fired: int = 0

    def matches(self, request: Request) -> bool:
        return request.path.startswith(self.path) and (
            not self.method or request.method == self.method
        )


class _QuietServer(ThreadingHTTPServer):
    """Clients that vanish mid-request (killed, timed out) are expected here, not errors."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class SimServer:
    """Serves ``handle(request) -> Response`` on 127.0.0.1 in a background thread."""

    name = "simulator"

    def __init__(self, port: int = 0, *, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls  # serve HTTPS with this server-side context
        self._lock = threading.RLock()
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.controls: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self.faults_fired: dict[str, int] = {}
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._holds: list[threading.Event] = []

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> SimServer:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = f"fd-sync-{sim.name}"
            # Headers and body leave in two writes; with Nagle on, the body waits for
            # the client's delayed ACK (40 ms a response on Linux loopback).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                sim._dispatch(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return sim.date_header()  # send_response() sends Date from here

        self._server = _QuietServer(("127.0.0.1", self._port), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        for event in self._holds:
            event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the simulator first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # --- faults -------------------------------------------------------------------------

    def inject(self, fault: Fault | None = None, /, **kwargs: Any) -> Fault:
        """Queue a fault (or build one from keyword arguments); returns it for waiting."""
        fault = fault or Fault(**kwargs)
        if fault.hold is not None:
            self._holds.append(fault.hold)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
        for event in self._holds:
            event.set()

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(request):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.fired += 1
                    if fault.fired >= fault.times:
                        self.faults.remove(fault)
                    return fault
        return None

    # --- serving ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:  # pragma: no cover - overridden
        raise NotImplementedError

    def _control(self, name: str, body: bytes) -> Response:
        command = self.controls.get(name)
        if command is None:
            known = ", ".join(sorted(self.controls))
            return Response.json({"error": f"no command {name!r}; known: {known}"}, 404)
        try:
            args = json.loads(body or b"{}")
            return Response.json(command(args if isinstance(args, dict) else {}))
        except Exception as exc:  # a bad command must not kill the simulator
            return Response.json({"error": repr(exc)}, 400)

    def requests_to(self, prefix: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if parsed.path.startswith(CONTROL_PREFIX) and self.controls:
            # The control plane of `python -m fd_sync.simulators`: outside the simulated
            # API, never counted as a request to it, never faulted.
            self._write(handler, self._control(parsed.path[len(CONTROL_PREFIX) :], body), None)
            return
        request = Request(
            method=handler.command,
            path=parsed.path,
            query=dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)),
            headers={k: v for k, v in handler.headers.items()},
            body=body,
        )
        fault = self._take_fault(request)
        with self._lock:
            self.requests.append(request)
            if fault is not None:
                kind = _fault_kind(fault)
                self.faults_fired[kind] = self.faults_fired.get(kind, 0) + 1
        if fault is not None:
            fault.arrived.set()
            if fault.hold is not None:
                fault.hold.wait()
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                _drop(handler)
                return
        try:
            if fault is not None and fault.status is not None:
                response = _fault_response(fault)
            else:
                response = self.handle(request)
        except Exception as exc:  # a bug in a simulator must show, not hang the client
            response = Response.json({"error": {"message": f"simulator bug: {exc!r}"}}, 500)
        if fault is not None:
            fault.handled.set()  # the simulator acted on it; only the answer is still to go
        if fault is not None and fault.slow_answer:
            time.sleep(fault.slow_answer)
        self._write(handler, response, fault)

    def _write(
        self, handler: BaseHTTPRequestHandler, response: Response, fault: Fault | None
    ) -> None:
        try:
            handler.send_response(response.status)
            for key, value in response.headers.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(response.body)))
            handler.end_headers()
            if fault is not None and fault.truncate:
                handler.wfile.write(response.body[: len(response.body) // 2])
                handler.wfile.flush()
                _drop(handler)
                return
            if fault is not None and fault.trickle:
                for i in range(len(response.body)):
                    handler.wfile.write(response.body[i : i + 1])
                    handler.wfile.flush()
                    time.sleep(fault.trickle)
                return
            handler.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError, OSError):
            handler.close_connection = True

    def date_header(self) -> str:
        from email.utils import formatdate

        return formatdate(usegmt=True)


def _fault_kind(fault: Fault) -> str:
    if fault.drop:
        return "dropped connection"
    if fault.truncate:
        return "truncated body"
    if fault.trickle:
        return "trickled body"
    if fault.hold is not None:
        return "held request"
    if fault.status == 429:
        return "429 with Retry-After" if "Retry-After" in fault.headers else "429"
    if fault.status is not None:
        return f"HTTP {fault.status}"
    if fault.delay or fault.slow_answer:
        return "slow response"
    return "other"


def _fault_response(fault: Fault) -> Response:
    status = fault.status or 500
    if fault.body is None:
        body = HTML_ERROR.format(status=status).encode()
        headers = {"Content-Type": "text/html"}
    else:
        body = fault.body.encode() if isinstance(fault.body, str) else fault.body
        headers = {"Content-Type": "application/json"}
    return Response(status, body, {**headers, **fault.headers})


def _drop(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)


Handler = Callable[[Request], Response]
