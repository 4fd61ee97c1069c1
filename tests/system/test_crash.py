"""kill -9 a real ``fd-sync once`` mid-delivery and mid-fetch, rerun, and count.

The simulators park a chosen request (a held fault) so that the process is
killed at a known point, without timing guesses. After the rerun nothing may
be lost, and only the one event in flight at the kill may arrive twice.
"""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest

from tests.helpers.processes import child_env, fd_sync_command
from tests.helpers.simulated import open_incident

TABLE = "/api/now/table/incident"
PUSH = "/event/push/"


def start(config) -> subprocess.Popen:
    return subprocess.Popen(
        fd_sync_command("--config", str(config), "once", "--since", "2026-11-01"),
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_when(fault, proc: subprocess.Popen) -> None:
    assert fault.arrived.wait(30), "the process never reached the held request"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def test_kill_mid_delivery_loses_nothing(servicenow, flashduty, write_config, run_fd_sync):
    rows = [open_incident(servicenow) for _ in range(6)]
    config = write_config()
    # Let two events through; park the third request until the process is dead.
    release = threading.Event()
    held = flashduty.inject(hold=release, path=PUSH, after=2)
    proc = start(config)
    kill_when(held, proc)
    release.set()  # the parked request now completes: Flashduty accepts the in-flight event
    assert flashduty.wait_for(3)
    rerun = run_fd_sync("--config", str(config), "once")
    assert rerun.code == 0, rerun.output
    assert flashduty.open_keys() == {r["sys_id"] for r in rows}
    # The parked request completed after the kill, so exactly that event arrives twice.
    assert flashduty.duplicates() == 1
    assert all(kinds == ["create"] for kinds in flashduty.history().values())
    assert len(flashduty.events()) == 6 + flashduty.duplicates()


def test_kill_mid_fetch_resumes_from_the_last_page(
    servicenow, flashduty, write_config, run_fd_sync
):
    rows = [open_incident(servicenow) for _ in range(25)]
    config = write_config(servicenow={"page_size": 10})
    release = threading.Event()
    # --since first asks ServiceNow's clock (one request), then page 1: park page 2.
    held = servicenow.inject(hold=release, path=TABLE, after=2)
    proc = start(config)
    kill_when(held, proc)
    release.set()
    assert flashduty.events() == []  # delivery starts after the fetch
    before = len(servicenow.requests_to(TABLE))
    rerun = run_fd_sync("--config", str(config), "once")
    assert rerun.code == 0, rerun.output
    # Page 1 was committed with its events: the rerun resumes near it, not from --since.
    assert "queued 15 create" in rerun.stdout
    assert len(servicenow.requests_to(TABLE)) - before <= 4
    assert flashduty.history() == {r["sys_id"]: ["create"] for r in rows}
    assert flashduty.duplicates() == 0


def test_kill_during_resolve_keeps_order(servicenow, flashduty, write_config, run_fd_sync):
    config = write_config("servicenow")
    inc = open_incident(servicenow)
    assert run_fd_sync("--config", str(config), "once", "--since", "2026-11-01").code == 0
    servicenow.clock.advance(1)
    servicenow.update(inc["sys_id"], short_description="worse")
    servicenow.clock.advance(1)
    servicenow.update(inc["sys_id"], state="6")
    # Hold the update; kill; the resolve must still come after it on the rerun.
    release = threading.Event()
    held = flashduty.inject(hold=release, path=PUSH)
    proc = subprocess.Popen(
        fd_sync_command("--config", str(config), "once"),
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    kill_when(held, proc)
    release.set()
    assert flashduty.wait_for(2)
    assert run_fd_sync("--config", str(config), "once").code == 0
    history = flashduty.history(include_duplicates=True)[inc["sys_id"]]
    assert history[0] == "create" and history[-1] == "resolve"
    assert flashduty.open_keys() == set()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_ctrl_c_mid_fetch_is_interrupted_exit_75_and_loses_nothing(
    servicenow, flashduty, write_config, run_fd_sync, stop
):
    """SIGHUP (a closed terminal) killed `once` with 129 and no record (issue 23, item 13):
    it stops as SIGINT does."""
    rows = [open_incident(servicenow) for _ in range(25)]
    config = write_config(servicenow={"page_size": 10})
    release = threading.Event()
    held = servicenow.inject(hold=release, path=TABLE, after=2)  # the clock, page 1: park page 2
    proc = start(config)
    assert held.arrived.wait(30), "the process never reached the second page"
    proc.send_signal(stop)
    release.set()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 75, stderr
    assert "fd-sync: stopped by a signal" in stderr.splitlines()[-1]
    status = run_fd_sync("--config", str(config), "status", "--json")
    assert '"outcome": "interrupted"' in status.stdout
    rerun = run_fd_sync("--config", str(config), "once")
    assert rerun.code == 0, rerun.output
    assert flashduty.open_keys() == {r["sys_id"] for r in rows}
