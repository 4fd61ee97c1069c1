"""Two-way sync: what responders do in Flashduty reaches the ServiceNow incident.

Against the simulators of Flashduty's On-call OpenAPI (api-reference/on-call.openapi.en.json:
/alert/list, /incident/list-by-ids, /incident/feed) and ServiceNow's Table API PATCH.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fd_sync import wiring
from fd_sync.core.cadence import SLOWEST_SECONDS
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.http import Fault
from fd_sync.simulators.servicenow import ServiceNowSim
from tests.helpers.cycle import Harness
from tests.helpers.simulated import change, open_incident

pytestmark = pytest.mark.backends("sqlite", "postgres")  # every test on both engines


class Wall:
    """A Unix clock shared by the Flashduty simulator and fd-sync, moved by the test."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class TwoWay:
    h: Harness
    wall: Wall
    sn: ServiceNowSim
    fd: FlashdutySim

    def cycle(self, **kwargs: Any) -> Any:
        self.wall.advance(5)  # a poll interval: earlier reads are settled
        cycle = wiring.cycle(self.h.config, self.h.ledger, sleep=self.h.sleeps, wall=self.wall)
        return cycle.run(**kwargs)

    def notes(self, sys_id: str) -> list[str]:
        return [j["value"] for j in self.sn.journal(sys_id, "work_notes")]


@pytest.fixture
def two_way(
    harness: Callable[..., Harness], servicenow: ServiceNowSim, flashduty: FlashdutySim
) -> Callable[..., TwoWay]:
    def build(
        push_format: str = "standard", sn_keys: dict[str, Any] | None = None, **writeback: Any
    ) -> TwoWay:
        wall = Wall()
        flashduty.wall = wall
        h = harness(
            push_format,
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
            writeback={"enabled": True, **writeback},
            **({"servicenow": sn_keys} if sn_keys else {}),
        )
        t = TwoWay(h, wall, servicenow, flashduty)
        t.cycle()  # the first run records the (empty) baseline
        return t

    return build


def test_an_ack_and_a_comment_become_one_work_note_each_exactly_once(two_way, push_format):
    t = two_way(push_format)
    inc = open_incident(t.sn)
    t.cycle()
    ann = t.fd.add_person("Ann Lee", "ann@example.com")
    incident_id = t.fd.incident_of(inc["sys_id"])
    t.fd.ack(incident_id, ann)
    t.fd.comment(incident_id, ann, "checking the core router")
    report = t.cycle()
    assert report.exit_code == 0, report.message()
    notes = t.notes(inc["sys_id"])
    assert len(notes) == 1
    assert "[Flashduty] Acknowledged by Ann Lee (ann@example.com)" in notes[0]
    assert "[Flashduty] Comment by Ann Lee (ann@example.com): checking the core router" in notes[0]
    for _ in range(3):
        t.cycle()
    assert len(t.notes(inc["sys_id"])) == 1
    # fd-sync's own write moved the version; nothing went back to Flashduty.
    assert [e.kind for e in t.fd.events()] == ["create"]


def test_a_patch_that_times_out_is_not_written_twice(two_way):
    """ServiceNow took the PATCH but answered after the timeout: the note is in the
    journal. Sending it again would write it twice (issue 23, item 1); the retry first
    reads the journal for the note's marker, finds it, and writes nothing more."""
    t = two_way(sn_keys={"timeout_seconds": 1})
    inc, incident_id = alert_for(t)
    t.fd.comment(incident_id, t.fd.add_person("Bob Ray"), "on it")
    t.sn.inject(Fault(slow_answer=2, path="/api/now/table/incident/", method="PATCH"))
    late = t.cycle()
    assert late.exit_code == 75, late.message()  # the answer never came: unknown, for now
    (note,) = t.notes(inc["sys_id"])  # ...but the note landed, once
    assert "Comment by Bob Ray: on it" in note and "[fd-sync w" in note
    again = t.cycle()
    assert again.exit_code == 0, again.message()
    assert t.notes(inc["sys_id"]) == [note]  # found by its marker: not written again
    assert t.h.ledger.writeback.pending() == []
    assert [e.kind for e in t.fd.events()] == ["create"]  # and nothing echoed


