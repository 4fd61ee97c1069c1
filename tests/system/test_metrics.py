"""Prometheus metrics and /healthz of the daemon."""

from __future__ import annotations

import signal
import socket
import urllib.error
import urllib.request

from fd_sync.service.metrics import Metrics
from tests.conftest import is_status, open_incident


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_daemon_serves_metrics_and_healthz(servicenow, flashduty, daemon, notify):
    port = free_port()
    proc = daemon(metrics={"listen": f"127.0.0.1:{port}"})
    notify.wait_for(is_status("last cycle"))
    open_incident(servicenow)
    assert flashduty.wait_for(1, timeout=30)
    notify.wait_for(is_status("delivered 1"))
    status, body = get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200 and body.startswith("ok")
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert 'fdsync_cycles_total{outcome="ok"}' in body
    assert 'fdsync_events_total{kind="create",outcome="queued"} 1.0' in body
    assert "fdsync_outbox_pending 0.0" in body
    assert "fdsync_last_success_timestamp_seconds" in body
    assert "fdsync_watermark_lag_seconds" in body
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_a_bad_listen_address_is_a_config_error(write_config, run_fd_sync):
    result = run_fd_sync("--config", str(write_config(metrics={"listen": "9464"})), "run")
    assert result.code == 78
    assert '[metrics] listen: must be "host:port"' in result.stderr


def test_unknown_paths_say_where_to_look():
    metrics = Metrics(poll_interval=60)
    metrics.start("127.0.0.1", 0)
    try:
        status, body = get(f"http://127.0.0.1:{metrics.port}/nope")
        assert status == 404 and "/metrics" in body
    finally:
        metrics.stop()
