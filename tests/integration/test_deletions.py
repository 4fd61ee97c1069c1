"""Incidents deleted in ServiceNow: resolved via sys_audit_delete, or reported as unknown."""

from __future__ import annotations

import pytest

from tests.helpers.simulated import change, open_incident

pytestmark = pytest.mark.backends("sqlite", "postgres")  # every test on both engines

INTERVAL = 600


def cycle_after(h, servicenow, seconds):
    servicenow.clock.advance(seconds)
    return h.cycle()


def test_a_deleted_incident_gets_its_alert_resolved(servicenow, flashduty, harness, push_format):
    h = harness(push_format)
    h.cycle()  # install: the deletion check starts now
    kept = open_incident(servicenow)
    doomed = open_incident(servicenow)
    never_alerted = servicenow.create(state="7")
    h.cycle()
    assert flashduty.open_keys() == {kept["sys_id"], doomed["sys_id"]}
    servicenow.delete(doomed["sys_id"])
    servicenow.delete(never_alerted["sys_id"])
    cycle_after(h, servicenow, 60)
    assert doomed["sys_id"] in flashduty.open_keys()  # not due yet: checked every 600 s
    report = cycle_after(h, servicenow, INTERVAL)
    assert report.events["resolve"] == 1
    assert flashduty.open_keys() == {kept["sys_id"]}
    assert flashduty.history()[doomed["sys_id"]] == ["create", "resolve"]
    if push_format == "servicenow":
        assert flashduty.events()[-1].body["state"] == "Closed"
    assert cycle_after(h, servicenow, INTERVAL).events["resolve"] == 0  # once only


def test_the_check_costs_nothing_between_intervals(servicenow, harness):
    h = harness()
    h.cycle()
    open_incident(servicenow)  # an open alert: the check has something to look for
    h.cycle()
    assert servicenow.requests_to("/api/now/table/sys_audit_delete") == []
    cycle_after(h, servicenow, INTERVAL)
    assert len(servicenow.requests_to("/api/now/table/sys_audit_delete")) == 1


def test_with_no_alert_open_the_check_costs_no_request(servicenow, harness):
    """Issue 24: only an open alert can need a resolve, so with none the check moves its
    watermark without asking (an idle instance's hour is its polls alone)."""
    h = harness()
    h.cycle()
    h.cycle()
    cycle_after(h, servicenow, INTERVAL)
    assert servicenow.requests_to("/api/now/table/sys_audit_delete") == []
    inc = open_incident(servicenow)
    h.cycle()
    servicenow.delete(inc["sys_id"])
    cycle_after(h, servicenow, INTERVAL)
    assert len(servicenow.requests_to("/api/now/table/sys_audit_delete")) == 1


def test_a_deletion_before_the_alert_was_sent_cancels_it(servicenow, flashduty, harness):
    h = harness()
    h.cycle()
    inc = open_incident(servicenow)
    flashduty.inject(status=503, path="/event/push/", times=3)
    h.cycle()  # the create was tried and failed: Flashduty may not have it
    servicenow.delete(inc["sys_id"])
    flashduty.clear_faults()
    cycle_after(h, servicenow, INTERVAL)
    assert flashduty.history()[inc["sys_id"]] == ["create", "resolve"]
    assert flashduty.open_keys() == set()


def test_deleting_an_already_resolved_incident_sends_nothing(servicenow, flashduty, harness):
    """A deletion record for an incident whose alert is already closed changes nothing."""
    h = harness()
    h.cycle()
    inc = open_incident(servicenow)
    h.cycle()
    change(servicenow, inc["sys_id"], state="6")
    h.cycle()
    servicenow.delete(inc["sys_id"])
    assert cycle_after(h, servicenow, INTERVAL).events["resolve"] == 0
    assert flashduty.history()[inc["sys_id"]] == ["create", "resolve"]
