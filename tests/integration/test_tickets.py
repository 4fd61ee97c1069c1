"""Tickets from Flashduty (issue 20): a monitoring incident in a watched channel opens one
ServiceNow incident, and the two stay in sync both ways, outbound only.

Against the simulators of Flashduty's On-call OpenAPI (flashduty-docs
``api-reference/on-call.openapi.en.json``: ``/incident/list`` with ``channel_ids``,
``progress`` and the start-time window; ``/incident/comment``, ``/incident/resolve``,
``/incident/reopen``, ``/incident/reset`` with their ``incident_ids`` and limits) and
ServiceNow's Table API POST (201) and PATCH, with a real ledger on both engines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fd_sync import wiring
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.flashduty_incidents import PUSH_CHANNEL_ID
from fd_sync.simulators.http import Fault
from fd_sync.simulators.servicenow import ServiceNowSim
from tests.helpers.cycle import Harness
from tests.helpers.simulated import open_incident
from tests.integration.test_writeback import Wall

pytestmark = pytest.mark.backends("sqlite", "postgres")

WATCHED = 5550001  # a Prometheus channel


@dataclass
class Desk:
    h: Harness
    wall: Wall
    sn: ServiceNowSim
    fd: FlashdutySim
    network: str  # the Network group's sys_id

    def cycle(self, **kwargs: Any) -> Any:
        self.wall.advance(5)
        self.sn.clock.advance(5)
        cycle = wiring.cycle(self.h.config, self.h.ledger, sleep=self.h.sleeps, wall=self.wall)
        return cycle.run(**kwargs)

    def monitoring(self, title: str = "Disk full on db-3", **kwargs: Any) -> str:
        self.wall.advance(1)
        return self.fd.open_incident(title, channel_id=kwargs.pop("channel_id", WATCHED), **kwargs)

    def tickets(self) -> list[dict[str, str]]:
        return [self.sn.incident(s) for s in self.sn.created]

    def ticket_of(self, incident_id: str) -> dict[str, str]:
        (ticket,) = [t for t in self.tickets() if t["correlation_id"] == incident_id]
        return ticket

    def notes(self, sys_id: str) -> list[str]:
        return [j["value"] for j in self.sn.journal(sys_id, "work_notes")]

    def comments_in_flashduty(self, incident_id: str) -> list[str]:
        feed = self.fd.feeds[incident_id]
        return [e["detail"]["comment"] for e in feed if e["type"] == "i_comm"]


@pytest.fixture
def desk(harness, servicenow, flashduty) -> Callable[..., Desk]:
    def build(push_format: str = "standard", **tickets: Any) -> Desk:
        wall = Wall()
        flashduty.wall = wall
        flashduty.add_channel("Prometheus", channel_id=WATCHED)
        flashduty.add_channel("ServiceNow", channel_id=PUSH_CHANNEL_ID)
        network = servicenow.add_group("Network")
        writeback = tickets.pop("writeback", {})
        h = harness(
            push_format,
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
            writeback={"enabled": True, **writeback},
            tickets={"enabled": True, "channel_ids": [WATCHED], **tickets},
        )
        d = Desk(h, wall, servicenow, flashduty, network)
        first = d.cycle()  # the first run: baseline; tickets only for incidents after it
        assert first.exit_code == 0, first.message()
        return d

    return build


def test_a_monitoring_incident_opens_one_ticket_with_its_fields(desk):
    d = desk(
        fields={
            "short_description": "{title}",
            "assignment_group": "Network",
            "description": "{description} ({labels.host}) {url}",
        }
    )
    incident_id = d.monitoring(severity="Critical", labels={"host": "db-3"}, description="93%")
    report = d.cycle()
    assert report.exit_code == 0, report.message()
    ticket = d.ticket_of(incident_id)
    assert ticket["short_description"] == "Disk full on db-3"
    assert ticket["description"] == f"93% (db-3) {d.fd.url}/incident/{incident_id}"
    assert (ticket["urgency"], ticket["impact"]) == ("1", "1")
    assert ticket["correlation_display"] == "Flashduty"
    assert ticket["assignment_group"] == d.network  # the name, as its sys_id
    # The link back: a comment on the Flashduty incident naming the ticket, mute_reply.
    (comment,) = d.fd.writes_to(incident_id, "/incident/comment")
    assert comment["comment"].startswith(f"ServiceNow {ticket['number']}: ")
    assert f"sys_id={ticket['sys_id']}" in comment["comment"] and comment["mute_reply"] is True
    for _ in range(3):
        assert d.cycle().exit_code == 0
    assert len(d.tickets()) == 1  # once, whatever the cycles
    assert d.fd.events() == []  # and never an alert pushed for it
    assert d.notes(ticket["sys_id"]) == []  # the link-back comment is fd-sync's: no note


def test_acks_comments_and_the_monitoring_recovery_reach_the_ticket_once(desk):
    d = desk(writeback={"resolve_state": "6", "close_code": "Solution provided"})
    incident_id = d.monitoring()
    d.cycle()
    ticket = d.ticket_of(incident_id)
    ann = d.fd.add_person("Ann Lee", "ann@example.com")
    d.fd.ack(incident_id, ann)
    d.fd.comment(incident_id, ann, "cleaning /var/log")
    assert d.cycle().exit_code == 0
    (note,) = d.notes(ticket["sys_id"])
    assert "Acknowledged by Ann Lee" in note and "Comment by Ann Lee" in note
    # The monitoring tool recovers: the incident closes "from event", which for a ticket
    # is not fd-sync's own resolve: it closes the ticket like a responder's.
    d.fd.resolve(incident_id, 0, origin="event")
    report = d.cycle()
    assert report.exit_code == 0, report.message()
    assert d.sn.incident(ticket["sys_id"])["state"] == "6"
    for _ in range(2):
        d.cycle()
    assert len(d.notes(ticket["sys_id"])) == 2
    # fd-sync's own resolve of the ticket went nowhere: no resolve back to Flashduty.
    assert d.fd.writes_to(incident_id, "/incident/resolve") == []


def test_the_ticket_resolved_in_servicenow_closes_the_flashduty_incident_once(desk):
    d = desk()
    incident_id = d.monitoring()
    d.cycle()
    ticket = d.ticket_of(incident_id)
    d.sn.clock.advance(1)
    d.sn.update(ticket["sys_id"], state="6", close_notes="freed 40 GB")
    report = d.cycle()
    assert report.exit_code == 0, report.message()
    (resolve,) = d.fd.writes_to(incident_id, "/incident/resolve")
    assert resolve["resolution"] == f"{ticket['number']} closed in ServiceNow. freed 40 GB"
    assert d.fd.fd_incidents[incident_id]["progress"] == "Closed"
    for _ in range(3):
        d.cycle()
    assert len(d.fd.writes_to(incident_id, "/incident/resolve")) == 1
    # Its own resolve in the feed is not written back as a note.
    assert not [n for n in d.notes(ticket["sys_id"]) if "Resolved" in n]
    # Reopened in ServiceNow: reopened in Flashduty, once.
    d.sn.clock.advance(1)
    d.sn.update(ticket["sys_id"], state="2")
    d.cycle()
    d.cycle()
    assert len(d.fd.writes_to(incident_id, "/incident/reopen")) == 1
    assert d.fd.fd_incidents[incident_id]["progress"] == "Triggered"
    assert not [n for n in d.notes(ticket["sys_id"]) if "Reopened" in n]


def test_comments_and_urgency_in_servicenow_reach_flashduty_once(desk):
    d = desk()
    incident_id = d.monitoring(severity="Warning")
    d.cycle()
    ticket = d.ticket_of(incident_id)
    d.sn.clock.advance(1)
    d.sn.comment(ticket["sys_id"], "customer reports slowness too", by="desk.agent")
    d.sn.update(ticket["sys_id"], urgency="1")
    assert d.cycle().exit_code == 0
    assert d.fd.fd_incidents[incident_id]["incident_severity"] == "Critical"
    said = d.comments_in_flashduty(incident_id)
    assert f"{ticket['number']}: customer reports slowness too" in said
    for _ in range(2):
        d.cycle()
    assert d.comments_in_flashduty(incident_id) == said  # once
    assert len(d.fd.writes_to(incident_id, "/incident/reset")) == 1
    # Neither the comment nor the severity change came back as a work note.
    assert d.notes(ticket["sys_id"]) == []


def test_fd_syncs_own_alert_in_a_watched_channel_opens_no_ticket(desk, push_format):
    """The channel fd-sync pushes to is watched too: its alerts are ServiceNow's already."""
    d = desk(push_format, channel_ids=[WATCHED, PUSH_CHANNEL_ID])
    inc = open_incident(d.sn)
    report = d.cycle()  # pushed, and in the same cycle's search: not linked yet
    assert report.exit_code == 0, report.message()
    for _ in range(3):
        d.cycle()
    assert d.tickets() == []
    assert d.fd.incident_of(inc["sys_id"])  # the alert is there, and opened no ticket
    # Another integration in the same channel still opens one.
    other = d.monitoring(channel_id=PUSH_CHANNEL_ID)
    d.cycle()
    assert [t["correlation_id"] for t in d.tickets()] == [other]