def test_a_write_whose_first_attempt_failed_before_it_landed_is_sent_once(two_way):
    """The same check finds no marker when the first attempt never reached ServiceNow:
    then the note is sent, once."""
    t = two_way()
    inc, incident_id = alert_for(t)
    t.fd.comment(incident_id, t.fd.add_person("Bob Ray"), "on it")
    t.sn.inject(Fault(status=503, path="/api/now/table/incident/", method="PATCH"))
    assert t.cycle().exit_code == 75
    assert t.notes(inc["sys_id"]) == []
    assert t.cycle().exit_code == 0
    (note,) = t.notes(inc["sys_id"])
    assert "Comment by Bob Ray: on it" in note


def alert_for(t: TwoWay, **fields: Any) -> tuple[dict[str, str], str]:
    """An open incident whose alert fd-sync sent and whose Flashduty incident it found."""
    inc = open_incident(t.sn, **fields)
    t.cycle()
    return inc, t.fd.incident_of(inc["sys_id"])


def test_an_ack_moves_a_new_incident_to_the_acknowledge_state_without_echo(two_way):
    # The ServiceNow format shows the state: an echo would be an update event.
    t = two_way("servicenow", acknowledge_state="2")
    inc, incident_id = alert_for(t)
    t.fd.ack(incident_id, t.fd.add_person("Ann Lee", "ann@example.com"))
    report = t.cycle()
    assert report.exit_code == 0, report.message()
    assert t.sn.incident(inc["sys_id"])["state"] == "2"
    assert t.sn.incident(inc["sys_id"])["sys_updated_by"] == t.sn.username
    for _ in range(2):
        t.cycle()
    assert [e.kind for e in t.fd.events()] == ["create"]  # fd-sync's own write went nowhere


def test_a_persons_edit_after_the_write_back_is_still_pushed(two_way):
    t = two_way("servicenow", acknowledge_state="2")
    inc, incident_id = alert_for(t)
    t.fd.ack(incident_id, t.fd.add_person("Ann Lee"))
    t.cycle()
    change(t.sn, inc["sys_id"], short_description="Database down, not only slow")
    t.cycle()
    kinds = [e.kind for e in t.fd.events()]
    assert kinds == ["create", "update"]
    assert t.fd.events()[-1].body["short_description"] == "Database down, not only slow"
    assert t.fd.events()[-1].body["state"] == "In Progress"


def test_a_persons_change_between_poll_and_write_is_decided_as_usual(two_way):
    t = two_way("servicenow")
    _, incident_id = alert_for(t)
    t.fd.comment(incident_id, t.fd.add_person("Bob Ray"), "looking")
    # Between the poll and the write-back's PATCH, a person edits the incident.
    original = t.sn._patch

    def edit_first(table: str, sys_id: str, request: Any) -> Any:
        t.sn.update(sys_id, urgency="1", priority="1")
        t.sn._patch = original  # type: ignore[method-assign]
        return original(table, sys_id, request)

    t.sn._patch = edit_first  # type: ignore[method-assign]
    t.cycle()
    t.cycle()
    assert [e.kind for e in t.fd.events()] == ["create", "update"]


def test_an_ack_never_moves_an_incident_that_is_no_longer_new(two_way):
    t = two_way(acknowledge_state="2")
    inc, incident_id = alert_for(t)
    change(t.sn, inc["sys_id"], state="3")  # On Hold, by a person
    t.cycle()
    t.fd.ack(incident_id, t.fd.add_person("Ann Lee"))
    t.cycle()
    assert t.sn.incident(inc["sys_id"])["state"] == "3"
    assert "Acknowledged by Ann Lee" in "\n".join(t.notes(inc["sys_id"]))


