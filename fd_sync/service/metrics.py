"""Prometheus metrics and a health check for ``fd-sync run``.

Served from a background thread at ``[metrics] listen``: ``/metrics`` in the
Prometheus text format, ``/healthz`` 200 while the last successful cycle is
less than three poll intervals old (503 otherwise, with the reason), so a
load balancer or a blackbox probe can tell a stuck daemon from a busy one.
The registry is private to the object, so tests can run several daemons.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from fd_sync.core.watermark import parse_sn_time
from fd_sync.sync.pacing import Pacing
from fd_sync.sync.report import CycleReport


class BudgetGauges:
    """Both APIs' budgets (fd_sync.sync.pacing): what the "API budgets" panel shows."""

    def __init__(self, r: CollectorRegistry, poll_interval: int) -> None:
        self.servicenow_requests = Counter(
            "fdsync_servicenow_requests", "Requests made to ServiceNow by cycles.", registry=r
        )
        self.remaining = Gauge(
            "fdsync_servicenow_budget_remaining",
            "Requests ServiceNow still allows this hour, under the tighter of [servicenow] "
            "max_requests_per_hour and the instance's rate-limit rule (-1: no limit).",
            registry=r,
        )
        self.limit = Gauge(
            "fdsync_servicenow_budget_limit",
            "The hourly limit that remaining counts down from (0: no limit).",
            registry=r,
        )
        self.interval = Gauge(
            "fdsync_effective_interval_seconds",
            "Seconds between cycles as the budgets allow (the poll interval, or longer).",
            registry=r,
        )
        self.openapi_used = Gauge(
            "fdsync_openapi_requests_last_minute",
            "OpenAPI requests in the last minute, by every caller of the process.",
            registry=r,
        )
        self.openapi_budget = Gauge(
            "fdsync_openapi_budget_per_minute",
            "[flashduty] max_openapi_requests_per_minute.",
            registry=r,
        )
        self.oldest_read = Gauge(
            "fdsync_flashduty_oldest_read_seconds",
            "Seconds since the least recently read tracked Flashduty incident was read.",
            registry=r,
        )
        self.remaining.set(-1)
        self.interval.set(poll_interval)

    def observe(self, report: CycleReport, pacing: Pacing | None) -> None:
        self.servicenow_requests.inc(report.servicenow_requests)
        if pacing is None:
            return
        view = pacing.servicenow.view()
        self.remaining.set(view.remaining if view.limit else -1)
        self.limit.set(view.limit)
        self.interval.set(pacing.interval)
        self.openapi_used.set(pacing.openapi.used())
        self.openapi_budget.set(pacing.openapi.per_minute)
        if pacing.selection is not None:
            self.oldest_read.set(pacing.selection.oldest_read)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every 15 s would drown the journal


