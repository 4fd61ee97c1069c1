"""Paging from the incident form: ``/flashduty`` work notes read from the journal, acted on
once, answered with a work note (issue 21). Real HTTP to both simulators, a real ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from fd_sync import wiring
from fd_sync.simulators.flashduty import FlashdutySim, layer
from fd_sync.simulators.servicenow import ServiceNowSim
from tests.helpers.cycle import Harness
from tests.helpers.simulated import change, open_incident

pytestmark = pytest.mark.backends("sqlite", "postgres")

AGENT = "ann.agent"


@dataclass
class Desk:
    h: Harness
    sn: ServiceNowSim
    fd: FlashdutySim

    def cycle(self, **kwargs: Any) -> Any:
        return self.h.cycle(**kwargs)

    def alerted(self) -> dict[str, str]:
        """An open incident whose alert fd-sync has sent."""
        inc = open_incident(self.sn)
        self.cycle()
        return inc

    def note(self, inc: dict[str, str], text: str, by: str = AGENT) -> None:
        self.sn.clock.advance(1)
        self.sn.work_note(inc["sys_id"], text, by=by)

    def answers(self, inc: dict[str, str]) -> list[str]:
        """fd-sync's work notes (one PATCH a cycle carries every answer of an incident)."""
        return [
            j["value"]
            for j in self.sn.journal(inc["sys_id"], "work_notes")
            if j["sys_created_by"] == self.sn.username
        ]

    def said(self, inc: dict[str, str]) -> str:
        return "\n".join(self.answers(inc))

    def pushes(self) -> list[Any]:
        return self.fd.events()


@pytest.fixture
def desk(harness, servicenow, flashduty):
    def build(two_way: bool = False, **commands: Any) -> Desk:
        servicenow.add_user("Ann Agent", user_name=AGENT, email="ann.agent@example.com")
        noc = servicenow.add_group("NOC")
        servicenow.add_member(noc, servicenow.add_user("Nick Noc", user_name="nick"))
        lee = flashduty.add_person("Ann Lee", "ann@example.com")
        bob = flashduty.add_person("Bob Ray", "bob@example.com")
        dba = flashduty.add_schedule("DBA on-call")
        flashduty.add_channel("NOC", channel_id=77)
        flashduty.add_rule(
            77,
            "NOC primary",
            [layer(person_ids=(lee, bob), escalate_window=10), layer(schedule_ids=(dba,))],
            rule_id="65aa00bb",
        )
        h = harness(
            "servicenow",
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url, "channel_id": 77},
            commands=commands,
            **({"writeback": {"enabled": True}} if two_way else {}),
        )
        d = Desk(h, servicenow, flashduty)
        d.cycle()  # the first run: the baseline, and the commands start at ServiceNow's present
        return d

    return build


def test_a_page_command_pages_once_and_answers_with_the_escalation_path(desk):
    d = desk()
    inc = d.alerted()
    before = len(d.pushes())
    d.note(
        inc, '/flashduty page channels=sms,voice members=ann.agent@example.com rule="NOC primary"'
    )
    report = d.cycle()
    assert report.exit_code == 0, report.message()
    sent = d.pushes()[before:]
    assert len(sent) == 1
    assert sent[0].body["personal_channels"] == "sms,voice"
    assert sent[0].body["rule_id"] == "65aa00bb"
    assert [m["email"] for m in sent[0].body["notify_members"]] == ["ann.agent@example.com"]
    (answer,) = d.answers(inc)
    assert (
        '[Flashduty] Paged by Ann Agent via sms, voice: rule "NOC primary" — layer 1 Ann Lee, '
        "Bob Ray; after 10 min unacknowledged layer 2 schedule DBA on-call." in answer
    )
    for _ in range(3):  # the same note read again by the look-back, and our own answer
        d.cycle()
    assert len(d.pushes()) == before + 1 and len(d.answers(inc)) == 1
    assert report.commands.outcomes == {("page", "paged"): 1}


def test_a_command_written_twice_pages_twice(desk):
    d = desk()
    inc = d.alerted()
    before = len(d.pushes())
    d.note(inc, "/flashduty page channels=sms")
    d.note(inc, "/FlashDuty page channels=voice")  # a new note is a new command
    d.cycle()
    assert [e.body["personal_channels"] for e in d.pushes()[before:]] == ["sms", "voice"]
    said = d.said(inc)
    assert said.count("Paged by Ann Agent via sms:") == 1
    assert said.count("Paged by Ann Agent via voice:") == 1


def test_an_author_outside_allowed_groups_is_refused_and_nothing_is_sent(desk):
    d = desk(allowed_groups=["NOC"])
    inc = d.alerted()
    before = len(d.pushes())
    d.note(inc, "/flashduty page")
    d.cycle()
    assert d.pushes()[before:] == []
    assert "[Flashduty] Ann Agent may not page from ServiceNow: not in NOC" in d.said(inc)
    d.note(inc, "/flashduty page channels=sms", by="nick")  # a member of NOC may
    d.cycle()
    assert len(d.pushes()) == before + 1


def test_a_malformed_command_answers_with_the_help_and_does_nothing(desk):
    d = desk()
    inc = d.alerted()
    before = len(d.pushes())
    d.note(inc, "/flashduty pgae channels=sms")
    d.note(inc, "/flashduty page channels=fax")
    d.cycle()
    assert d.pushes()[before:] == []
    said = d.said(inc)
    assert "[Flashduty] unknown command 'pgae' (did you mean 'page'?)" in said
    assert "/flashduty rules" in said and "/flashduty help" in said  # the help follows
    assert "[Flashduty] unknown channel 'fax'" in said


