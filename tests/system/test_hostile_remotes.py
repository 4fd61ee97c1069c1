"""Remotes that answer badly: a clear line, exit 75, and a ledger exactly as before."""

from __future__ import annotations

import sqlite3

import pytest

from fd_sync.simulators.http import Fault
from tests.helpers.simulated import open_incident

TABLE = "/api/now/table/"


def snapshot(database):
    conn = sqlite3.connect(database)
    try:
        return [
            conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("incidents", "outbox", "state", "quarantine")
        ]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Fault(
                status=200,
                body="<!DOCTYPE html><html><body><form>Log in</form></body></html>",
                headers={"Content-Type": "text/html"},
            ),
            "HTML page instead of JSON",
        ),
        (Fault(status=200, body='{"result": null}'), "without a result list"),
        (
            Fault(status=200, body='{"result": [{"sys_id": "abc", "sys_upd'),
            "not JSON or is truncated",
        ),
        (Fault(status=200, body="[" + "0," * (25 * 2**20) + "0]"), "larger than 32 MiB"),
        (Fault(trickle=0.5, body=None), "not complete within 2 s"),
    ],
    ids=["login-page", "null-result", "truncated-json", "50MB-body", "never-finishes"],
)
def test_servicenow_garbage_changes_nothing(
    servicenow, write_config, run_fd_sync, database, fault, message
):
    config = str(write_config(servicenow={"timeout_seconds": 2, "max_attempts": 2}))
    open_incident(servicenow)
    assert run_fd_sync("--config", config, "once").code == 0
    open_incident(servicenow)  # a change that the failed run must not half-record
    before = snapshot(database)
    fault.path = TABLE
    fault.times = 2
    servicenow.inject(fault)
    result = run_fd_sync("--config", config, "once")
    assert result.code == 75, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fd-sync: ServiceNow {servicenow.url}: ")
    assert message in last
    after = snapshot(database)
    assert after[0] == before[0] and after[1] == before[1] and after[3] == before[3]
    assert dict(after[2])["watermark"] == dict(before[2])["watermark"]
    servicenow.clear_faults()
    assert run_fd_sync("--config", config, "once").code == 0  # and the next run catches up


def test_flashduty_key_rejected_is_dead_and_status_says_so(
    servicenow, flashduty, write_config, run_fd_sync
):
    bad = flashduty.url + "/event/push/alert/standard?integration_key=revoked-key-123"
    config = str(write_config(flashduty={"push_url": bad}))
    run_fd_sync("--config", config, "once")
    open_incident(servicenow)
    assert run_fd_sync("--config", config, "once").code == 76
    assert len(flashduty.requests) == 1  # dead at once, not retried forever
    status = run_fd_sync("--config", config, "status")
    assert "Flashduty rejected the integration key" in status.stdout
    assert "revoked-key-123" not in status.output


def test_an_sso_redirect_is_named_not_followed(servicenow, flashduty, write_config, run_fd_sync):
    """An instance behind single sign-on answers the API with a 302 to its login page;
    fd-sync said nothing about SSO (issue 23, item 13). It does not follow it, and says."""
    config = str(write_config())
    login = {"Location": "https://sso.example.com/adfs/ls/?SAMLRequest=x"}
    servicenow.inject(status=302, headers=login, body="", path="/api/now/table/", times=10)
    result = run_fd_sync("--config", config, "once")
    assert result.code == 77, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert "single sign-on (SSO)" in last and "redirected to sso.example.com" in last
    assert "SAMLRequest" not in result.output
