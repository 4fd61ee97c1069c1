"""Whole cycles in-process against the simulators: fetch, reconcile, watermark, ledger."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from fd_sync.core.watermark import CLOCK_MARGIN, format_sn_time
from fd_sync.errors import EX_OK, EX_TEMPFAIL
from fd_sync.store.ledger import Ledger
from fd_sync.store.state import BASELINE_UNTIL, SCAN_FROM, WATERMARK
from tests.helpers.simulated import START, change, open_incident

pytestmark = pytest.mark.backends("sqlite", "postgres")  # every test on both engines


def kinds(flashduty):
    return [(e.key, e.kind) for e in flashduty.events()]


def test_first_run_records_the_present_without_paging(servicenow, flashduty, harness):
    before = [open_incident(servicenow) for _ in range(3)]
    h = harness()
    report = h.cycle()
    assert report.exit_code == EX_OK
    assert flashduty.events() == []
    assert h.ledger.state.get(BASELINE_UNTIL) == before[-1]["sys_updated_on"]
    # The watermark stays a margin behind ServiceNow's clock, which is at the newest row.
    assert h.ledger.state.get(WATERMARK) == format_sn_time(servicenow.clock.now() - CLOCK_MARGIN)
    # A change after installation pages, including on an incident seen at install.
    change(servicenow, before[0]["sys_id"], short_description="now much worse")
    new = open_incident(servicenow)
    h.cycle()
    assert sorted(kinds(flashduty)) == sorted(
        [(before[0]["sys_id"], "create"), (new["sys_id"], "create")]
    )


def test_first_run_on_an_empty_table_starts_at_servicenows_clock(servicenow, flashduty, harness):
    h = harness()
    h.cycle()
    assert h.ledger.state.get(WATERMARK) == format_sn_time(servicenow.clock.now() - CLOCK_MARGIN)
    assert h.ledger.state.get(BASELINE_UNTIL) is None
    first = servicenow.create()  # in the very same second as the install
    h.cycle()
    assert flashduty.open_keys() == {first["sys_id"]}


def test_backfill_pushes_what_is_open(servicenow, flashduty, harness, push_format):
    a = open_incident(servicenow)
    b = open_incident(servicenow)
    change(servicenow, b["sys_id"], state="6")
    servicenow.create(updated_on=format_sn_time(START - timedelta(days=3)))  # before --since
    h = harness(push_format)
    report = h.cycle(since=START - timedelta(hours=1))
    assert report.exit_code == EX_OK
    assert kinds(flashduty) == [(a["sys_id"], "create")]
    assert flashduty.events()[0].fmt == push_format
    assert h.ledger.state.get(SCAN_FROM) is None


def test_lifecycle_create_update_resolve_reopen(servicenow, flashduty, harness, push_format):
    h = harness(push_format)
    h.cycle()
    inc = open_incident(servicenow)
    h.cycle()
    change(servicenow, inc["sys_id"], work_notes="looked at it")  # not shown in Flashduty
    h.cycle()
    change(servicenow, inc["sys_id"], state="2", short_description="worse")
    h.cycle()
    change(servicenow, inc["sys_id"], state="6")
    h.cycle()
    change(servicenow, inc["sys_id"], state="2")
    h.cycle()
    h.cycle()  # nothing changed: nothing sent
    assert flashduty.history()[inc["sys_id"]] == ["create", "update", "resolve", "create"]
    assert flashduty.open_keys() == {inc["sys_id"]}


@pytest.mark.parametrize(("lookback", "found"), [(300, True), (0, False)])
def test_late_visible_rows_are_caught_by_the_lookback(
    servicenow, flashduty, harness, lookback, found
):
    h = harness(sync={"lookback_seconds": lookback})
    h.cycle()
    late = open_incident(servicenow)
    servicenow.hide(late["sys_id"])  # committed by a long transaction, not visible yet
    visible = open_incident(servicenow)
    servicenow.clock.advance(30)
    h.cycle()
    assert h.ledger.state.get(WATERMARK) == visible["sys_updated_on"]
    servicenow.reveal(late["sys_id"])  # its timestamp is older than the watermark now
    servicenow.clock.advance(30)
    h.cycle()
    assert (late["sys_id"] in flashduty.open_keys()) is found
    assert visible["sys_id"] in flashduty.open_keys()


def test_a_future_dated_row_does_not_blind_the_poller(servicenow, flashduty, harness):
    h = harness()
    h.cycle()
    servicenow.create(
        updated_on=format_sn_time(servicenow.clock.now() + timedelta(days=2)),
        short_description="clock skew",
    )
    h.cycle()
    watermark = h.ledger.state.get(WATERMARK)
    assert watermark <= format_sn_time(servicenow.clock.now() - CLOCK_MARGIN)
    later = open_incident(servicenow)
    h.cycle()
    assert later["sys_id"] in flashduty.open_keys()


def test_same_second_burst_across_pages_is_seen_once_each(servicenow, flashduty, harness):
    h = harness(servicenow={"page_size": 7})
    h.cycle()
    servicenow.clock.advance(1)
    stamp = servicenow.clock.text()
    burst = {servicenow.create(updated_on=stamp)["sys_id"] for _ in range(40)}
    h.cycle()
    h.cycle()
    assert flashduty.history() == {sys_id: ["create"] for sys_id in burst}


def test_a_failure_mid_scan_keeps_the_committed_pages(servicenow, flashduty, harness):
    h = harness(servicenow={"page_size": 5, "max_attempts": 2})
    h.cycle()
    rows = [open_incident(servicenow) for _ in range(12)]
    # Page 1 answers; the request for page 2 fails twice (retries exhausted).
    table = "/api/now/table/incident"
    before = len(servicenow.requests_to(table))
    servicenow.inject(status=503, path=table, after=1, times=2)
    h_report = h.cycle()
    assert h_report.exit_code == EX_TEMPFAIL
    assert h_report.pages == 1
    assert len(servicenow.requests_to(table)) - before == 3
    assert h.ledger.state.get(WATERMARK) == rows[4]["sys_updated_on"]
    assert [k for k, _ in kinds(flashduty)] == [r["sys_id"] for r in rows[:5]]
    report = h.cycle()
    assert report.exit_code == EX_OK
    assert flashduty.history() == {r["sys_id"]: ["create"] for r in rows}


def test_bad_rows_are_quarantined_and_the_page_goes_on(servicenow, flashduty, harness):
    h = harness()
    h.cycle()
    good = open_incident(servicenow)
    open_incident(servicenow)
    rows = [
        {
            "sys_id": good["sys_id"],
            "sys_updated_on": good["sys_updated_on"],
            "state": "1",
            "number": "INC1",
        },
        {"sys_id": None, "number": 5},
        {"sys_id": "abc", "sys_updated_on": "yesterday"},
    ]
    servicenow.inject(status=200, body=json.dumps({"result": rows}), path="/api/now/table/")
    report = h.cycle()
    assert report.quarantined == 2
    assert good["sys_id"] in flashduty.open_keys()
    assert h.ledger.summary().quarantined == 2


def test_dry_run_changes_nothing(servicenow, flashduty, harness, database):
    h = harness()
    h.cycle()
    inc = open_incident(servicenow, urgency="1")
    ledger_before = h.ledger.summary()
    dry = Ledger(database, readonly=True)
    from fd_sync import wiring

    report = wiring.cycle(h.config, dry).run(dry_run=True)
    dry.close()
    assert [p.line() for p in report.planned] == [f"{inc['number']} create Critical"]
    assert flashduty.events() == []
    after = h.ledger.summary()
    assert after.watermark == ledger_before.watermark
    assert after.incidents_tracked == ledger_before.incidents_tracked


def test_an_idle_cycle_costs_servicenow_one_request(servicenow, flashduty, harness):
    """Issue 24: the look-back page is short, so it ends the scan (the empty page that
    used to close it was the second request); no open alert: the deletion check costs
    nothing; no event to render: the choice labels are not read."""
    h = harness(sync={"deletion_check_seconds": 60})
    for _ in range(30):
        open_incident(servicenow)
    h.cycle()
    for sys_id in list(servicenow.tables["incident"]):
        servicenow.resolve(sys_id)
    h.cycle()
    assert flashduty.open_keys() == set()
    servicenow.clock.advance(3700)  # past the deletion check's interval and the labels' hour
    h.cycle()
    h.cycle()  # the scan reads to the end once every 10 minutes (see the test below)
    costs = []
    for _ in range(5):
        servicenow.clock.advance(10)
        before = len(servicenow.api_times)
        report = h.cycle()
        assert report.changed == 0 and report.exit_code == 0
        costs.append((len(servicenow.api_times) - before, report.servicenow_requests))
    assert costs == [(1, 1)] * 5


def test_rows_an_acl_hid_ahead_of_a_short_page_are_read_within_ten_minutes(servicenow, harness):
    """ServiceNow applies the limit before ACLs: hidden rows at the head of the look-back
    window make its page short with readable rows after it. A short page ends a cycle's
    scan, but one scan every 10 minutes reads on to the empty page and finds them."""
    h = harness(servicenow={"page_size": 5})
    h.cycle()
    hidden = [open_incident(servicenow) for _ in range(4)]
    servicenow.acl_hidden.update(inc["sys_id"] for inc in hidden)
    h.cycle()  # reads to the end: nothing visible yet
    servicenow.clock.advance(5)
    later = [open_incident(servicenow) for _ in range(3)]  # behind the 4 hidden rows
    for _ in range(3):
        h.cycle()  # a page of 4 hidden rows and 1 readable: short, so the scan ends there
    assert len(h.ledger.incidents.snapshots(i["sys_id"] for i in later)) == 1
    servicenow.clock.advance(601)
    h.cycle()
    h.cycle()  # ServiceNow's clock as the last cycle saw it is 10 minutes on: to the end
    found = h.ledger.incidents.snapshots(i["sys_id"] for i in later)
    assert set(found) == {i["sys_id"] for i in later}


@pytest.mark.parametrize("state", ["7", "8"])
def test_closed_and_canceled_resolve(servicenow, flashduty, harness, state):
    h = harness("servicenow")
    h.cycle()
    inc = open_incident(servicenow)
    h.cycle()
    change(servicenow, inc["sys_id"], state=state)
    h.cycle()
    last = flashduty.events()[-1].body
    assert last["action_type"] == "rule_update"
    assert last["state"] == {"7": "Closed", "8": "Canceled"}[state]
    assert flashduty.open_keys() == set()