def test_only_configured_severities_and_labels_open_tickets(desk):
    d = desk(severities=["Critical"], labels={"env": "prod"})
    wanted = d.monitoring(severity="Critical", labels={"env": "prod"})
    d.monitoring(severity="Warning", labels={"env": "prod"})
    d.monitoring(severity="Critical", labels={"env": "test"})
    d.monitoring(channel_id=12345)  # not watched
    d.cycle()
    assert [t["correlation_id"] for t in d.tickets()] == [wanted]


def test_a_refused_create_is_kept_dead_and_everything_else_goes_on(desk):
    d = desk(fields={"short_description": "{title}", "assignment_group": "Nobody"})
    d.monitoring("Disk full on db-3")
    report = d.cycle()
    assert report.exit_code == 76
    message = report.message()
    assert "Flashduty #" in message and '"Disk full on db-3"' in message
    assert "no sys_user_group record matches 'Nobody'" in message
    assert d.tickets() == []
    posts = d.sn.posts
    again = d.cycle()  # not retried in a storm: still dead, nothing posted
    assert again.exit_code == 76
    assert d.sn.posts == posts
    assert d.h.ledger.ticket_creates.counts().dead == 1
    # Fixed in ServiceNow, retried by the operator: one ticket.
    d.sn.add_group("Nobody")
    d.h.ledger.retry(d.h.ledger.ticket_creates, None)
    assert d.cycle().exit_code == 0
    assert len(d.tickets()) == 1


