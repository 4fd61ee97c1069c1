"""Operator tools for stuck events: list, retry, drop; and `status --check` for monitoring."""

from __future__ import annotations

import json
import re
import sqlite3

from tests.helpers.simulated import open_incident

REFUSE = (
    '{"request_id": "rq-77", "error": {"code": "InvalidParameter", '
    '"message": "title_rule too long"}}'
)


def dead_event(servicenow, flashduty, config, run_fd_sync):
    run_fd_sync("--config", config, "once")
    inc = open_incident(servicenow)
    flashduty.inject(status=400, path="/event/push/", body=REFUSE)
    assert run_fd_sync("--config", config, "once").code == 76
    return inc


def test_list_shows_the_error_and_request_id(servicenow, flashduty, write_config, run_fd_sync):
    config = str(write_config())
    inc = dead_event(servicenow, flashduty, config, run_fd_sync)
    listed = run_fd_sync("--config", config, "outbox", "list", "--dead")
    assert listed.code == 0
    assert inc["number"] in listed.stdout
    assert "HTTP 400 InvalidParameter: title_rule too long (request_id rq-77)" in listed.stdout
    row = json.loads(run_fd_sync("--config", config, "outbox", "list", "--json").stdout)
    assert row["status"] == "dead" and row["request_id"] == "rq-77"


def test_retry_requeues_and_the_next_run_delivers(servicenow, flashduty, write_config, run_fd_sync):
    config = str(write_config())
    inc = dead_event(servicenow, flashduty, config, run_fd_sync)
    event_id = json.loads(run_fd_sync("--config", config, "outbox", "list", "--json").stdout)["id"]
    retried = run_fd_sync("--config", config, "outbox", "retry", str(event_id))
    assert retried.code == 0 and "requeued 1 event(s)" in retried.stdout
    assert run_fd_sync("--config", config, "once").code == 0
    assert flashduty.open_keys() == {inc["sys_id"]}
    again = run_fd_sync("--config", config, "outbox", "retry", str(event_id))
    assert again.code == 64 and "delivered, not dead" in again.stderr


def test_retry_all(servicenow, flashduty, write_config, run_fd_sync):
    config = str(write_config())
    run_fd_sync("--config", config, "once")
    rows = [open_incident(servicenow) for _ in range(3)]
    flashduty.inject(status=400, path="/event/push/", body=REFUSE, times=3)
    assert run_fd_sync("--config", config, "once").code == 76
    assert "requeued 3" in run_fd_sync("--config", config, "outbox", "retry", "--all").stdout
    assert run_fd_sync("--config", config, "once").code == 0
    assert flashduty.open_keys() == {r["sys_id"] for r in rows}


def test_dropping_a_dead_create_lets_the_next_change_open_a_new_alert(
    servicenow, flashduty, write_config, run_fd_sync
):
    config = str(write_config())
    inc = dead_event(servicenow, flashduty, config, run_fd_sync)
    event_id = json.loads(run_fd_sync("--config", config, "outbox", "list", "--json").stdout)["id"]
    dropped = run_fd_sync("--config", config, "outbox", "drop", str(event_id))
    assert dropped.code == 0 and "dropped 1 event(s)" in dropped.stdout
    assert run_fd_sync("--config", config, "once").code == 0  # nothing dead any more
    servicenow.clock.advance(1)
    servicenow.update(inc["sys_id"], short_description="still broken")
    assert run_fd_sync("--config", config, "once").code == 0
    assert flashduty.history() == {inc["sys_id"]: ["create"]}


def test_usage_mistakes(servicenow, flashduty, write_config, run_fd_sync):
    config = str(write_config())
    run_fd_sync("--config", config, "once")
    assert run_fd_sync("--config", config, "outbox", "retry").code == 64
    missing = run_fd_sync("--config", config, "outbox", "drop", "999")
    assert missing.code == 64 and "event 999 is unknown" in missing.stderr


def test_status_check_for_monitoring(servicenow, flashduty, write_config, run_fd_sync, database):
    config = str(write_config(sync={"poll_interval_seconds": 60}))
    assert run_fd_sync("--config", config, "once").code == 0
    healthy = run_fd_sync("--config", config, "status", "--check")
    assert healthy.code == 0
    assert re.search(r"^health\s+ok: last successful cycle", healthy.stdout, re.M)
    # Make the last success four intervals old.
    conn = sqlite3.connect(database)
    conn.execute("UPDATE runs SET finished_at = '2020-01-01T00:00:00+00:00'")
    conn.commit()
    conn.close()
    stale = run_fd_sync("--config", config, "status", "--check")
    assert stale.code == 75
    assert "unhealthy: last successful cycle" in stale.stderr


def test_status_check_fails_while_anything_is_dead(
    servicenow, flashduty, write_config, run_fd_sync
):
    """A refused create means somebody was not paged: status --check is not green after
    the cycle that refused it, and names the oldest dead event (issue 23, item 11)."""
    config = str(write_config())
    assert run_fd_sync("--config", config, "once").code == 0
    inc = open_incident(servicenow)
    flashduty.inject(status=400, path="/event/push/", times=10)
    assert run_fd_sync("--config", config, "once").code == 76
    flashduty.clear_faults()
    again = run_fd_sync("--config", config, "once")  # nothing new: still not green
    assert again.code == 76
    check = run_fd_sync("--config", config, "status", "--check")
    assert check.code == 76, check.output
    assert f"({inc['number']} create to default" in check.stderr and "HTTP 400" in check.stderr
    assert "outbox list --dead" in check.stderr
    as_json = json.loads(run_fd_sync("--config", config, "status", "--json").stdout)
    assert as_json["healthy"] is False and inc["number"] in as_json["oldest_dead"]
    assert run_fd_sync("--config", config, "outbox", "retry", "--all").code == 0
    assert run_fd_sync("--config", config, "once").code == 0
    assert run_fd_sync("--config", config, "status", "--check").code == 0


def test_retry_never_pages_for_an_incident_that_closed_while_its_create_was_refused(
    servicenow, flashduty, write_config, run_fd_sync
):
    """A refused create never reached Flashduty; the incident closed before the operator
    fixed the key: retrying must not send create then resolve for a closed incident."""
    wrong = write_config(
        flashduty={"push_url": flashduty.push_url_standard.replace("fdkey", "badkey")}
    )
    run_fd_sync("--config", str(wrong), "once")
    closed = open_incident(servicenow)
    still_open = open_incident(servicenow)
    assert run_fd_sync("--config", str(wrong), "once").code == 76  # both creates dead
    servicenow.clock.advance(1)
    servicenow.resolve(closed["sys_id"])
    assert run_fd_sync("--config", str(wrong), "once").code == 76  # its resolve held behind
    fixed = str(write_config())
    retried = run_fd_sync("--config", fixed, "outbox", "retry", "--all")
    assert retried.code == 0
    assert "requeued 1 event(s)" in retried.stdout
    assert "cancelled 2 event(s) of alerts Flashduty never had" in retried.stdout
    assert run_fd_sync("--config", fixed, "once").code == 0
    assert flashduty.history() == {still_open["sys_id"]: ["create"]}
