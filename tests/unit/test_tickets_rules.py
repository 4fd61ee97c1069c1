"""The pure decisions of tickets from Flashduty (fd_sync.core.tickets): which incidents open
one, what it says, what a ticket's new version owes Flashduty, which feed entries are
fd-sync's own. Field names as flashduty-docs api-reference/on-call.openapi.en.json
(IncidentInfo) has them."""

from __future__ import annotations

from dataclasses import replace

from fd_sync.core.incident import Incident
from fd_sync.core.tickets import (
    DEFAULT_SEVERITY_MAP,
    FIELD_LENGTHS,
    FlashdutySource,
    OwnAlerts,
    TicketRules,
    TicketSeen,
    comment_writes,
    forward,
    own_echoes,
    render_fields,
    skip_reason,
    template_problem,
)

ITEM = {
    "incident_id": "69da451ef77b1b51f40e83ee",
    "num": "0E83EE",
    "title": "CPU usage high - web-server-01",
    "description": "CPU above 95%",
    "incident_severity": "Critical",
    "progress": "Triggered",
    "channel_id": 2551105804131,
    "channel_name": "Prometheus",
    "integration_ids": [2490562293131],
    "start_time": 1775912219,
    "labels": {"check": "cpu_usage_high", "env": "production"},
    "detail_url": "https://console.flashcat.cloud/incident/69da451ef77b1b51f40e83ee",
}
SOURCE = FlashdutySource.from_api(ITEM)
RULES = TicketRules(
    channel_ids=frozenset({2551105804131}),
    severities=frozenset({"Critical", "Warning"}),
    labels={},
    fields=(("short_description", "{title}"), ("description", "{description} {labels.env}")),
    severity_map=DEFAULT_SEVERITY_MAP,
)


def test_the_documented_fields_are_read():
    assert SOURCE.severity == "Critical" and SOURCE.integration_ids == (2490562293131,)
    assert SOURCE.name == 'Flashduty #0E83EE "CPU usage high - web-server-01"'


def test_what_opens_a_ticket():
    assert skip_reason(SOURCE, RULES, OwnAlerts()) is None
    assert "channel" in str(skip_reason(replace(SOURCE, channel_id=1), RULES, OwnAlerts()))
    assert "severity" in str(skip_reason(replace(SOURCE, severity="Info"), RULES, OwnAlerts()))
    labelled = replace(RULES, labels={"env": "staging"})
    assert "label env" in str(skip_reason(SOURCE, labelled, OwnAlerts()))


def test_fd_syncs_own_alerts_never_open_one():
    linked = OwnAlerts(incident_ids=frozenset({SOURCE.incident_id}))
    assert "own alert" in str(skip_reason(SOURCE, RULES, linked))
    learned = OwnAlerts(integration_ids=frozenset({2490562293131}))
    assert "push integration" in str(skip_reason(SOURCE, RULES, learned))
    standard = replace(SOURCE, labels={"source": "servicenow", "sys_id": "abc"})
    assert "standard alert" in str(skip_reason(standard, RULES, OwnAlerts()))
    waiting = OwnAlerts(unlinked_since=SOURCE.start_time - 10)
    assert str(skip_reason(SOURCE, RULES, waiting)).startswith("wait:")
    older = OwnAlerts(unlinked_since=SOURCE.start_time + 3600)
    assert skip_reason(SOURCE, RULES, older) is None  # started well before: not that push


def test_the_fields_are_rendered_with_the_severity_and_the_correlation():
    body = render_fields(SOURCE, RULES)
    assert body["short_description"] == "CPU usage high - web-server-01"
    assert body["description"] == "CPU above 95% production"
    assert (body["urgency"], body["impact"]) == ("1", "1")
    assert body["correlation_id"] == SOURCE.incident_id
    assert body["correlation_display"] == "Flashduty"
    missing = render_fields(replace(SOURCE, labels={}), RULES)
    assert missing["description"] == "CPU above 95% "  # an absent label is empty


def test_a_long_title_is_cut_on_a_character_boundary_never_refused():
    title = "磁盘" * 200  # multibyte: cut by characters, not bytes
    body = render_fields(replace(SOURCE, title=title), RULES)
    assert len(body["short_description"]) == FIELD_LENGTHS["short_description"]
    assert body["short_description"].endswith("…")
    body["short_description"].encode("utf-8")  # whole characters only


def test_templates_are_checked():
    assert template_problem("{title} on {labels.host}") is None
    assert "unknown field {host}" in str(template_problem("{host}"))
    assert "not a valid template" in str(template_problem("{title"))


TICKET = Incident("s1", "INC0012345", "2026-12-04 10:00:00", 0, "1", urgency="2")
SEEN = TicketSeen(SOURCE.incident_id, "s1", "INC0012345", "1", "2", 0, "", True)


def test_a_person_closing_reopening_and_changing_urgency_is_forwarded():
    closed = replace(TICKET, state="6", mod_count=1, extra={"close_notes": "freed space"})
    (resolve,) = forward(closed, SEEN, DEFAULT_SEVERITY_MAP)
    assert resolve.path == "/incident/resolve"
    assert resolve.body["resolution"] == "INC0012345 closed in ServiceNow. freed space"
    reopened = replace(TICKET, mod_count=2)
    (reopen,) = forward(reopened, replace(SEEN, state="6"), DEFAULT_SEVERITY_MAP)
    assert reopen.path == "/incident/reopen"
    urgent = replace(TICKET, urgency="1", mod_count=1)
    (reset,) = forward(urgent, SEEN, DEFAULT_SEVERITY_MAP)
    assert reset.path == "/incident/reset" and reset.body == {"incident_severity": "Critical"}


def test_the_version_fd_sync_wrote_is_not_forwarded():
    # The ledger's seen version is the one fd-sync's own write produced: nothing differs.
    assert forward(replace(TICKET, mod_count=1), SEEN, DEFAULT_SEVERITY_MAP) == []
    stopped = replace(SEEN, syncing=False)
    assert forward(replace(TICKET, state="6"), stopped, DEFAULT_SEVERITY_MAP) == []


def test_a_comment_is_forwarded_once_in_pieces_of_1024():
    commented = replace(TICKET, comment="x" * 1500)
    writes = forward(commented, SEEN, DEFAULT_SEVERITY_MAP)
    assert [len(w.body["comment"]) for w in writes] == [1024, len("INC0012345: ") + 1500 - 1024]
    assert all(w.body["mute_reply"] is True for w in writes)
    assert forward(commented, replace(SEEN, last_comment="x" * 1500), DEFAULT_SEVERITY_MAP) == []
    assert len(comment_writes("y" * 2048)) == 2


def test_own_writes_are_matched_once_each_to_the_entries_they_caused():
    entries = [("i_comm", "ServiceNow INC1: url"), ("i_comm", "by a person"), ("i_rslv", "")]
    own = [(7, "comment", "ServiceNow INC1: url"), (8, "resolve", "")]
    ours, matched = own_echoes(entries, own)
    assert ours == {0, 2} and matched == [7, 8]
    # A second resolve (a responder's, after a reopen) is not taken for fd-sync's.
    ours, matched = own_echoes([("i_rslv", ""), ("i_rslv", "")], [(8, "resolve", "")])
    assert ours == {0} and matched == [8]