def test_a_create_that_times_out_is_looked_up_not_posted_twice(desk):
    d = desk()
    incident_id = d.monitoring()
    d.sn.inject(
        Fault(status=504, path="/api/now/table/incident", method="POST", times=1, delay=0.0)
    )
    report = d.cycle()
    # A 504 may have landed or not: here it did not; the look-up finds nothing, and the
    # next cycle posts it, once.
    assert report.exit_code == 75, report.message()
    assert d.tickets() == []
    assert d.cycle().exit_code == 0
    assert len(d.tickets()) == 1
    assert d.ticket_of(incident_id)


def test_a_create_that_landed_but_whose_answer_was_lost_is_found(desk):
    d = desk(push_format="standard")
    incident_id = d.monitoring()
    d.sn.inject(Fault(slow_answer=60, path="/api/now/table/incident", method="POST"))
    cycle = wiring.cycle(_with_timeout(d.h.config, 1), d.h.ledger, sleep=d.h.sleeps, wall=d.wall)
    d.wall.advance(5)
    report = cycle.run()
    assert report.exit_code == 0, report.message()  # the look-up found it at once
    assert len(d.tickets()) == 1
    for _ in range(2):
        d.cycle()
    assert len(d.tickets()) == 1
    assert d.ticket_of(incident_id)


def test_a_merged_incident_leaves_the_ticket_with_a_note_and_stops(desk):
    d = desk()
    incident_id = d.monitoring()
    d.cycle()
    ticket = d.ticket_of(incident_id)
    d.fd.merge_away(incident_id)
    d.cycle()
    notes = d.notes(ticket["sys_id"])
    assert len(notes) == 1 and "merged into another or deleted" in notes[0]
    d.sn.clock.advance(1)
    d.sn.update(ticket["sys_id"], state="6")
    d.cycle()
    assert d.fd.writes_to(incident_id, "/incident/resolve") == []


