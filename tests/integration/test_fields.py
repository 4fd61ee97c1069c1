"""Who owns it and how bad it is, both ways (issue 22): assignment, severity and the desk's
notes between ServiceNow and Flashduty, for ServiceNow-born incidents and tickets.

Against the simulators of Flashduty's On-call OpenAPI (flashduty-docs
``api-reference/on-call.openapi.en.json``: ``/person/infos`` and ``/member/list`` emails,
``/incident/assign`` (AssignIncidentRequest), the ``i_assign`` and ``i_r_severity`` feed
details, ``/incident/comment``) and ServiceNow's ``sys_user`` (emails, active, duplicates)
and Table API PATCH, with a real ledger on both engines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fd_sync import wiring
from fd_sync.ops.status import read_status, render
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim
from tests.helpers.cycle import Harness
from tests.helpers.simulated import open_incident
from tests.integration.test_writeback import Wall

pytestmark = pytest.mark.backends("sqlite", "postgres")


@dataclass
class Pair:
    h: Harness
    wall: Wall
    sn: ServiceNowSim
    fd: FlashdutySim
    ann_fd: int
    bob_fd: int
    ann_sn: str
    bob_sn: str

    def cycle(self, **kwargs: Any) -> Any:
        self.wall.advance(5)
        self.sn.clock.advance(5)
        cycle = wiring.cycle(self.h.config, self.h.ledger, sleep=self.h.sleeps, wall=self.wall)
        report = cycle.run(**kwargs)
        assert report.exit_code == 0, report.message()
        return report

    def alerted(self) -> tuple[dict[str, str], str]:
        inc = open_incident(self.sn)
        self.cycle()
        return inc, self.fd.incident_of(inc["sys_id"])

    def notes(self, sys_id: str) -> list[str]:
        return [j["value"] for j in self.sn.journal(sys_id, "work_notes")]

    def assigned(self, sys_id: str) -> str:
        return self.sn.incident(sys_id)["assigned_to"]

    def patches(self, sys_id: str) -> list[dict[str, Any]]:
        return [body for s, body in self.sn.writes if s == sys_id]

    def events(self, sys_id: str) -> list[str]:
        return [e.kind for e in self.fd.events() if e.key == sys_id]


@pytest.fixture
def pair(harness, servicenow, flashduty) -> Callable[..., Pair]:
    def build(
        *,
        writeback: dict[str, Any] | None = None,
        tickets: dict[str, Any] | None = None,
        **forward: Any,
    ) -> Pair:
        wall = Wall()
        flashduty.wall = wall
        ann_fd = flashduty.add_person("Ann Lee", "Ann.Lee@Example.com")
        bob_fd = flashduty.add_person("Bob Ray", "bob@example.com")
        ann_sn = servicenow.add_user("Ann Lee", user_name="ann", email="ann.lee@example.com")
        bob_sn = servicenow.add_user("Bob Ray", user_name="bob", email="bob@example.com")
        h = harness(
            "standard",
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
            writeback={"enabled": True, **(writeback or {})},
            forward=forward,
            commands={"enabled": False},
            **({"tickets": tickets} if tickets else {}),
        )
        p = Pair(h, wall, servicenow, flashduty, ann_fd, bob_fd, ann_sn, bob_sn)
        p.cycle()  # the baseline
        return p

    return build


def test_the_first_acknowledger_becomes_assigned_to_once_and_a_desk_reassignment_stands(pair):
    p = pair(writeback={"assign": "acknowledger"})
    inc, incident_id = p.alerted()
    p.fd.ack(incident_id, p.ann_fd)
    p.cycle()
    assert p.assigned(inc["sys_id"]) == p.ann_sn  # matched by email, whatever its case
    p.sn.clock.advance(1)
    p.sn.update(inc["sys_id"], assigned_to=p.bob_sn)  # the desk reassigns
    p.fd.unack(incident_id, p.ann_fd)
    p.fd.ack(incident_id, p.bob_fd)  # a later ack is not the first: no assignment
    p.fd.ack(incident_id, p.ann_fd)
    p.cycle()
    p.cycle()
    assert p.assigned(inc["sys_id"]) == p.bob_sn
    # fd-sync's own assignment was never pushed back as an update event.
    assert p.events(inc["sys_id"]).count("update") == 1  # the desk's reassignment only


def test_a_desk_change_after_the_ack_was_read_wins(pair):
    """The person wins, as for states: an assignment decided from an ack is not written
    over a change a person made after fd-sync read the ack."""
    p = pair(writeback={"assign": "acknowledger"})
    inc, incident_id = p.alerted()
    p.fd.ack(incident_id, p.ann_fd)
    p.sn.inject(status=503, path="/api/now/table/incident/", method="PATCH", times=10)
    p.wall.advance(5)
    wiring.cycle(p.h.config, p.h.ledger, sleep=p.h.sleeps, wall=p.wall).run()  # read, not written
    p.sn.clear_faults()
    p.sn.clock.advance(1)
    p.sn.update(inc["sys_id"], assigned_to=p.bob_sn)
    p.cycle()
    assert p.assigned(inc["sys_id"]) == p.bob_sn
    assert any("Acknowledged by Ann Lee" in n for n in p.notes(inc["sys_id"]))


def test_assignee_mode_follows_two_reassignments(pair):
    p = pair(writeback={"assign": "assignee"})
    inc, incident_id = p.alerted()
    p.fd.assign(incident_id, p.ann_fd, [p.bob_fd])
    p.cycle()
    assert p.assigned(inc["sys_id"]) == p.bob_sn
    p.fd.assign(incident_id, p.bob_fd, [p.ann_fd])
    p.cycle()
    assert p.assigned(inc["sys_id"]) == p.ann_sn
    assert "update" not in p.events(inc["sys_id"])  # fd-sync's own writes never echo


def test_an_unmatched_person_is_reported_not_guessed(pair, servicenow):
    p = pair(writeback={"assign": "assignee"})
    cy = p.fd.add_person("Cy Twin", "twin@example.com")
    servicenow.add_user("Cy Twin", user_name="cy1", email="twin@example.com")
    servicenow.add_user("Cy Twin (old)", user_name="cy2", email="Twin@example.com")
    gone = p.fd.add_person("Dee Gone", "dee@example.com")
    servicenow.add_user("Dee Gone", user_name="dee", email="dee@example.com", active=False)
    nobody = p.fd.add_person("Eve New", "eve@example.com")
    inc, incident_id = p.alerted()
    for person in (cy, gone, nobody):
        p.fd.assign(incident_id, p.ann_fd, [person])
        p.cycle()
    assert p.assigned(inc["sys_id"]) == ""
    text = "\n".join(p.notes(inc["sys_id"]))
    assert "Not assigned in ServiceNow: Cy Twin (twin@example.com): 2 active ServiceNow users" in (
        text
    )
    assert "Dee Gone (dee@example.com): no active ServiceNow user has this email" in text
    assert "Eve New (eve@example.com): no active ServiceNow user" in text
    status = "\n".join(render(read_status(p.h.ledger, 60)))
    assert "3 people not assigned" in status


def test_no_ping_pong_with_both_directions_on(pair):
    """A responder's ack sets assigned_to; that is fd-sync's own write and is not sent back
    as a reassignment; the desk's reassignment goes to Flashduty once, and Flashduty's
    resulting i_assign is not written back."""
    p = pair(writeback={"assign": "assignee"}, assignment=True)
    inc, incident_id = p.alerted()
    p.fd.assign(incident_id, p.ann_fd, [p.ann_fd])
    p.cycle()
    assert p.assigned(inc["sys_id"]) == p.ann_sn
    p.cycle()
    assert p.fd.writes_to(incident_id, "/incident/assign") == []  # nothing came back
    p.sn.clock.advance(1)
    p.sn.update(inc["sys_id"], assigned_to=p.bob_sn)  # the desk reassigns
    p.cycle()
    (assign,) = p.fd.writes_to(incident_id, "/incident/assign")
    assert assign["assigned_to"]["person_ids"] == [p.bob_fd]
    patches = len(p.patches(inc["sys_id"]))
    for _ in range(3):
        p.cycle()
    assert len(p.fd.writes_to(incident_id, "/incident/assign")) == 1
    assert len(p.patches(inc["sys_id"])) == patches  # Flashduty's i_assign was fd-sync's own
    assert p.assigned(inc["sys_id"]) == p.bob_sn
    p.sn.clock.advance(1)
    p.sn.update(inc["sys_id"], short_description="retitled")  # not a reassignment
    p.cycle()
    assert len(p.fd.writes_to(incident_id, "/incident/assign")) == 1


def test_a_desk_reassignment_to_someone_unknown_in_flashduty_is_not_guessed(pair, servicenow):
    p = pair(assignment=True)
    stranger = servicenow.add_user("Sam Desk", user_name="sam", email="sam@example.com")
    inc, incident_id = p.alerted()
    p.cycle()  # linked
    p.sn.clock.advance(1)
    p.sn.update(inc["sys_id"], assigned_to=stranger)
    p.cycle()
    assert p.fd.writes_to(incident_id, "/incident/assign") == []
    status = "\n".join(render(read_status(p.h.ledger, 60)))
    assert "sam@example.com: no Flashduty member has this email" in status


def test_a_severity_change_moves_urgency_and_impact_once_and_nothing_is_pushed_back(pair):
    p = pair(writeback={"severity": True})
    inc, incident_id = p.alerted()
    p.fd.change_severity(incident_id, p.ann_fd, "Info")
    p.cycle()
    row = p.sn.incident(inc["sys_id"])
    assert (row["urgency"], row["impact"]) == ("3", "3")
    (note,) = p.notes(inc["sys_id"])
    assert "Severity changed to Info (was Warning) by Ann Lee" in note
    for _ in range(2):
        p.cycle()
    assert len(p.patches(inc["sys_id"])) == 1
    assert p.events(inc["sys_id"]) == ["create"]  # fd-sync's own version is not an event


def test_a_desk_work_note_reaches_flashduty_once_and_fd_syncs_own_never(pair):
    p = pair(work_notes=True)
    inc, incident_id = p.alerted()
    p.cycle()  # linked; the journal's watermark starts
    p.sn.clock.advance(1)
    p.sn.work_note(inc["sys_id"], "x" * 1100, by="ann")
    p.fd.comment(incident_id, p.bob_fd, "checking")  # becomes fd-sync's own work note
    p.cycle()
    p.cycle()
    writes = p.fd.writes_to(incident_id, "/incident/comment")
    parts = [w["comment"] for w in writes]
    number = inc["number"]
    assert "".join(parts) == f"Ann Lee (ServiceNow work note on {number}): " + "x" * 1100
    assert len(parts[0]) == 1024  # split at 1,024 characters, in order
    assert len(parts) == 2 and all(w["mute_reply"] is True for w in writes)
    text = "\n".join(p.notes(inc["sys_id"]))
    assert "Comment by Bob Ray" in text  # the responder's comment came back, once
    assert "ServiceNow work note" not in text  # fd-sync's own comments did not
    for _ in range(2):
        p.cycle()
    assert len(p.fd.writes_to(incident_id, "/incident/comment")) == 2


def test_tickets_sync_assignment_and_severity_both_ways_without_echo(pair):
    """A ticket (born in Flashduty): a severity change there moves urgency and impact once
    (fd-sync's own PATCH is not sent back as /incident/reset); the acknowledger becomes
    assigned_to; the desk's reassignment goes to Flashduty once."""
    p = pair(writeback={"assign": "acknowledger", "severity": True}, assignment=True)
    p.fd.add_channel("Prometheus", channel_id=5550001)
    tickets = dict(p.h.config.tickets.__dict__, enabled=True, channel_ids=(5550001,))
    config = p.h.config.__class__(
        **{**p.h.config.__dict__, "tickets": type(p.h.config.tickets)(**tickets)}
    )
    p.h = Harness(config, p.h.ledger, p.h.sleeps)
    p.cycle()  # the tickets' first run
    p.wall.advance(1)
    incident_id = p.fd.open_incident("Disk full", channel_id=5550001, severity="Critical")
    p.cycle()
    (sys_id,) = p.sn.created
    p.fd.ack(incident_id, p.ann_fd)
    p.fd.change_severity(incident_id, p.ann_fd, "Warning")
    p.cycle()
    row = p.sn.incident(sys_id)
    assert (row["assigned_to"], row["urgency"], row["impact"]) == (p.ann_sn, "2", "2")
    for _ in range(2):
        p.cycle()
    assert p.fd.writes_to(incident_id, "/incident/reset") == []  # not echoed
    assert p.fd.writes_to(incident_id, "/incident/assign") == []
    p.sn.clock.advance(1)
    p.sn.update(sys_id, assigned_to=p.bob_sn)
    p.cycle()
    (assign,) = p.fd.writes_to(incident_id, "/incident/assign")
    assert assign["assigned_to"]["person_ids"] == [p.bob_fd]
    p.cycle()
    assert p.assigned(sys_id) == p.bob_sn


def test_the_dry_run_says_who_would_be_assigned_and_what_severity(pair):
    p = pair(writeback={"assign": "assignee", "severity": True})
    inc, incident_id = p.alerted()
    p.fd.assign(incident_id, p.ann_fd, [p.bob_fd])
    p.fd.change_severity(incident_id, p.ann_fd, "Info")
    report = p.cycle(dry_run=True)
    (line,) = report.writeback.planned
    assert line.startswith(f"{inc['number']} write-back: work note (assign by Ann Lee")
    assert "assigned_to Bob Ray (by email); urgency and impact of Info" in line
    assert p.assigned(inc["sys_id"]) == ""  # nothing written
