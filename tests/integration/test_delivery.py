"""The outbox drain: order per incident, dead events, outages, cancelled pages."""

from __future__ import annotations

import json

import pytest

from fd_sync.errors import EX_OK, EX_PROTOCOL, EX_TEMPFAIL
from tests.helpers.simulated import change, open_incident

pytestmark = pytest.mark.backends("sqlite", "postgres")  # every test on both engines

PUSH = "/event/push/"


def test_events_of_one_incident_leave_in_order(servicenow, flashduty, harness):
    h = harness()
    h.cycle()
    inc = open_incident(servicenow)
    h.cycle()
    flashduty.inject(status=503, path=PUSH, times=10)  # Flashduty down: nothing leaves
    change(servicenow, inc["sys_id"], short_description="worse")
    h.cycle()
    change(servicenow, inc["sys_id"], state="6")
    report = h.cycle()
    assert report.exit_code == EX_TEMPFAIL
    assert report.pending == 2
    flashduty.clear_faults()
    assert h.cycle().exit_code == EX_OK
    assert flashduty.history()[inc["sys_id"]] == ["create", "update", "resolve"]


def test_a_dead_event_holds_its_incident_but_not_others(servicenow, flashduty, harness):
    h = harness()
    h.cycle()
    a = open_incident(servicenow)
    b = open_incident(servicenow)
    # Flashduty refuses a's create for good (e.g. a body it will not take).
    flashduty.inject(
        status=400,
        path=PUSH,
        times=1,
        body=json.dumps(
            {
                "request_id": "rid-dead",
                "error": {"code": "InvalidParameter", "message": "labels too long"},
            }
        ),
    )
    report = h.cycle()
    assert report.exit_code == EX_PROTOCOL
    assert flashduty.open_keys() == {b["sys_id"]}
    change(servicenow, a["sys_id"], state="6")
    change(servicenow, b["sys_id"], state="6")
    report = h.cycle()
    assert report.exit_code == EX_PROTOCOL  # a's resolve waits behind its dead create
    assert flashduty.history()[b["sys_id"]] == ["create", "resolve"]
    assert a["sys_id"] not in flashduty.history()
    summary = h.ledger.summary().outbox
    assert summary.dead == 1 and summary.blocked == 1
    dead = h.ledger.outbox.items(status="dead")[0]
    assert dead.http_status == 400 and dead.error_code == "InvalidParameter"
    assert dead.request_id == "rid-dead"
    assert "labels too long" in dead.error_message


def test_an_outage_stops_the_drain_and_the_next_run_finishes(servicenow, flashduty, harness):
    h = harness()
    h.cycle()
    rows = [open_incident(servicenow) for _ in range(5)]
    flashduty.inject(status=502, path=PUSH, times=3)  # max_attempts is 3: the first gives up
    report = h.cycle()
    assert report.exit_code == EX_TEMPFAIL
    assert report.delivery.down == {"default": "HTTP 502: an HTML error page"}
    assert len(flashduty.requests) == 3  # it stopped: no attempts for the other four
    assert report.pending == 5
    report = h.cycle()
    assert report.exit_code == EX_OK
    assert flashduty.open_keys() == {r["sys_id"] for r in rows}


def test_resolved_before_its_create_was_sent_pages_nobody(servicenow, flashduty, harness):
    h = harness()
    h.cycle()
    inc = open_incident(servicenow)
    other = open_incident(servicenow)
    flashduty.inject(drop=True, path=PUSH, times=1)  # Flashduty unreachable ...
    flashduty.inject(status=503, path=PUSH, times=2)  # ... for the whole first attempt
    h.cycle()
    # The first create was tried; the second was never attempted.
    change(servicenow, other["sys_id"], state="6")
    flashduty.clear_faults()
    report = h.cycle()
    assert report.events["cancelled"] == 1
    assert other["sys_id"] not in flashduty.history()
    assert flashduty.history()[inc["sys_id"]] == ["create"]


def test_a_tried_create_is_followed_by_its_resolve(servicenow, flashduty, harness):
    """A create that may have reached Flashduty cannot be cancelled: resolve it in order."""
    h = harness()
    h.cycle()
    inc = open_incident(servicenow)
    flashduty.inject(status=503, path=PUSH, times=3)  # tried three times: maybe accepted
    h.cycle()
    change(servicenow, inc["sys_id"], state="6")
    report = h.cycle()
    assert report.events["cancelled"] == 0
    assert flashduty.history()[inc["sys_id"]] == ["create", "resolve"]
    assert flashduty.open_keys() == set()


def test_2xx_with_an_error_object_is_dead_not_delivered(servicenow, flashduty, harness):
    h = harness()
    h.cycle()
    open_incident(servicenow)
    flashduty.inject(
        status=200,
        path=PUSH,
        body=json.dumps(
            {"request_id": "r2", "error": {"code": "InvalidParameter", "message": "no"}}
        ),
    )
    report = h.cycle()
    assert report.exit_code == EX_PROTOCOL
    assert h.ledger.summary().outbox.dead == 1


def test_wrong_push_url_is_dead_not_retried_forever(servicenow, flashduty, harness):
    h = harness(
        flashduty={
            "push_url": flashduty.url + "/event/push/alert/standard?integration_key=wrong-key"
        }
    )
    h.cycle()
    open_incident(servicenow)
    report = h.cycle()
    assert report.exit_code == EX_PROTOCOL
    assert len(flashduty.requests) == 1
    dead = h.ledger.outbox.items(status="dead")[0]
    # standard alert.mdx: a wrong key is answered 400 InvalidParameter, not 401.
    assert dead.http_status == 400 and dead.error_code == "InvalidParameter"
    assert dead.error_message and "integration_key is not a valid one" in dead.error_message
