"""kill -9 a real ``fd-sync once`` in the middle of a write-back PATCH, rerun, and count
the work notes: exactly once either way. A crash before ServiceNow applied the PATCH sends
it again; a crash after it (before fd-sync recorded the answer) finds the note's marker in
the journal and sends nothing more (it used to write it twice)."""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest

from tests.helpers.processes import child_env, fd_sync_command
from tests.helpers.simulated import open_incident

PATCH = "/api/now/table/incident/"


def once(config) -> subprocess.Popen:
    return subprocess.Popen(
        fd_sync_command("--config", str(config), "once"),
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("applied", [False, True], ids=["before-apply", "after-apply"])
def test_a_kill_mid_write_back_writes_the_note_exactly_once(
    servicenow, flashduty, write_config, run_fd_sync, applied
):
    config = write_config(
        flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
        writeback={"enabled": True},
    )
    assert run_fd_sync("--config", str(config), "once").code == 0  # the baseline
    inc = open_incident(servicenow)
    assert run_fd_sync("--config", str(config), "once").code == 0  # the create
    incident_id = flashduty.incident_of(inc["sys_id"])
    flashduty.comment(incident_id, flashduty.add_person("Bob Ray"), "checking the core router")
    release = threading.Event()
    if applied:  # ServiceNow applies the PATCH; its answer comes too late for fd-sync
        fault = servicenow.inject(slow_answer=60.0, path=PATCH, method="PATCH")
        point = fault.handled
    else:  # the PATCH is parked, then refused unseen: ServiceNow never applies it
        fault = servicenow.inject(hold=release, status=503, path=PATCH, method="PATCH")
        point = fault.arrived
    proc = once(config)
    assert point.wait(30), "fd-sync never reached the PATCH"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    release.set()
    servicenow.clear_faults()
    for _ in range(3):
        rerun = run_fd_sync("--config", str(config), "once")
        assert rerun.code == 0, rerun.output
    notes = [j["value"] for j in servicenow.journal(inc["sys_id"])]
    written = sum("Comment by Bob Ray: checking the core router" in n for n in notes)
    assert written == 1
    assert [e.kind for e in flashduty.events()] == ["create"]  # nothing echoed
