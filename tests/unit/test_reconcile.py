"""The pure decision core: one table test per branch, and properties over random histories."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fd_sync.core.decide import Kind, LedgerEntry, decide, dispatch, reconcile
from fd_sync.core.incident import Incident

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


# --- routes: moves, skips, pins ----------------------------------------------------------

A, B = "default", "route:network"


def at(where: str | None, *, pinned: bool = False, reached: bool = True, **kw) -> LedgerEntry:
    """A ledger entry whose alert is open at ``where`` (None: no alert open)."""
    base = entry(where is not None, reached=reached, **kw)
    return replace(base, destination=where, pinned=pinned)


def events(decision) -> list[tuple[str, str]]:
    return [(e.kind.value, e.destination) for e in decision.events]


@pytest.mark.parametrize(
    ("case", "inc", "ledger", "target", "expected", "now_at"),
    [
        ("new incident, routed to B", incident("1"), None, B, [("create", B)], B),
        ("new incident, skip route", incident("1"), None, None, [], None),
        ("open at A, still routed to A", incident("2"), at(A), A, [("update", A)], A),
        ("open at A, now routed to B", incident("1"), at(A), B, [("resolve", A), ("create", B)], B),
        ("open at A, now a skip route", incident("1"), at(A), None, [("resolve", A)], None),
        ("skipped, now routed to B", incident("1"), at(None), B, [("create", B)], B),
        ("skipped, still skipped", incident("2"), at(None), None, [], None),
        ("closed, open at B", incident("6"), at(B), A, [("resolve", B)], None),
        ("closed while skipped", incident("7"), at(None), None, [], None),
        ("legacy row: open, no destination", incident("2"), entry(True), A, [("update", A)], A),
        ("legacy row: moved", incident("1"), entry(True), B, [("resolve", A), ("create", B)], B),
    ],
)
def test_route_table(case, inc, ledger, target, expected, now_at):
    decision = decide(inc, ledger, target=target)
    assert decision is not None, case
    assert events(decision) == expected, case
    assert decision.entry.alert_at == now_at, case
    assert decision.cancel_pending is False, case


def test_a_move_before_the_create_was_sent_cancels_and_creates_there():
    decision = decide(incident("1"), at(A, reached=False), target=B)
    assert decision is not None
    assert events(decision) == [("create", B)]
    assert decision.cancel_pending and decision.entry.alert_at == B


def test_a_skip_before_the_create_was_sent_cancels():
    decision = decide(incident("1"), at(A, reached=False), target=None)
    assert decision is not None
    assert events(decision) == [] and decision.cancel_pending
    assert decision.entry.alert_open is False


@pytest.mark.parametrize("target", [A, None, "route:other"])
def test_a_pinned_alert_ignores_routes_until_it_closes(target):
    updated = decide(incident("2"), at(B, pinned=True), target=target)
    assert updated is not None
    assert events(updated) == [("update", B)]
    assert updated.entry.pinned and updated.entry.alert_at == B
    closed = decide(incident("6", T2, 2), updated.entry, target=target)
    assert closed is not None
    assert events(closed) == [("resolve", B)]
    assert not closed.entry.pinned and not closed.entry.alert_open
    # Reopened later: routes apply again.
    reopened = decide(incident("2", "2026-11-01 08:00:03", 3), closed.entry, target=target)
    assert reopened is not None
    assert events(reopened) == ([("create", target)] if target else [])


@pytest.mark.parametrize(
    ("case", "ledger", "expected", "cancel"),
    [
        ("no alert", None, [("create", B)], False),
        ("open at B already", at(B), [("update", B)], False),
        ("open at A", at(A), [("resolve", A), ("create", B)], False),
        ("open at A, never sent", at(A, reached=False), [("create", B)], True),
        ("skipped by a route", at(None), [("create", B)], False),
    ],
)
def test_dispatch_table(case, ledger, expected, cancel):
    decision = dispatch(incident("1"), ledger, B)
    assert events(decision) == expected, case
    assert decision.cancel_pending is cancel, case
    assert decision.entry.pinned and decision.entry.alert_at == B, case


def test_dispatch_resends_a_version_already_handled():
    handled = at(A, updated_on=T1, mod_count=1)
    assert decide(incident("1", T1, 1), handled, target=A) is None
    assert events(dispatch(incident("1", T1, 1), handled, A)) == [("update", A)]


destinations = st.sampled_from([A, B, None])
steps = st.lists(
    st.one_of(
        st.tuples(st.just("change"), states, titles, destinations, st.booleans()),
        st.tuples(st.just("dispatch"), st.sampled_from([A, B]), st.booleans()),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_alternation_holds_per_incident_and_destination(history):
    """For any mix of changes routed to A, B or skip, and dispatches: at each destination
    the events alternate create/resolve with updates only while open; at most one alert is
    open anywhere; and at the end it is open exactly where the incident should be."""
    ledger: LedgerEntry | None = None
    queued: list[tuple[Kind, str]] = []
    sent_upto = 0  # queued[:sent_upto] reached Flashduty
    pinned_to: str | None = None
    for step, item in enumerate(history, start=1):
        stamp = f"2026-11-01 10:{step // 60:02d}:{step % 60:02d}"
        if item[0] == "change":
            _, state, title, target, sent = item
            decision = decide(incident(state, stamp, step, title=title), ledger, target=target)
        else:
            _, target, sent = item
            decision = dispatch(incident("2", stamp, step), ledger, target)
        assert decision is not None
        if decision.cancel_pending:
            # The open alert's untried events, from its create on, never leave.
            first = next(i for i in range(sent_upto, len(queued)) if queued[i][0] is Kind.CREATE)
            del queued[first:]
        queued.extend((e.kind, e.destination) for e in decision.events)
        ledger = decision.entry
        pinned_to = ledger.alert_at if ledger.pinned else None
        if sent:
            sent_upto = len(queued)
            ledger = replace(ledger, alert_reached=True)
    open_at: set[str] = set()
    for kind, where in queued:
        if kind is Kind.CREATE:
            assert where not in open_at and not open_at, f"second alert: {queued}"
            open_at.add(where)
        elif kind is Kind.RESOLVE:
            assert where in open_at, f"resolve where nothing is open: {queued}"
            open_at.discard(where)
        else:
            assert where in open_at, f"update where nothing is open: {queued}"
    assert ledger is not None
    assert open_at == ({ledger.alert_at} if ledger.alert_at else set())
    last = history[-1]
    if last[0] == "change":
        wanted = pinned_to or (last[3] if last[1] not in ("6", "7", "8") else None)
        if last[1] in ("6", "7", "8"):
            wanted = None
        assert ledger.alert_at == wanted
    else:
        assert ledger.alert_at == last[1] and ledger.pinned