def test_a_responders_resolve_is_respected_and_an_edit_does_not_page_again(two_way):
    t = two_way()
    inc, incident_id = alert_for(t)
    bob = t.fd.add_person("Bob Ray", "bob@example.com")
    t.fd.resolve(incident_id, bob, "rebooted the core router")
    t.cycle()
    assert t.sn.incident(inc["sys_id"])["state"] == "1"  # resolve_state is empty
    note = t.notes(inc["sys_id"])[0]
    assert "[Flashduty] Resolved by Bob Ray (bob@example.com): rebooted the core router" in note
    assert t.h.ledger.summary().writeback.held == {inc["sys_id"]: inc["number"]}
    change(t.sn, inc["sys_id"], short_description="still looking into it")
    t.cycle()
    assert [e.kind for e in t.fd.events()] == ["create"]  # no new alert, nobody paged
    change(t.sn, inc["sys_id"], state="6")
    t.cycle()
    assert [e.kind for e in t.fd.events()] == ["create"]  # its alert is closed already
    change(t.sn, inc["sys_id"], state="2")  # reopened in ServiceNow: page again
    t.cycle()
    assert [e.kind for e in t.fd.events()] == ["create", "create"]
    assert t.h.ledger.summary().writeback.held == {}


def test_a_resolve_in_flashduty_resolves_servicenow_with_the_close_fields(two_way):
    t = two_way(resolve_state="6", close_code="Solution provided")
    inc, incident_id = alert_for(t)
    t.fd.resolve(incident_id, t.fd.add_person("Bob Ray"), "rebooted")
    report = t.cycle()
    assert report.exit_code == 0, report.message()
    row = t.sn.incident(inc["sys_id"])
    assert (row["state"], row["close_code"]) == ("6", "Solution provided")
    assert row["close_notes"] == "Resolved in Flashduty by Bob Ray. rebooted"
    t.cycle()
    assert [e.kind for e in t.fd.events()] == ["create"]  # nothing resolved twice
    assert t.h.ledger.summary().writeback.held == {}
    change(t.sn, inc["sys_id"], state="2")  # reopened in ServiceNow: a new alert
    t.cycle()
    assert [e.kind for e in t.fd.events()] == ["create", "create"]


def test_flashdutys_close_of_fd_syncs_own_resolve_is_not_written_back(two_way):
    t = two_way(resolve_state="6", close_code="Solution provided")
    inc, _ = alert_for(t)
    change(t.sn, inc["sys_id"], state="7", close_code="Closed/Resolved by Caller")
    t.cycle()  # fd-sync pushes the resolve; Flashduty closes with from = "event"
    t.cycle()
    t.cycle()
    assert t.notes(inc["sys_id"]) == []
    assert t.sn.incident(inc["sys_id"])["state"] == "7"
    assert [e.kind for e in t.fd.events()] == ["create", "resolve"]


def test_a_reopen_in_flashduty_is_noted_and_the_alert_counts_as_open_again(two_way):
    t = two_way()
    inc, incident_id = alert_for(t)
    bob = t.fd.add_person("Bob Ray")
    t.fd.resolve(incident_id, bob)
    t.cycle()
    t.fd.reopen(incident_id, bob, "it came back")
    t.wall.advance(SLOWEST_SECONDS)  # a closed incident is read at the slowest cadence
    t.cycle()
    assert "[Flashduty] Reopened by Bob Ray: it came back" in "\n".join(t.notes(inc["sys_id"]))
    change(t.sn, inc["sys_id"], state="6")
    t.cycle()
    assert [e.kind for e in t.fd.events()] == ["create", "resolve"]
    assert t.fd.open_keys() == set()