class Metrics:
    def __init__(self, *, poll_interval: int, clock: Callable[[], float] = time.time) -> None:
        self.poll_interval = poll_interval
        self.clock = clock
        self.registry = CollectorRegistry()
        r = self.registry
        self.cycles = Counter("fdsync_cycles", "Cycles by outcome.", ["outcome"], registry=r)
        self.cycle_seconds = Histogram(
            "fdsync_cycle_duration_seconds",
            "Duration of whole cycles.",
            registry=r,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
        )
        self.fetched = Counter("fdsync_incidents_fetched", "Incident rows read.", registry=r)
        self.events = Counter(
            "fdsync_events",
            "Events by kind (create, update, resolve, cancelled) and outcome "
            "(queued, delivered, dead).",
            ["kind", "outcome"],
            registry=r,
        )
        self.pending = Gauge("fdsync_outbox_pending", "Events waiting in the outbox.", registry=r)
        self.dead = Gauge("fdsync_outbox_dead", "Events Flashduty refused for good.", registry=r)
        self.lag = Gauge(
            "fdsync_watermark_lag_seconds", "Local time minus the watermark.", registry=r
        )
        self.writebacks = Counter(
            "fdsync_writeback",
            "Write-backs to ServiceNow by kind (ack, comment, resolve, ..., state) and outcome "
            "(written, refused).",
            ["kind", "outcome"],
            registry=r,
        )
        self.commands = Counter(
            "fdsync_commands",
            "Commands read from /flashduty work notes, by verb and outcome.",
            ["verb", "outcome"],
            registry=r,
        )
        self.tickets = Counter(
            "fdsync_tickets",
            "Tickets from Flashduty by outcome: opened, refused (creates), and the OpenAPI "
            "writes to their incidents (comment, resolve, reopen, severity; *_refused).",
            ["outcome"],
            registry=r,
        )
        self.tickets_dead = Gauge(
            "fdsync_tickets_dead",
            "Ticket creates ServiceNow refused and writes Flashduty refused, kept until "
            "fd-sync outbox retry or drop.",
            registry=r,
        )
        self.writeback_dead = Gauge(
            "fdsync_writeback_dead",
            "Write-backs ServiceNow refused for good, kept until fd-sync outbox retry or drop.",
            registry=r,
        )
        self.writeback_lag = Gauge(
            "fdsync_writeback_lag_seconds",
            "Age of the oldest write-back ServiceNow has not accepted yet (0: none).",
            registry=r,
        )
        interval = Gauge(
            "fdsync_poll_interval_seconds",
            "[sync] poll_interval_seconds: what freshness alerts compare with.",
            registry=r,
        )
        interval.set(poll_interval)
        self.budgets = BudgetGauges(r, poll_interval)
        self.last_success = Gauge(
            "fdsync_last_success_timestamp_seconds", "When a cycle last ended ok.", registry=r
        )
        self.leader = Gauge(
            "fdsync_leader",
            "1 while this process runs the cycles (always, on SQLite); 0 while standing by.",
            registry=r,
        )
        self.leader.set(1)
        self.failovers = Counter(
            "fdsync_failovers",
            "Times this process took over from a leader whose session had ended.",
            registry=r,
        )
        self._failovers_seen = 0
        self._dead = 0
        self.standby = False
        self._last_success: float | None = None
        self._server: WSGIServer | None = None

    # --- recording ----------------------------------------------------------------------

    def observe(self, report: CycleReport, pacing: Pacing | None = None) -> None:
        self.cycles.labels(report.outcome).inc()
        self.budgets.observe(report, pacing)
        self.cycle_seconds.observe(report.seconds)
        self.fetched.inc(report.fetched)
        for kind, count in report.events.items():
            if count:
                self.events.labels(kind, "queued").inc(count)
        if report.delivery.delivered:
            self.events.labels("any", "delivered").inc(report.delivery.delivered)
        if report.delivery.dead:
            self.events.labels("any", "dead").inc(report.delivery.dead)
        for (verb, outcome), count in report.commands.outcomes.items():
            self.commands.labels(verb, outcome).inc(count)
        for (kind, outcome), count in report.writeback.outcomes.items():
            self.writebacks.labels(kind, outcome).inc(count)
        self.writeback_lag.set(report.writeback.lag_seconds)
        for outcome, count in report.tickets.outcomes.items():
            self.tickets.labels(outcome).inc(count)
        self.tickets_dead.set(report.tickets_dead)
        self.pending.set(report.pending)
        self.dead.set(report.dead)
        self.writeback_dead.set(report.writeback_dead)
        self._dead = report.dead + report.writeback_dead + report.tickets_dead
        if report.watermark:
            self.lag.set(max(0.0, self.clock() - parse_sn_time(report.watermark).timestamp()))
        if report.exit_code == 0:
            self._last_success = self.clock()
            self.last_success.set(self._last_success)

    def leadership(self, leader: bool, failovers: int) -> None:
        self.leader.set(1 if leader else 0)
        self.standby = not leader
        if failovers > self._failovers_seen:
            self.failovers.inc(failovers - self._failovers_seen)
            self._failovers_seen = failovers

    def health(self) -> tuple[bool, str]:
        if self.standby:
            return True, "standing by: another fd-sync process leads"
        if self._dead:
            return False, (
                f"{self._dead} item(s) refused for good and kept (somebody was not paged, or "
                "an action never reached ServiceNow): see fd-sync outbox list --dead"
            )
        if self._last_success is None:
            return False, "no successful cycle yet"
        age = self.clock() - self._last_success
        if age > 3 * self.poll_interval:
            return False, f"last successful cycle {age:.0f} s ago (> 3 poll intervals)"
        return True, f"last successful cycle {age:.0f} s ago"

    # --- serving ------------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            ok, why = self.health()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "text/plain; charset=utf-8")],
            )
            return [f"{'ok' if ok else 'unhealthy'}: {why}\n".encode()]
        if path in ("/metrics", "/"):
            return self._prometheus(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]

    def start(self, host: str, port: int) -> None:
        self._prometheus = make_wsgi_app(self.registry)
        self._server = make_server(host, port, self._app, handler_class=_QuietHandler)
        threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True).start()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