def test_a_refused_page_answers_with_status_code_and_request_id(desk):
    d = desk()
    inc = d.alerted()
    refusal = '{"request_id": "7f3e9a", "error": {"code": "InvalidParameter", "message": "bad"}}'
    d.fd.inject(status=400, body=refusal, path="/event/push/", times=10)
    d.note(inc, "/flashduty page channels=sms")
    report = d.cycle()
    assert report.exit_code == 76
    answer = d.said(inc)
    assert "[Flashduty] Could not page: HTTP 400 InvalidParameter: bad (request_id 7f3e9a)" in (
        answer
    )


def test_a_closed_incident_needs_force_true(desk):
    d = desk()
    inc = d.alerted()
    change(d.sn, inc["sys_id"], state="6")
    d.cycle()
    before = len(d.pushes())
    d.note(inc, "/flashduty page")
    d.cycle()
    assert d.pushes()[before:] == []
    assert "add force=true if you mean it" in d.said(inc)
    d.note(inc, "/flashduty page force=true channels=sms")
    d.cycle()
    assert len(d.pushes()) > before


def test_rules_status_and_help_answer_without_paging(desk):
    d = desk()
    inc = d.alerted()
    before = len(d.pushes())
    d.note(inc, "/flashduty rules")
    d.note(inc, "/flashduty status")
    d.note(inc, "/flashduty help")
    d.cycle()
    assert d.pushes()[before:] == []
    said = d.said(inc)
    assert "NOC primary (rule_id 65aa00bb)" in said and "DBA on-call" in said
    assert f"[Flashduty] {inc['number']}: alert open in Flashduty" in said
    assert "[Flashduty] Commands" in said


def test_fd_syncs_own_notes_are_never_commands(desk):
    """Even a note of the integration user that starts with /flashduty is not a command."""
    d = desk()
    inc = d.alerted()
    before = len(d.pushes())
    d.note(inc, "/flashduty page", by=d.sn.username)
    d.cycle()
    assert d.pushes()[before:] == [] and d.answers(inc) == ["/flashduty page"]


def test_a_dry_run_lists_the_commands_and_writes_nothing(desk):
    d = desk()
    inc = d.alerted()
    before = len(d.pushes())
    d.note(inc, "/flashduty page channels=sms")
    cycle = wiring.cycle(d.h.config, d.h.ledger, sleep=d.h.sleeps)
    report = cycle.run(dry_run=True)
    (planned,) = report.commands.planned
    assert planned == (
        f"{inc['number']} command from {AGENT}: /flashduty page channels=sms -> would page via "
        "sms: Flashduty chooses among channel 77's enabled rules."
    )
    assert d.pushes()[before:] == [] and d.answers(inc) == []
    d.cycle()  # the real run still acts on it
    assert len(d.pushes()) == before + 1


def test_a_journal_the_user_may_not_read_is_reported(desk, write_config, run_fd_sync, flashduty):
    """ServiceNow answers a journal the user may not read with 200 and no rows."""
    d = desk()
    d.sn.silent_tables.add("sys_journal_field")
    config = write_config(
        flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url, "channel_id": 77}
    )
    checked = run_fd_sync("--config", str(config), "check")
    assert "cannot prove commands will be seen" in checked.stdout, checked.output
    assert run_fd_sync("--config", str(config), "once").code == 0
    status = run_fd_sync("--config", str(config), "status")
    assert "the journal has never returned a /flashduty note" in status.stdout


def test_commands_turned_off_get_no_answer_and_no_action(desk):
    d = desk(enabled=False)
    inc = d.alerted()
    before = len(d.pushes())
    d.note(inc, "/flashduty page channels=sms")
    d.cycle()
    assert d.pushes()[before:] == [] and d.answers(inc) == []


def test_metrics_count_commands_by_verb_and_outcome(desk):
    from prometheus_client import generate_latest

    from fd_sync.service.metrics import Metrics

    d = desk()
    inc = d.alerted()
    d.note(inc, "/flashduty page channels=sms")
    d.note(inc, "/flashduty nonsense")
    metrics = Metrics(poll_interval=60)
    metrics.observe(d.cycle())
    text = generate_latest(metrics.registry).decode()
    assert 'fdsync_commands_total{outcome="paged",verb="page"} 1.0' in text
    assert 'fdsync_commands_total{outcome="invalid",verb="invalid"} 1.0' in text


def test_a_page_is_answered_as_sent_even_when_the_openapi_fails_after_it(desk):
    """The page went: an OpenAPI failure while reading the path must not turn the answer
    into "interrupted" (nor page again)."""
    from fd_sync.simulators.http import Fault

    d = desk()
    inc = d.alerted()
    before = len(d.pushes())
    d.fd.inject(Fault(status=503, path="/channel/escalate/rule/list", times=100))
    d.note(inc, "/flashduty page channels=sms")
    d.cycle()
    assert len(d.pushes()) == before + 1
    said = d.said(inc)
    assert "Paged by Ann Agent via sms: escalation path not shown" in said
    d.cycle()
    assert len(d.pushes()) == before + 1 and said == d.said(inc)


def test_status_says_who_acknowledged_and_links_the_incident(desk):
    """With the write-back on, fd-sync knows the alert's Flashduty incident, and reads it."""
    d = desk(two_way=True)
    inc = d.alerted()
    d.cycle()  # its Flashduty incident found
    incident_id = d.fd.incident_of(inc["sys_id"])
    d.fd.ack(incident_id, d.fd.add_person("Bob Ray", "bob.ray@example.com"))
    d.note(inc, "/flashduty status")
    d.cycle()
    said = d.said(inc)
    assert "Flashduty incident Processing, acknowledged by Bob Ray, responders Bob Ray" in said
    assert f"/incident/{incident_id}" in said and "0 event(s) pending, 0 refused" in said