def test_a_data_policy_refusal_keeps_the_notes_and_the_other_direction(two_way):
    t = two_way(resolve_state="6", close_code="Solution provided")
    t.sn.require_on_close("close_code", "close_notes", "u_cause")
    t.sn.add_column("u_cause")
    inc, incident_id = alert_for(t)
    t.fd.resolve(incident_id, t.fd.add_person("Bob Ray"), "rebooted")
    other = open_incident(t.sn)
    report = t.cycle()
    assert report.exit_code == 76
    message = report.message()
    assert inc["number"] in message and "Data Policy Exception" in message
    assert "u_cause" in message
    assert "Resolved by Bob Ray" in "\n".join(t.notes(inc["sys_id"]))  # the notes arrived
    assert t.sn.incident(inc["sys_id"])["state"] == "1"
    assert other["sys_id"] in t.fd.open_keys()  # ServiceNow -> Flashduty went on
    dead = t.h.ledger.writeback.items(status="dead")
    assert [(w.number, w.kinds) for w in dead] == [(inc["number"], ("state",))]
    assert "Data Policy Exception" in (dead[0].error_message or "")
    # Kept until `outbox retry`: not tried every cycle, but never green either (issue 23,
    # item 11): a responder's close never reached ServiceNow.
    later = t.cycle()
    assert later.exit_code == 76 and "refused earlier wait for an operator" in later.message()
    assert len(t.notes(inc["sys_id"])) == 1


def test_notes_behind_a_refused_one_wait_and_a_retry_writes_them_in_order(two_way):
    """outbox retry --all could write an incident's refused note after its later ones
    (issue 23, item 13): later notes wait behind a refused one, then go together."""
    t = two_way()
    inc, incident_id = alert_for(t)
    bob = t.fd.add_person("Bob Ray")
    t.sn.deny_write = True
    t.fd.comment(incident_id, bob, "first")
    assert t.cycle().exit_code == 76  # refused, kept
    t.sn.deny_write = False
    t.fd.comment(incident_id, bob, "second")
    report = t.cycle()
    assert report.exit_code == 76 and report.writeback.held == 1
    assert t.notes(inc["sys_id"]) == []  # "second" waits behind "first"
    assert t.h.ledger.retry(t.h.ledger.writeback, None) == (1, 0)
    assert t.cycle().exit_code == 0
    (note,) = t.notes(inc["sys_id"])
    assert note.index("Comment by Bob Ray: first") < note.index("Comment by Bob Ray: second")


def test_a_refusal_without_a_message_says_so_once(two_way):
    """A 403 with an empty body read "HTTP 403: HTTP 403" (issue 23, item 13)."""
    t = two_way()
    _, incident_id = alert_for(t)
    t.fd.comment(incident_id, t.fd.add_person("Bob Ray"), "on it")
    t.sn.inject(Fault(status=403, body="", path="/api/now/table/incident/", method="PATCH"))
    report = t.cycle()
    assert report.exit_code == 76
    assert "(HTTP 403: ServiceNow gave no message)" in report.message(), report.message()
    assert "HTTP 403: HTTP 403" not in report.message()


def test_a_user_who_may_not_write_gets_76_and_delivery_goes_on(two_way):
    t = two_way()
    inc, incident_id = alert_for(t)
    t.sn.deny_write = True
    t.fd.comment(incident_id, t.fd.add_person("Bob Ray"), "on it")
    other = open_incident(t.sn)
    report = t.cycle()
    assert report.exit_code == 76
    assert inc["number"] in report.message() and "ACL Exception" in report.message()
    assert other["sys_id"] in t.fd.open_keys()
    t.sn.deny_write = False
    assert t.h.ledger.retry(t.h.ledger.writeback, None) == (1, 0)
    t.cycle()
    assert "Comment by Bob Ray: on it" in t.notes(inc["sys_id"])[0]


def test_the_openapi_refusing_the_key_is_77_and_the_cycle_goes_on(two_way, flashduty):
    t = two_way()
    alert_for(t)
    flashduty.app_key = "another-key"
    other = open_incident(t.sn)
    report = t.cycle()
    assert report.exit_code == 77
    assert "app_key" in report.message() and "(request_id " in report.message()
    assert other["sys_id"] in t.fd.open_keys()


