"""``fd-sync run`` as systemd runs it: a real process, a real notify socket, real signals."""

from __future__ import annotations

import json
import signal
import threading

from tests.helpers.config import to_toml
from tests.helpers.processes import is_status
from tests.helpers.simulated import change, open_incident

PUSH = "/event/push/"


def test_ready_then_cycles_pick_up_changes_then_sigterm(servicenow, flashduty, daemon, notify):
    proc = daemon()
    ready = notify.wait_for(lambda m: m.get("READY") == "1")
    assert ready["MAINPID"] == str(proc.pid)
    notify.wait_for(is_status("last cycle"))
    inc = open_incident(servicenow)
    assert flashduty.wait_for(1, timeout=30)
    change(servicenow, inc["sys_id"], short_description="worse")
    assert flashduty.wait_for(2, timeout=30)
    change(servicenow, inc["sys_id"], state="6")
    assert flashduty.wait_for(3, timeout=30)
    assert flashduty.history()[inc["sys_id"]] == ["create", "update", "resolve"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert notify.wait_for(lambda m: m.get("STOPPING") == "1")


def test_sigterm_mid_delivery_exits_0_and_loses_nothing(
    servicenow, flashduty, daemon, notify, run_fd_sync, write_config
):
    config = write_config(sync={"poll_interval_seconds": 1})
    proc = daemon(config)
    notify.wait_for(is_status("last cycle"))
    rows = [open_incident(servicenow) for _ in range(5)]
    release = threading.Event()
    held = flashduty.inject(hold=release, path=PUSH, after=1)  # park the second push
    assert held.arrived.wait(30)
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        release.set()
    # A clean stop is recorded as one, even mid-cycle (issue 23, item 9).
    stopped = json.loads(run_fd_sync("--config", str(config), "status", "--json").stdout)
    assert stopped["daemon"]["running"] is False
    assert "gone without stopping" not in stopped["daemon"]["status"]
    assert run_fd_sync("--config", str(config), "once").code == 0
    assert flashduty.open_keys() == {r["sys_id"] for r in rows}
    assert flashduty.duplicates() <= 1  # at most the push that was parked at the signal


def test_sighup_reloads_and_a_broken_file_keeps_the_old_config(
    servicenow, flashduty, daemon, notify, write_config
):
    config = write_config(sync={"poll_interval_seconds": 1})
    proc = daemon(config)
    notify.wait_for(is_status("last cycle"))
    good = config.read_text()
    config.write_text(good + "\n[servicenow]\nbroken = \n")
    proc.send_signal(signal.SIGHUP)
    failed = notify.wait_for(is_status("reload failed"))
    assert str(config) in failed["STATUS"]
    first = open_incident(servicenow)
    assert flashduty.wait_for(1, timeout=30)  # still running on the old configuration
    assert flashduty.events()[0].fmt == "standard"
    # A valid change: switch to the ServiceNow push format.
    config.write_text(good.replace(flashduty.push_url_standard, flashduty.push_url_servicenow))
    proc.send_signal(signal.SIGHUP)
    notify.wait_for(is_status("configuration reloaded"))
    second = open_incident(servicenow)
    assert flashduty.wait_for(2, timeout=30)
    assert [(e.key, e.fmt) for e in flashduty.events()] == [
        (first["sys_id"], "standard"),
        (second["sys_id"], "servicenow"),
    ]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_once_beside_the_daemon_never_double_sends(
    servicenow, flashduty, daemon, notify, run_fd_sync, write_config
):
    config = write_config(sync={"poll_interval_seconds": 1})
    proc = daemon(config)
    notify.wait_for(is_status("last cycle"))
    rows = []
    for _ in range(4):
        rows.append(open_incident(servicenow))
        assert run_fd_sync("--config", str(config), "once").code in (0, 75)  # 75: lock busy
    assert flashduty.wait_for(4, timeout=30)
    notify.wait_for(is_status("last cycle"))
    assert flashduty.history(include_duplicates=True) == {r["sys_id"]: ["create"] for r in rows}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_a_stalled_cycle_starves_the_watchdog(servicenow, flashduty, daemon, notify, write_config):
    config = write_config(
        sync={"poll_interval_seconds": 1, "stall_seconds": 2}, servicenow={"timeout_seconds": 120}
    )
    release = threading.Event()
    # The first table request hangs (a ServiceNow that accepts and never answers).
    servicenow.inject(hold=release, path="/api/now/table/")
    proc = daemon(config, env={"WATCHDOG_USEC": "400000"})
    notify.wait_for(lambda m: m.get("READY") == "1")
    notify.wait_for(lambda m: m.get("WATCHDOG") == "1")  # fed while the cycle is young
    stalled = notify.wait_for(is_status("stalled"))
    assert "no progress" in stalled["STATUS"]
    # While it hangs, no ping: read what arrives until we release the request.
    notify.sock.settimeout(1.0)
    quiet = []
    try:
        while True:
            quiet.append(notify.sock.recv(65536).decode())
    except TimeoutError:
        pass
    assert not any("WATCHDOG=1" in q for q in quiet)
    release.set()
    notify.wait_for(lambda m: m.get("WATCHDOG") == "1")  # progress again: fed again
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_access_denied_pauses_fetching(
    servicenow, flashduty, daemon, notify, write_config, run_fd_sync
):
    config = write_config(
        sync={"poll_interval_seconds": 1}, servicenow={"password": "wrong-password-1"}
    )
    proc = daemon(config)
    first = notify.wait_for(is_status("last cycle"))
    assert "rejected the credentials" in first["STATUS"]
    notify.wait_for(is_status("last cycle"))  # the next cycle: fetching stays paused
    assert len(servicenow.requests) == 1
    status = json.loads(run_fd_sync("--config", str(config), "status", "--json").stdout)
    assert "rejected the credentials" in status["daemon"]["fetch_paused_because"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_bad_config_at_start_exits_78(tmp_path, run_fd_sync):
    config = tmp_path / "bad.toml"
    config.write_text(to_toml({"servicenow": {"instance_url": "ftp://x"}}))
    result = run_fd_sync("--config", str(config), "run")
    assert result.code == 78
    assert "[servicenow] instance_url" in result.stderr


def test_a_reload_that_moves_the_ledger_is_refused(
    servicenow, flashduty, daemon, notify, write_config, tmp_path
):
    config = write_config(sync={"poll_interval_seconds": 1})
    proc = daemon(config)
    notify.wait_for(is_status("last cycle"))
    moved = tmp_path / "elsewhere" / "fd-sync.db"
    config.write_text(config.read_text().replace("state/fd-sync.db", "elsewhere/fd-sync.db"))
    proc.send_signal(signal.SIGHUP)
    refused = notify.wait_for(is_status("reload refused"))
    assert "[sync] database changed: restart fd-sync to use it" in refused["STATUS"]
    first = open_incident(servicenow)
    assert flashduty.wait_for(1, timeout=30)  # the old ledger keeps syncing
    assert flashduty.events()[0].key == first["sys_id"]
    assert not moved.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_status_shows_a_killed_daemon_as_stopped(
    servicenow, flashduty, daemon, notify, write_config, run_fd_sync
):
    config = write_config(sync={"poll_interval_seconds": 1})
    proc = daemon(config)
    notify.wait_for(is_status("last cycle"))
    alive = json.loads(run_fd_sync("--config", str(config), "status", "--json").stdout)
    assert alive["daemon"]["running"] is True and alive["daemon"]["pid"] == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    dead = run_fd_sync("--config", str(config), "status", "--json")
    daemon_state = json.loads(dead.stdout)["daemon"]
    assert daemon_state["running"] is False
    assert f"pid {proc.pid} is gone without stopping" in daemon_state["status"]
    text = run_fd_sync("--config", str(config), "status").stdout
    assert "daemon       stopped" in text or "stopped, every" in text


def test_every_log_line_names_its_process(servicenow, flashduty, daemon, notify, write_config):
    """Lines outside a cycle (config warnings, start, reload, stop) carry the daemon's id;
    lines of a cycle carry its run_id as well."""
    config = write_config(
        sync={"poll_interval_seconds": 1},
        flashduty={"push_url": flashduty.push_url_standard},  # http://: a config warning
    )
    proc = daemon(config)
    notify.wait_for(is_status("last cycle"))
    proc.send_signal(signal.SIGHUP)
    notify.wait_for(is_status("configuration reloaded"))
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    events = {line["event"] for line in lines}
    assert {"config_warning", "config_reloaded", "cycle_started"} <= events
    daemon_ids = {line.get("daemon_id") for line in lines}
    assert len(daemon_ids) == 1 and None not in daemon_ids
    assert all(line.get("run_id") for line in lines if line["event"] == "cycle_finished")


def test_every_line_of_once_carries_its_run_id(servicenow, flashduty, write_config, run_fd_sync):
    config = write_config(flashduty={"push_url": flashduty.push_url_standard})
    result = run_fd_sync("--config", str(config), "once")
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert "config_warning" in {line["event"] for line in lines}
    assert len({line.get("run_id") for line in lines}) == 1  # one id, the runs table's too
    status = json.loads(run_fd_sync("--config", str(config), "status", "--json").stdout)
    assert status["last_run"]["run_id"] == lines[0]["run_id"]


def test_the_daemon_writes_back_an_ack_once_and_echoes_nothing(
    servicenow, flashduty, daemon, notify
):
    proc = daemon(
        flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
        writeback={"enabled": True, "acknowledge_state": "2"},
    )
    notify.wait_for(is_status("last cycle"))
    inc = open_incident(servicenow)
    assert flashduty.wait_for(1, timeout=30)
    incident_id = flashduty.incident_of(inc["sys_id"])
    flashduty.ack(incident_id, flashduty.add_person("Ann Lee", "ann@example.com"))
    assert servicenow.wait_for_writes(1, timeout=30)
    assert servicenow.incident(inc["sys_id"])["state"] == "2"
    cycles = 0
    while cycles < 3:  # a few more cycles: nothing more is written, nothing echoed
        notify.wait_for(is_status("last cycle"))
        cycles += 1
    assert len(servicenow.writes) == 1
    assert [e.kind for e in flashduty.events()] == ["create"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_a_second_daemon_on_one_sqlite_ledger_is_refused(
    servicenow, flashduty, daemon, notify, write_config, run_fd_sync
):
    """Two daemons on one SQLite file took turns and overwrote each other's record: status
    showed one (issue 23, item 13). The second one is refused, 78, naming the first."""
    config = write_config(sync={"poll_interval_seconds": 1})
    first = daemon(config)
    notify.wait_for(is_status("last cycle"))
    second = run_fd_sync("--config", str(config), "run")
    assert second.code == 78, second.output
    assert f"fd-sync run (pid {first.pid}) already uses this ledger" in second.stderr
    status = json.loads(run_fd_sync("--config", str(config), "status", "--json").stdout)
    assert status["daemon"]["running"] is True and status["daemon"]["pid"] == first.pid