def test_an_incident_moved_out_of_the_watched_channels_stops_syncing(desk):
    d = desk()
    incident_id = d.monitoring()
    d.cycle()
    ticket = d.ticket_of(incident_id)
    d.fd.move(incident_id, 12345)
    d.fd.comment(incident_id, d.fd.add_person("Ann Lee"), "moved to the DBA channel")
    d.cycle()
    (note,) = d.notes(ticket["sys_id"])
    assert "moved to channel 12345, which [tickets] does not watch" in note
    d.fd.comment(incident_id, d.fd.add_person("Bob Ray"), "later")
    d.sn.clock.advance(1)
    d.sn.update(ticket["sys_id"], state="6")
    for _ in range(2):
        d.cycle()
    assert len(d.notes(ticket["sys_id"])) == 1  # nothing more either way
    assert d.fd.writes_to(incident_id, "/incident/resolve") == []


def test_a_dry_run_names_each_ticket_and_creates_nothing(desk):
    d = desk(fields={"short_description": "{title}", "assignment_group": "Network"})
    d.monitoring("Disk full on db-3", severity="Critical")
    report = d.cycle(dry_run=True)
    (line,) = report.tickets.planned
    assert line.startswith("would open a ticket for Flashduty #")
    assert line.endswith('"Disk full on db-3": urgency 1, impact 1, assignment_group Network')
    assert d.tickets() == []


def _with_timeout(config, seconds):
    import dataclasses

    sn = dataclasses.replace(config.servicenow, timeout_seconds=seconds, max_attempts=1)
    return dataclasses.replace(config, servicenow=sn)


def test_explain_tells_a_tickets_story(desk):
    from fd_sync.ops.timeline import history_lines, now_lines
    from fd_sync.store.history import read_history, timeline

    d = desk()
    incident_id = d.monitoring("Disk full on db-3")
    d.cycle()
    ticket = d.ticket_of(incident_id)
    d.sn.clock.advance(1)
    d.sn.update(ticket["sys_id"], state="6", close_notes="freed 40 GB")
    d.cycle()
    history = read_history(d.h.ledger, ticket["number"])
    assert history is not None and history.is_ticket
    text = "\n".join(history_lines(history, timeline(history)) + now_lines(history))
    assert f"ticket opened for Flashduty incident {incident_id}: Disk full on db-3" in text
    assert f"born in Flashduty: the ticket of incident {incident_id}" in text
    assert "comment (ServiceNow " in text and "sent to the Flashduty incident" in text
    assert "resolve (" in text and "freed 40 GB" in text
    assert "a ticket born in Flashduty" in text


def test_an_app_key_flashduty_refuses_exits_77_with_the_request_id(desk):
    import dataclasses

    d = desk()
    d.monitoring()
    fd = dataclasses.replace(d.h.config.flashduty, app_key="wrong-key-0123456789")
    config = dataclasses.replace(d.h.config, flashduty=fd)
    d.wall.advance(5)
    report = wiring.cycle(config, d.h.ledger, sleep=d.h.sleeps, wall=d.wall).run()
    assert report.exit_code == 77
    assert report.tickets.error is not None
    message = str(report.tickets.error)
    assert "refused the app key" in message and "request" in message
    assert "wrong-key" not in message
    assert d.tickets() == []


def test_metrics_count_tickets_by_outcome(desk):
    from prometheus_client import generate_latest

    from fd_sync.service.metrics import Metrics

    d = desk()
    incident_id = d.monitoring()
    metrics = Metrics(poll_interval=60)
    metrics.observe(d.cycle())
    ticket = d.ticket_of(incident_id)
    d.sn.clock.advance(1)
    d.sn.update(ticket["sys_id"], state="6")
    metrics.observe(d.cycle())
    text = generate_latest(metrics.registry).decode()
    assert 'fdsync_tickets_total{outcome="opened"} 1.0' in text
    assert 'fdsync_tickets_total{outcome="comment"} 1.0' in text  # the link-back
    assert 'fdsync_tickets_total{outcome="resolve"} 1.0' in text
    assert "fdsync_tickets_dead 0.0" in text