def test_an_openapi_outage_holds_updates_for_hold_seconds_then_lets_them_go(two_way):
    """Holding updates for as long as the OpenAPI is down kept an escalation from on-call
    (issue 23, item 4): they wait at most [writeback] hold_seconds after the last read."""
    t = two_way(hold_seconds=10)
    inc, _ = alert_for(t)
    t.cycle()  # its Flashduty incident found and read: the last good read
    t.fd.inject(Fault(status=500, path="/incident/", times=1000))
    change(t.sn, inc["sys_id"], urgency="2")  # an update, queued
    for _ in range(2):  # 5 s, then 10 s after the last read: held
        assert t.cycle().exit_code == 75
        assert [e.kind for e in t.fd.events()] == ["create"]
        hold = t.h.ledger.writeback_hold()
        assert hold is not None and "until" in hold
    t.cycle()  # 15 s: past the hold, the update goes while Flashduty still cannot be read
    assert [e.kind for e in t.fd.events()] == ["create", "update"]
    t.fd.clear_faults()
    assert t.cycle().exit_code == 0
    assert t.h.ledger.writeback_hold() is None  # Flashduty answers again: nothing held


def test_a_change_in_the_same_second_as_the_last_read_is_not_missed(two_way):
    t = two_way()
    inc, incident_id = alert_for(t)
    ann = t.fd.add_person("Ann Lee")
    t.fd.ack(incident_id, ann)
    cycle = wiring.cycle(t.h.config, t.h.ledger, sleep=t.h.sleeps, wall=t.wall)
    cycle.run()  # reads in the very second of the ack
    t.fd.comment(incident_id, ann, "same second")  # updated_at does not move
    t.cycle()
    text = "\n".join(t.notes(inc["sys_id"]))
    assert text.count("Acknowledged by Ann Lee") == 1
    assert text.count("Comment by Ann Lee: same second") == 1


@pytest.mark.parametrize("key", ["number", "hash"])
def test_the_incident_is_found_whatever_alert_key_the_servicenow_format_gets(two_way, key):
    t = two_way("servicenow")
    t.fd.servicenow_alert_key = key
    inc, incident_id = alert_for(t)
    t.fd.ack(incident_id, t.fd.add_person("Ann Lee"))
    t.cycle()
    assert "Acknowledged by Ann Lee" in t.notes(inc["sys_id"])[0]


def test_a_quiet_cycle_with_60_tracked_incidents_costs_one_openapi_request(two_way):
    t = two_way()
    for _ in range(60):
        open_incident(t.sn)
    t.cycle()  # sends the creates
    t.cycle()  # finds their incidents and reads their timelines
    t.cycle()  # settles the reads
    report = t.cycle()
    assert report.writeback.openapi_requests <= 3
    assert report.writeback.openapi_requests == 1  # /incident/list-by-ids, 60 ids
    assert report.writeback.servicenow_requests == 0
    assert t.sn.writes == []


def test_a_dry_run_shows_each_write_and_makes_none(two_way):
    t = two_way(acknowledge_state="2")
    inc, incident_id = alert_for(t)
    t.fd.ack(incident_id, t.fd.add_person("Ann Lee", "ann@example.com"))
    report = t.cycle(dry_run=True)
    assert report.writeback.planned == [
        f"{inc['number']} write-back: work note (ack by Ann Lee); state 2"
    ]
    assert t.sn.writes == []
    t.cycle()
    assert t.sn.incident(inc["sys_id"])["state"] == "2"


def test_work_notes_lists_the_kinds_written(two_way):
    t = two_way(work_notes=["comment"])
    inc, incident_id = alert_for(t)
    ann = t.fd.add_person("Ann Lee")
    t.fd.ack(incident_id, ann)
    t.fd.notify(incident_id, [ann])
    t.fd.comment(incident_id, ann, "only this")
    t.cycle()
    (note,) = t.notes(inc["sys_id"])
    assert "Comment by Ann Lee: only this" in note
    assert "Acknowledged" not in note and "Notified" not in note


