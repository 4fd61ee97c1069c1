"""``fd-sync once`` as operators and cron run it: a real process, real exit codes."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import threading

import pytest

from fd_sync.store.lock import RunLock
from tests.helpers.processes import child_env, fd_sync_command
from tests.helpers.simulated import change, open_incident


def secrets_of(servicenow, flashduty):
    return [
        servicenow.password,
        servicenow.client_secret,
        flashduty.token,
        flashduty.integration_key,
    ]


def assert_clean(result, servicenow, flashduty):
    assert "Traceback" not in result.output
    for secret in secrets_of(servicenow, flashduty):
        assert secret not in result.output


def ledger_rows(database):
    conn = sqlite3.connect(database)
    try:
        return (
            conn.execute("SELECT * FROM incidents ORDER BY sys_id").fetchall(),
            conn.execute("SELECT id, status, attempts FROM outbox ORDER BY id").fetchall(),
            conn.execute("SELECT * FROM state ORDER BY key").fetchall(),
        )
    finally:
        conn.close()


def test_first_run_then_changes(servicenow, flashduty, write_config, run_fd_sync, push_format):
    config = str(write_config(push_format))
    existing = open_incident(servicenow)
    first = run_fd_sync("--config", config, "once")
    assert first.code == 0, first.output
    assert "queued 0 create" in first.stdout
    assert flashduty.events() == []
    change(servicenow, existing["sys_id"], state="6")  # resolved: its alert never existed
    new = open_incident(servicenow)
    second = run_fd_sync("--config", config, "once")
    assert second.code == 0, second.output
    assert [(e.key, e.kind, e.fmt) for e in flashduty.events()] == [
        (new["sys_id"], "create", push_format)
    ]
    assert_clean(second, servicenow, flashduty)


def test_backfill_with_since(servicenow, flashduty, write_config, run_fd_sync):
    rows = [open_incident(servicenow) for _ in range(3)]
    change(servicenow, rows[1]["sys_id"], state="7")
    result = run_fd_sync("--config", str(write_config()), "once", "--since", "2026-11-01")
    assert result.code == 0, result.output
    assert flashduty.open_keys() == {rows[0]["sys_id"], rows[2]["sys_id"]}
    assert "delivered 2, pending 0, dead 0" in result.stdout


def test_dry_run_prints_events_and_touches_nothing(
    servicenow, flashduty, write_config, run_fd_sync, database
):
    inc = open_incident(servicenow, urgency="3")
    result = run_fd_sync(
        "--config", str(write_config()), "once", "--since", "2026-11-01T07:00:00", "--dry-run"
    )
    assert result.code == 0, result.output
    assert result.stdout.splitlines()[0] == f"{inc['number']} create Info"
    assert "dry run" in result.stdout
    assert flashduty.requests == []
    assert not database.exists()


def test_bad_since_is_a_usage_error(write_config, run_fd_sync):
    result = run_fd_sync("--config", str(write_config()), "once", "--since", "last tuesday")
    assert result.code == 64
    assert "ISO-8601" in result.stderr


def test_servicenow_unreachable_exits_75_and_changes_nothing(
    servicenow, write_config, run_fd_sync, database
):
    config = write_config()
    open_incident(servicenow)
    assert run_fd_sync("--config", str(config), "once").code == 0
    before = ledger_rows(database)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    unreachable = write_config(
        servicenow={"instance_url": f"http://127.0.0.1:{port}"}, name="down.toml"
    )
    result = run_fd_sync("--config", str(unreachable), "once")
    assert result.code == 75
    assert f"fd-sync: ServiceNow http://127.0.0.1:{port}: connection refused" in result.stderr
    incidents, outbox, state = ledger_rows(database)
    assert (incidents, outbox) == before[:2]
    assert dict(state)["watermark"] == dict(before[2])["watermark"]


def test_servicenow_401_exits_77_after_one_request(
    servicenow, flashduty, write_config, run_fd_sync
):
    config = write_config(servicenow={"password": "definitely-wrong"})
    result = run_fd_sync("--config", str(config), "once")
    assert result.code == 77
    assert len(servicenow.requests) == 1
    assert "rejected the credentials of user 'svc.fdsync'" in result.stderr
    assert "definitely-wrong" not in result.output
    assert_clean(result, servicenow, flashduty)


def test_servicenow_400_exits_76_with_its_message(servicenow, write_config, run_fd_sync):
    result = run_fd_sync("--config", str(write_config(servicenow={"table": "nosuchtable"})), "once")
    assert result.code == 76
    assert "Invalid table nosuchtable" in result.stderr


def test_flashduty_outage_then_recovery(servicenow, flashduty, write_config, run_fd_sync):
    config = str(write_config("servicenow"))
    run_fd_sync("--config", config, "once")
    inc = open_incident(servicenow)
    flashduty.inject(status=503, path="/event/push/", times=3)
    down = run_fd_sync("--config", config, "once")
    assert down.code == 75
    assert "Flashduty (default) unavailable: HTTP 503" in down.stderr
    assert flashduty.events() == []
    change(servicenow, inc["sys_id"], state="6")
    up = run_fd_sync("--config", config, "once")
    assert up.code == 0, up.output
    assert flashduty.history()[inc["sys_id"]] == ["create", "resolve"]
    assert_clean(up, servicenow, flashduty)


def test_flashduty_refusal_exits_76_and_keeps_the_event(
    servicenow, flashduty, write_config, run_fd_sync
):
    config = str(write_config())
    run_fd_sync("--config", config, "once")
    open_incident(servicenow)
    flashduty.inject(
        status=422,
        path="/event/push/",
        body='{"request_id": "rq-1", "error": {"code": "InvalidParameter", "message": "nope"}}',
    )
    result = run_fd_sync("--config", config, "once")
    assert result.code == 76
    assert "1 dead event(s)" in result.stderr
    status = run_fd_sync("--config", config, "status", "--json")
    assert json.loads(status.stdout)["outbox"]["dead"] == 1


def test_a_second_run_waits_for_the_lock_then_gives_up(
    servicenow, write_config, run_fd_sync, database
):
    config = str(write_config())
    with RunLock(database):
        result = run_fd_sync("--config", config, "--lock-wait", "0.2", "once")
    assert result.code == 75
    assert "another fd-sync run holds the ledger" in result.stderr


def test_a_second_run_proceeds_once_the_lock_is_released(servicenow, write_config, database):
    config = str(write_config())
    lock = RunLock(database)
    lock.acquire()
    proc = subprocess.Popen(
        fd_sync_command("--config", config, "--log-level", "debug", "once"),
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Release when the process is demonstrably waiting: it has opened the lock file.
    released = threading.Event()

    def holds_lock_file() -> bool:
        fd_dir = f"/proc/{proc.pid}/fd"
        try:
            return any(os.readlink(f"{fd_dir}/{fd}") == lock_path for fd in os.listdir(fd_dir))
        except OSError:
            return False

    def release_when_waiting():
        # Polling /proc: "the child opened the lock file" is not an event we can await.
        while proc.poll() is None and not released.is_set():
            if holds_lock_file():
                lock.release()
                released.set()
                return
            released.wait(0.05)

    lock_path = f"{database}.lock"
    thread = threading.Thread(target=release_when_waiting)
    thread.start()
    _, err = proc.communicate(timeout=60)
    thread.join()
    assert released.is_set()
    assert proc.returncode == 0, err


def test_status_reports_the_ledger(servicenow, flashduty, write_config, run_fd_sync):
    config = str(write_config())
    never = run_fd_sync("--config", config, "status")
    assert never.code == 75 and "no ledger yet" in never.stderr
    run_fd_sync("--config", config, "once")
    open_incident(servicenow)
    run_fd_sync("--config", config, "once")
    text = run_fd_sync("--config", config, "status")
    assert text.code == 0
    assert "1 tracked, 1 with an open alert" in text.stdout
    assert "once: ok (exit 0)" in text.stdout
    data = json.loads(run_fd_sync("--config", config, "status", "--json").stdout)
    assert data["open_alerts"] == 1
    assert data["last_run"]["outcome"] == "ok"
    assert data["watermark"] == "2026-11-01 07:59:56"  # ServiceNow clock 08:00:01 minus margin


@pytest.mark.parametrize("env_name", ["FD_SYNC_SERVICENOW_PASSWORD", "FD_SYNC_FLASHDUTY_PUSH_URL"])
def test_secrets_from_the_environment(servicenow, flashduty, write_config, run_fd_sync, env_name):
    if env_name == "FD_SYNC_SERVICENOW_PASSWORD":
        config = write_config(servicenow={"password": None})
        env = {env_name: servicenow.password}
    else:
        config = write_config(flashduty={"push_url": None})
        env = {env_name: flashduty.push_url_standard}
    result = run_fd_sync("--config", str(config), "once", env=env)
    assert result.code == 0, result.output


def test_a_first_dry_run_says_why_it_shows_nothing(servicenow, write_config, run_fd_sync):
    open_incident(servicenow)
    result = run_fd_sync("--config", str(write_config()), "once", "--dry-run")
    assert result.code == 0
    assert (
        "first run: would record the present state of ServiceNow and send nothing "
        "(fd-sync once --since DATE backfills)"
    ) in result.stdout
    again = run_fd_sync("--config", str(write_config()), "once")
    assert "first run: recorded the present state of ServiceNow and sent nothing" in again.stdout
    later = run_fd_sync("--config", str(write_config()), "once")
    assert "first run" not in later.stdout


def test_a_since_later_than_servicenows_clock_is_refused(
    servicenow, write_config, run_fd_sync, database
):
    config = str(write_config())
    assert run_fd_sync("--config", config, "once").code == 0
    before = json.loads(run_fd_sync("--config", config, "status", "--json").stdout)["watermark"]
    result = run_fd_sync("--config", config, "once", "--since", "2030-01-01")
    assert result.code == 64
    line = result.stderr.strip().splitlines()[-1]
    assert "--since 2030-01-01 00:00:00 UTC is later than ServiceNow's clock" in line
    assert servicenow.clock.text() in line  # both clocks, to compare
    after = json.loads(run_fd_sync("--config", config, "status", "--json").stdout)["watermark"]
    assert after == before


def test_status_check_fails_when_the_watermark_is_ahead_of_servicenow(
    servicenow, write_config, run_fd_sync, database
):
    config = str(write_config())
    assert run_fd_sync("--config", config, "once").code == 0
    with sqlite3.connect(database) as db:  # a ledger an older fd-sync blinded this way
        db.execute("UPDATE state SET value = '2030-01-01 00:00:00' WHERE key = 'watermark'")
    result = run_fd_sync("--config", config, "status", "--check")
    assert result.code == 75
    assert "is ahead of ServiceNow's clock" in result.stderr
    assert "AHEAD of this host's clock" in result.stdout
