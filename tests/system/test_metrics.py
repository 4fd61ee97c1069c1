"""Prometheus metrics and /healthz of the daemon."""

from __future__ import annotations

import signal
import urllib.error
import urllib.request

from fd_sync.service.metrics import Metrics
from tests.helpers.processes import is_status
from tests.helpers.simulated import open_incident
from tests.postgres import free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


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


def without_prometheus(tmp_path):
    """An environment where `import prometheus_client` fails, as on a base install."""
    stub = tmp_path / "no-prometheus" / "prometheus_client"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ImportError("No module named prometheus_client")\n')
    return {"PYTHONPATH": str(stub.parent)}


def test_without_prometheus_client_only_run_refuses(tmp_path, write_config, run_fd_sync):
    """[metrics] listen must not lock the operator out of status, outbox or check."""
    config = str(write_config(metrics={"listen": "127.0.0.1:9464"}))
    env = without_prometheus(tmp_path)
    assert run_fd_sync("--config", config, "once", env=env).code == 0
    status = run_fd_sync("--config", config, "status", env=env)
    assert status.code == 0 and "prometheus-client" in status.stderr  # a warning
    assert run_fd_sync("--config", config, "outbox", "list", env=env).code == 0
    run = run_fd_sync("--config", config, "run", env=env)
    assert run.code == 78
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "[metrics] listen: needs the prometheus-client package: pip install 'fd-sync[metrics]'"
        )
    )