def test_status_and_outbox_show_the_write_back(two_way, write_config, run_fd_sync, flashduty):
    t = two_way(resolve_state="6", close_code="Solution provided")
    t.sn.require_on_close("close_code", "close_notes", "u_cause")
    t.sn.add_column("u_cause")
    inc, incident_id = alert_for(t)
    bob = t.fd.add_person("Bob Ray")
    t.fd.resolve(incident_id, bob, "rebooted")
    assert t.cycle().exit_code == 76
    config = write_config(
        flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
        writeback={"enabled": True, "resolve_state": "6", "close_code": "Solution provided"},
    )
    status = run_fd_sync("--config", str(config), "status")
    assert "write-back" in status.stdout
    assert "1 refused" in status.stdout
    (held,) = [row for row in status.stdout.splitlines() if row.startswith("held")]
    assert "1 closed in Flashduty, open in ServiceNow" in held and inc["number"] in held
    listed = run_fd_sync("--config", str(config), "outbox", "list", "--dead")
    (line,) = [row for row in listed.stdout.splitlines() if "write" in row]
    label = line.split()[0]
    assert label.startswith("w") and inc["number"] in line and "Data Policy Exception" in line
    t.sn.data_policy.clear()
    retried = run_fd_sync("--config", str(config), "outbox", "retry", label)
    assert retried.code == 0 and "requeued 1 write-back(s)" in retried.stdout
    assert t.cycle().exit_code == 0
    assert t.sn.incident(inc["sys_id"])["state"] == "6"
    dropped = run_fd_sync("--config", str(config), "outbox", "drop", "w9999")
    assert dropped.code == 64 and "w9999 is unknown" in dropped.output


def test_check_finds_a_user_who_may_not_write_and_a_close_that_needs_more(
    servicenow, flashduty, write_config, run_fd_sync
):
    config = write_config(
        flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
        writeback={"enabled": True, "resolve_state": "6", "close_code": "Solution provided"},
    )
    inc = open_incident(servicenow)
    before = servicenow.incident(inc["sys_id"])
    good = run_fd_sync("--config", str(config), "check")
    assert "may write incidents: an empty PATCH" in good.stdout, good.output
    assert "app_key may read Flashduty incidents" in good.stdout
    assert servicenow.incident(inc["sys_id"]) == before  # the check changed nothing
    servicenow.require_on_close("close_code", "close_notes", "u_cause")
    warned = run_fd_sync("--config", str(config), "check")
    assert "u_cause mandatory" in warned.stdout
    servicenow.deny_write = True
    refused = run_fd_sync("--config", str(config), "check")
    assert refused.code == 77
    assert "does not let 'svc.fdsync' write incidents" in refused.stdout


def test_check_names_a_state_the_instance_does_not_have(
    servicenow, flashduty, write_config, run_fd_sync
):
    """A custom state code passes the file's checks; ``check`` holds it to the instance's
    sys_choice states (issue 23, item 5)."""
    keys = {"app_key": flashduty.app_key, "api_domain": flashduty.url}
    custom = write_config(
        flashduty=keys, writeback={"enabled": True, "acknowledge_state": "2", "resolve_state": "9"}
    )
    open_incident(servicenow)
    unknown = run_fd_sync("--config", str(custom), "check")
    assert unknown.code == 78, unknown.output
    assert "resolve_state '9': not a state of this instance's incidents" in unknown.stdout
    servicenow.set_choice("state", "9", "Closed - Duplicate")
    known = run_fd_sync("--config", str(custom), "check")
    assert "acknowledge_state 2 (In Progress), resolve_state 9 (Closed - Duplicate)" in (
        known.stdout
    ), known.output


