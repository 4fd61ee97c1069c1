"""Edges of time and scale: one second shared by 5000 rows, a backfill over 100k rows."""

from __future__ import annotations

from fd_sync.core.watermark import CLOCK_MARGIN, format_sn_time
from fd_sync.errors import EX_OK
from fd_sync.store.state import WATERMARK


def test_five_thousand_rows_in_one_second(servicenow, flashduty, harness):
    h = harness(servicenow={"page_size": 500})
    h.cycle()
    servicenow.clock.advance(1)
    stamp = servicenow.clock.text()
    rows = [
        servicenow.create(updated_on=stamp, state="1" if i % 50 == 0 else "6") for i in range(5000)
    ]
    servicenow.clock.advance(30)
    report = h.cycle()
    assert report.exit_code == EX_OK
    # Every row read; only the 100 open ones decide something (the 4,900 closed ones, never
    # alerted, leave no ledger row).
    assert report.fetched == 5000 and report.changed == 100 and report.pages == 10
    assert h.ledger.summary().incidents_tracked == 100
    expected = {r["sys_id"] for r in rows if r["state"] == "1"}
    assert flashduty.open_keys() == expected and len(expected) == 100
    assert h.ledger.state.get(WATERMARK) == stamp
    assert h.cycle().changed == 0  # the look-back re-read decides nothing twice


def test_backfill_from_far_in_the_past_over_100k_rows(servicenow, flashduty, harness):
    """Years of history: the watermark walks to the newest row and stops at ServiceNow's
    clock; only the open incidents page, each once."""
    h = harness(servicenow={"page_size": 1000})
    stamp = servicenow.clock.now()
    open_ids = set()
    for i in range(100_000):
        moment = format_sn_time(
            stamp.replace(year=2020) + (stamp - stamp.replace(year=2020)) * i / 100_000
        )
        row = servicenow.create(updated_on=moment, state="2" if i % 1000 == 0 else "7")
        if row["state"] == "2":
            open_ids.add(row["sys_id"])
    report = h.cycle(since=stamp.replace(year=2019))
    assert report.exit_code == EX_OK, report.summary()
    assert report.fetched == 100_000 and report.pages == 100
    assert flashduty.open_keys() == open_ids
    assert flashduty.duplicates() == 0
    newest = max(r["sys_updated_on"] for r in servicenow.incidents())
    assert h.ledger.state.get(WATERMARK) == min(
        newest, format_sn_time(servicenow.clock.now() - CLOCK_MARGIN)
    )
