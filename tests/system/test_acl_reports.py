"""What the commands say when the integration user may not read a table fd-sync needs."""

from __future__ import annotations

import json

from fd_sync.errors import EX_NOPERM, EX_OK
from tests.helpers.simulated import open_incident
from tests.integration.test_deletions import INTERVAL, cycle_after
from tests.integration.test_payload_extras import ROUTE, people


def test_a_missing_read_acl_on_sys_user_names_the_table(
    servicenow, flashduty, write_config, run_fd_sync
):
    people(servicenow)
    config = write_config("servicenow", route=[ROUTE])
    assert run_fd_sync("--config", str(config), "once").code == EX_OK
    open_incident(servicenow, assignment_group=servicenow.add_group("Network"))
    servicenow.inject(status=403, path="/api/now/table/sys_user", body='{"error": {}}', times=5)
    result = run_fd_sync("--config", str(config), "once")
    assert result.code == EX_NOPERM
    assert "read access to table 'sys_user'" in result.stderr
    assert "Traceback" not in result.output


def test_without_audit_access_missing_incidents_are_reported(
    servicenow, flashduty, harness, write_config, run_fd_sync
):
    servicenow.deny_tables.add("sys_audit_delete")
    h = harness()
    h.cycle()
    kept = open_incident(servicenow)
    gone = open_incident(servicenow)
    h.cycle()
    servicenow.delete(gone["sys_id"])
    report = cycle_after(h, servicenow, INTERVAL)
    assert report.exit_code == 0  # a missing permission is reported, not a failed cycle
    assert flashduty.open_keys() == {kept["sys_id"], gone["sys_id"]}  # not resolved: unknown
    missing = json.loads(h.ledger.state.get("missing_incidents"))
    assert missing == [{"sys_id": gone["sys_id"], "number": gone["number"]}]
    status = run_fd_sync("--config", str(write_config()), "status")
    assert f"(deleted, or hidden by an ACL): {gone['number']}" in status.stdout
    assert "grant read on sys_audit_delete" in status.stdout