def test_adopt_takes_over_alerts_opened_before_fd_sync(
    servicenow, flashduty, write_config, run_fd_sync
):
    import requests

    a = open_incident(servicenow, short_description="opened under fd-servicenow")
    b = open_incident(servicenow, short_description="closed since")
    for inc in (a, b):  # what fd-servicenow pushed, in the ServiceNow format
        body = {
            "action_type": "insert",
            "number": inc["number"],
            "sys_id": inc["sys_id"],
            "state": "New",
            "short_description": inc["short_description"],
        }
        assert requests.post(flashduty.push_url_servicenow, json=body, timeout=5).ok
    stray = {"event_status": "Warning", "title_rule": "not ServiceNow's", "alert_key": "zzz"}
    assert requests.post(flashduty.push_url_standard, json=stray, timeout=5).ok
    change(servicenow, b["sys_id"], state="6")
    config = write_config(
        "servicenow", flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url}
    )
    preview = run_fd_sync("--config", str(config), "adopt", "--dry-run")
    assert f"would adopt {a['number']}" in preview.stdout, preview.output
    assert f"closed in ServiceNow: {b['number']}" in preview.stdout
    assert "not matched: alert_key zzz" in preview.stdout
    adopted = run_fd_sync("--config", str(config), "adopt", "--resolve-closed")
    assert adopted.code == 0 and f"adopted {a['number']}" in adopted.stdout, adopted.output
    assert f"resolving {b['number']}" in adopted.stdout
    before = len(flashduty.events())
    assert run_fd_sync("--config", str(config), "once").code == 0
    change(servicenow, a["sys_id"], state="6")
    assert run_fd_sync("--config", str(config), "once").code == 0
    sent = [(e.key, e.kind) for e in flashduty.events()[before:]]
    assert sent == [(b["sys_id"], "resolve"), (a["sys_id"], "resolve")]
    assert flashduty.open_keys() == {"zzz"}


@pytest.mark.parametrize("older_notes", [False, True], ids=["from-adoption", "notes-since"])
def test_an_adopted_incident_is_written_back_from_the_adoption_on(
    servicenow, flashduty, write_config, run_fd_sync, older_notes
):
    """adopt wrote the whole Flashduty timeline of each adopted incident as new work notes,
    duplicating what the old integration wrote (issue 23, item 3); --notes-since opts in."""
    import requests

    inc = open_incident(servicenow, short_description="opened under fd-servicenow")
    body = {"action_type": "insert", "number": inc["number"], "sys_id": inc["sys_id"]}
    assert requests.post(flashduty.push_url_servicenow, json=body, timeout=5).ok
    bob = flashduty.add_person("Bob Ray")
    incident_id = flashduty.incident_of(inc["sys_id"])
    flashduty.comment(incident_id, bob, "written by the old integration")
    config = write_config(
        "servicenow",
        flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
        writeback={"enabled": True},
    )
    args = ["--notes-since", "2020-01-01"] if older_notes else []
    adopted = run_fd_sync("--config", str(config), "adopt", *args)
    assert adopted.code == 0 and f"adopted {inc['number']}" in adopted.stdout, adopted.output
    assert ("from 2020-01-01" if older_notes else "after the adoption only") in adopted.stdout
    flashduty.comment(incident_id, bob, "after the adoption")
    for _ in range(2):
        assert run_fd_sync("--config", str(config), "once").code == 0
    notes = "\n".join(j["value"] for j in servicenow.journal(inc["sys_id"]))
    assert notes.count("after the adoption") == 1
    assert notes.count("written by the old integration") == (1 if older_notes else 0)


def test_a_reopen_in_flashduty_of_an_incident_closed_in_servicenow_is_closed_again(two_way):
    t = two_way()
    inc, incident_id = alert_for(t)
    bob = t.fd.add_person("Bob Ray")
    t.fd.resolve(incident_id, bob)
    t.cycle()
    change(t.sn, inc["sys_id"], state="6")
    t.cycle()
    t.fd.reopen(incident_id, bob, "not fixed")
    t.wall.advance(SLOWEST_SECONDS)  # a closed incident is read at the slowest cadence
    t.cycle()  # noted, and closed again: ServiceNow says what is open
    assert "Reopened by Bob Ray: not fixed" in "\n".join(t.notes(inc["sys_id"]))
    assert t.fd.open_keys() == set()
    assert [e.kind for e in t.fd.events()] == ["create", "resolve"]


