"""The write-back's pure rules: timeline cursor, echo filters, work notes, state changes.

Feed shapes follow api-reference/on-call.openapi.en.json (IncidentFeedItem: created_at in
milliseconds; FeedDetailIncidentResolve.from: voice, console, card, wcard, event, autorslv...).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fd_sync.core.feed import FeedCursor, FeedEntry, FlashdutyIncident, Person, needs_read
from fd_sync.core.writeback import (
    Close,
    Intents,
    ServiceNowNow,
    StateRules,
    compose,
    describe_write,
    is_own,
    render_close_notes,
    state_fields,
)

ALL = frozenset({"ack", "unack", "assign", "comment", "resolve", "reopen", "notify"})
ANN, BOB = 11, 12
PEOPLE = {ANN: Person("Ann Lee", "ann@example.com"), BOB: Person("Bob Ray", "")}
T = 1_796_105_600_000  # 2026-12-01 06:13:20 UTC, in ms


def incident(**kw) -> FlashdutyIncident:
    fields = {"incident_id": "i" * 24, "progress": "Processing", "updated_at": T // 1000}
    fields.update(kw)
    return FlashdutyIncident(**fields)


entries = st.lists(
    st.builds(
        FeedEntry,
        type=st.sampled_from(["i_ack", "i_comm", "i_notify"]),
        creator_id=st.sampled_from([0, ANN, BOB]),
        created_at=st.integers(T, T + 3),  # many in the same millisecond
        detail=st.fixed_dictionaries({"comment": st.text(max_size=3)}),
    ),
    max_size=12,
    unique_by=lambda e: e.digest,
)


@given(entries, st.lists(st.integers(0, 12), max_size=4))
def test_every_entry_is_handed_on_exactly_once_however_the_reads_fall(feed, cuts):
    """Reads see a growing prefix of the timeline (oldest first); each entry once."""
    ordered = sorted(feed, key=lambda e: e.created_at)
    cursor, seen = FeedCursor(), []
    for cut in [*sorted(cuts), len(ordered)]:
        fresh = cursor.new(ordered[:cut])
        seen.extend(fresh)
        cursor = cursor.past(fresh)
        cursor = FeedCursor.from_json(cursor.to_json())  # as the ledger stores it
    assert sorted(e.digest for e in seen) == sorted(e.digest for e in ordered)


def test_a_read_soon_after_a_change_is_repeated_once_then_settles():
    changed = incident(updated_at=100)
    assert needs_read(changed, seen_updated_at=99, read_at=100)  # it changed
    assert needs_read(changed, seen_updated_at=100, read_at=100)  # same second: once more
    assert not needs_read(changed, seen_updated_at=100, read_at=102)  # settled


def test_fd_syncs_own_entries_are_never_written_back():
    assert is_own(FeedEntry("i_new", 0, T))
    assert is_own(FeedEntry("i_assign", 0, T, {"layer_idx": 0, "type": "escalate"}))
    assert is_own(FeedEntry("i_rslv", 0, T, {"from": "event"}))
    assert not is_own(FeedEntry("i_assign", 0, T, {"layer_idx": 1, "type": "escalate"}))
    assert not is_own(FeedEntry("i_rslv", BOB, T, {"from": "console"}))
    assert not is_own(FeedEntry("i_rslv", 0, T, {"from": "autorslv"}))


def test_the_work_note_names_people_and_times_and_the_incident():
    feed = [
        FeedEntry("i_new", 0, T),
        FeedEntry("i_ack", ANN, T + 1000),
        FeedEntry("i_comm", BOB, T + 2000, {"comment": "checking the core router"}),
        FeedEntry("i_rslv", BOB, T + 3000, {"from": "console"}),
    ]
    turn = compose(
        feed,
        incident(progress="Closed", resolution="rebooted", url="https://fd/i/1"),
        PEOPLE,
        work_notes=ALL,
    )
    assert turn.lines == (
        "[Flashduty] Acknowledged by Ann Lee (ann@example.com) (2026-12-01 06:13:21 UTC)",
        "[Flashduty] Comment by Bob Ray: checking the core router (2026-12-01 06:13:22 UTC)",
        "[Flashduty] Resolved by Bob Ray: rebooted (2026-12-01 06:13:23 UTC)",
        "[Flashduty] Incident: https://fd/i/1",
    )
    assert turn.kinds == ("ack", "comment", "resolve")
    assert turn.closed and turn.intents.close is not None
    assert turn.intents.close.by_responder and turn.intents.ack_at_ms == T + 1000


def test_an_earlier_resolve_does_not_borrow_the_present_resolution():
    feed = [
        FeedEntry("i_rslv", BOB, T, {"from": "console"}),
        FeedEntry("i_reopen", ANN, T + 1, {"reason": "back"}),
        FeedEntry("i_rslv", BOB, T + 2, {"from": "console"}),
    ]
    turn = compose(feed, incident(progress="Closed", resolution="second"), PEOPLE, work_notes=ALL)
    assert [line.split(" (")[0] for line in turn.lines] == [
        "[Flashduty] Resolved by Bob Ray",
        "[Flashduty] Reopened by Ann Lee",
        "[Flashduty] Resolved by Bob Ray: second",
    ]


def test_a_reopen_after_a_close_leaves_no_close_to_act_on():
    feed = [FeedEntry("i_rslv", BOB, T, {"from": "card"}), FeedEntry("i_reopen", ANN, T + 1)]
    turn = compose(feed, incident(progress="Triggered"), PEOPLE, work_notes=frozenset())
    assert turn.note == "" and turn.reopened and not turn.closed
    assert turn.intents.close is None


RULES = StateRules("2", "6", "Solution provided", "Resolved in Flashduty by {closer}. {resolution}")
CLOSE = Close(T, "console", "Bob Ray", "rebooted", "https://fd/i/1")


def now(state: str = "1", updated_on: str = "2026-12-01 06:00:00", mod: int = 3) -> ServiceNowNow:
    return ServiceNowNow("INC0010001", state, updated_on, mod)


def test_an_ack_moves_only_a_new_incident_and_not_over_a_later_persons_change():
    ack = Intents(ack_at_ms=T)
    assert state_fields(ack, now("1"), RULES, own_mod_count=None)[0] == {"state": "2"}
    assert state_fields(ack, now("3"), RULES, own_mod_count=None)[0] == {}  # On Hold
    later = now("1", updated_on="2026-12-01 07:00:00")
    assert state_fields(ack, later, RULES, own_mod_count=None)[0] == {}
    # fd-sync's own earlier write is no person's change.
    assert state_fields(ack, later, RULES, own_mod_count=3)[0] == {"state": "2"}


def test_a_responders_close_resolves_with_the_close_fields_and_only_forward():
    close = Intents(close=CLOSE)
    fields, why = state_fields(close, now("2"), RULES, own_mod_count=None)
    assert fields == {
        "state": "6",
        "close_code": "Solution provided",
        "close_notes": "Resolved in Flashduty by Bob Ray. rebooted",
    }
    assert why == "state 6"
    assert state_fields(close, now("7"), RULES, own_mod_count=None)[0] == {}  # closed already
    auto = Intents(close=Close(T, "autorslv", "Flashduty", "", ""))
    assert state_fields(auto, now("2"), RULES, own_mod_count=None)[0] == {}
    assert state_fields(close, now("2"), StateRules(), own_mod_count=None)[0] == {}


def test_close_notes_render_every_documented_field():
    text = render_close_notes("{number}: {closer} ({url}) {resolution}", CLOSE, "INC1")
    assert text == "INC1: Bob Ray (https://fd/i/1) rebooted"


def test_the_dry_run_line_names_the_kinds_the_people_and_the_state():
    assert (
        describe_write("INC0010001", ("ack",), ("Ann Lee",), {"state": "2"})
        == "INC0010001 write-back: work note (ack by Ann Lee); state 2"
    )
