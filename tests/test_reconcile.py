"""The pure decision core: one table test per branch, and properties over random histories."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fd_sync.incident import Incident
from fd_sync.reconcile import Kind, LedgerEntry, decide, reconcile

T0 = "2026-11-01 08:00:00"
T1 = "2026-11-01 08:00:01"
T2 = "2026-11-01 08:00:02"


def incident(state: str = "1", updated_on: str = T1, mod_count: int = 1, **kw: str) -> Incident:
    return Incident(
        sys_id="a" * 32,
        number="INC0010001",
        updated_on=updated_on,
        mod_count=mod_count,
        state=state,
        short_description=kw.pop("title", "Disk"),
        **kw,
    )


def entry(
    alert_open: bool,
    *,
    updated_on: str = T0,
    mod_count: int = 0,
    fingerprint: str | None = None,
    reached: bool = True,
) -> LedgerEntry:
    fp = fingerprint if fingerprint is not None else incident().fingerprint()
    return LedgerEntry("a" * 32, updated_on, mod_count, alert_open, fp, reached)


@pytest.mark.parametrize(
    ("case", "inc", "ledger", "expected_event", "expected_open"),
    [
        ("new open incident", incident("1"), None, Kind.CREATE, True),
        ("first seen closed", incident("6"), None, None, False),
        ("reopened after resolve", incident("2", T2, 3), entry(False), Kind.CREATE, True),
        ("open, title changed", incident("2", title="Disk full"), entry(True), Kind.UPDATE, True),
        ("open, state New -> In Progress", incident("2"), entry(True), Kind.UPDATE, True),
        ("open, nothing shown changed", incident("1"), entry(True), None, True),
        ("resolved while alert open", incident("6"), entry(True), Kind.RESOLVE, False),
        ("closed while alert open", incident("7"), entry(True), Kind.RESOLVE, False),
        ("canceled while alert open", incident("8"), entry(True), Kind.RESOLVE, False),
        ("closed again, no alert", incident("7"), entry(False), None, False),
        ("unknown state counts as open", incident("42"), None, Kind.CREATE, True),
    ],
)
def test_decision_table(case, inc, ledger, expected_event, expected_open):
    decision = decide(inc, ledger)
    assert decision is not None, case
    assert decision.event is expected_event, case
    assert decision.entry.alert_open is expected_open, case


def test_not_newer_is_a_no_op():
    # The look-back window re-reads rows: same version, nothing to decide.
    assert decide(incident("6", T0, 0), entry(True, updated_on=T0, mod_count=0)) is None
    # Older than the ledger (a stale replica answer) is a no-op too.
    assert decide(incident("6", T0, 0), entry(True, updated_on=T1, mod_count=1)) is None


def test_newer_mod_count_in_the_same_second_counts():
    inc = incident("6", T0, 2)
    decision = decide(inc, entry(True, updated_on=T0, mod_count=1))
    assert decision is not None and decision.event is Kind.RESOLVE


def test_baseline_rows_are_remembered_without_events():
    decision = decide(incident("1", T0), None, baseline_until=T1)
    assert decision is not None
    assert decision.event is None and decision.entry.alert_open is False
    # A later change to the same incident then opens its alert.
    later = decide(incident("2", T2, 2), decision.entry, baseline_until=T1)
    assert later is not None and later.event is Kind.CREATE


def test_rows_after_the_baseline_produce_events():
    decision = decide(incident("1", T2), None, baseline_until=T1)
    assert decision is not None and decision.event is Kind.CREATE


def test_resolve_before_the_create_was_sent_cancels_instead():
    decision = decide(incident("6"), entry(True, reached=False))
    assert decision is not None
    assert decision.event is None and decision.cancel_pending
    assert decision.entry.alert_open is False


def test_update_keeps_an_unsent_alert_unsent():
    created = decide(incident("1", T1, 1), None)
    assert created is not None and created.entry.alert_reached is False
    updated = decide(incident("1", T2, 2, title="Disk full"), created.entry)
    assert updated is not None and updated.event is Kind.UPDATE
    assert updated.entry.alert_reached is False  # still cancellable as a whole


def test_duplicate_rows_in_one_batch_are_judged_once():
    inc = incident("1")
    decisions = reconcile([inc, inc, inc], {})
    assert [d.event for d in decisions] == [Kind.CREATE]


def test_reconcile_is_pure():
    entries = {"a" * 32: entry(True)}
    before = dict(entries)
    reconcile([incident("6")], entries)
    assert entries == before


# --- properties --------------------------------------------------------------------------

states = st.sampled_from(["1", "2", "3", "6", "7", "8", "99"])
titles = st.sampled_from(["Disk", "Disk full", "Network"])
versions = st.lists(st.tuples(states, titles, st.booleans()), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(versions, st.booleans())
def test_events_alternate_and_final_state_mirrors(history, start_with_baseline):
    """For any history of one incident, the events alternate create/resolve, updates come
    only while open, and the final alert state equals the final ServiceNow state."""
    ledger: LedgerEntry | None = None
    events: list[Kind] = []
    mod = 0
    baseline = "2026-11-01 08:00:00" if start_with_baseline else None
    for second, (state, title, sent) in enumerate(history, start=1):
        mod += 1
        inc = incident(
            state, f"2026-11-01 08:{second // 60:02d}:{second % 60:02d}", mod, title=title
        )
        decision = decide(inc, ledger, baseline_until=baseline)
        if decision is None:
            continue
        if decision.cancel_pending:
            # The queued create (and updates) never left: remove them from the record.
            while events and events[-1] is not Kind.RESOLVE:
                events.pop()
        if decision.event is not None:
            events.append(decision.event)
        ledger = decision.entry
        if sent:  # the outbox delivered everything queued so far
            ledger = replace(ledger, alert_reached=True)
    is_open = False
    for event in events:
        if event is Kind.CREATE:
            assert not is_open
            is_open = True
        elif event is Kind.RESOLVE:
            assert is_open
            is_open = False
        else:
            assert is_open, "update while no alert is open"
    last = incident(history[-1][0])
    assert is_open == last.is_open
    assert ledger is not None and ledger.alert_open == is_open


@settings(max_examples=200, deadline=None)
@given(versions)
def test_rereading_any_version_decides_nothing(history):
    """At-least-once fetching is safe: a second pass over the same rows is a no-op."""
    ledger: LedgerEntry | None = None
    seen = []
    for second, (state, title, _) in enumerate(history, start=1):
        inc = incident(
            state, f"2026-11-01 09:{second // 60:02d}:{second % 60:02d}", second, title=title
        )
        decision = decide(inc, ledger)
        if decision is not None:
            ledger = decision.entry
        seen.append(inc)
    for inc in seen:
        assert decide(inc, ledger) is None