def test_metrics_count_write_backs_by_kind_and_outcome(two_way):
    from prometheus_client import generate_latest

    from fd_sync.service.metrics import Metrics

    t = two_way(resolve_state="6", close_code="Solution provided")
    t.sn.require_on_close("close_code", "close_notes", "u_cause")
    t.sn.add_column("u_cause")
    _, incident_id = alert_for(t)
    bob = t.fd.add_person("Bob Ray")
    t.fd.comment(incident_id, bob, "on it")
    t.fd.resolve(incident_id, bob, "rebooted")
    metrics = Metrics(poll_interval=60)
    metrics.observe(t.cycle())
    text = generate_latest(metrics.registry).decode()
    assert 'fdsync_writeback_total{kind="comment",outcome="written"} 1.0' in text
    assert 'fdsync_writeback_total{kind="resolve",outcome="written"} 1.0' in text
    assert 'fdsync_writeback_total{kind="state",outcome="refused"} 1.0' in text
    assert "fdsync_writeback_lag_seconds 0.0" in text
    # The refused state change is kept: /healthz says so, as status --check does.
    assert "fdsync_writeback_dead 1.0" in text
    healthy, why = metrics.health()
    assert not healthy and "refused for good" in why
    metrics.observe(t.cycle())  # a later cycle still has it
    assert not metrics.health()[0]


def test_a_new_alert_after_a_reopen_is_linked_to_its_own_incident(two_way):
    """Found by the two-way machine: a key's closed alert and its new one share the key."""
    t = two_way(resolve_state="6", close_code="Solution provided")
    inc, first = alert_for(t)
    t.fd.resolve(first, t.fd.add_person("Bob Ray"), "rebooted")
    t.cycle()  # written back: ServiceNow resolved
    change(t.sn, inc["sys_id"], state="2")  # reopened there: a new alert
    # Flashduty's clock a minute back: the new alert's start_time is the older one, so
    # only preferring the open alert (not the latest start) finds the right incident.
    t.wall.advance(-60)
    t.cycle()
    t.cycle()
    second = t.fd.incident_of(inc["sys_id"])
    assert second != first
    assert t.h.ledger.links.get([inc["sys_id"]])[inc["sys_id"]].incident_id == second
    text = "\n".join(t.notes(inc["sys_id"]))
    assert text.count("Resolved by Bob Ray") == 1  # the old timeline is not read again


def test_a_persons_reopen_after_the_flashduty_close_keeps_servicenow_open(two_way):
    """Found by the two-way machine: compared by version, not by the two systems' clocks."""
    t = two_way(resolve_state="6", close_code="Solution provided")
    inc, incident_id = alert_for(t)
    t.cycle()
    t.fd.resolve(incident_id, t.fd.add_person("Bob Ray"))
    t.sn.clock.advance(-3600)  # ServiceNow's clock an hour behind Flashduty's
    change(t.sn, inc["sys_id"], short_description="a person edits it first")
    t.cycle()  # reads the close; the person's edit came after the version fd-sync had
    assert t.sn.incident(inc["sys_id"])["state"] == "1"
    assert "Resolved by Bob Ray" in "\n".join(t.notes(inc["sys_id"]))


def test_the_create_after_a_responders_close_and_a_reopen_opens_a_new_alert(two_way):
    """Found by the two-way machine: Flashduty discards an event identical to an earlier
    one (standard alert.mdx, noise reduction), so the create that reopens must differ."""
    t = two_way(resolve_state="6", close_code="Solution provided")
    inc, first = alert_for(t)
    t.fd.resolve(first, t.fd.add_person("Bob Ray"), "rebooted")
    t.cycle()  # written back: ServiceNow resolved by fd-sync
    change(t.sn, inc["sys_id"], state="1")  # reopened, as it was when first sent
    t.cycle()
    t.cycle()
    assert inc["sys_id"] in t.fd.open_keys()
    assert t.fd.duplicates() == 0
    assert t.fd.incident_of(inc["sys_id"]) != first
    assert "\n".join(t.notes(inc["sys_id"])).count("Resolved by Bob Ray") == 1
