"""What fd-sync sends is what Flashduty documents (flashduty-docs, servicenow-sync.mdx).

- "Business Rules" script: ``state``, ``impact`` and ``urgency`` through
  ``current.getDisplayValue(...)`` (the instance's own labels), ``comments`` the latest
  additional comment, ``action_type`` "insert" only when ``sys_created_on ==
  sys_updated_on``, else "update";
- "Status Mapping": On Hold is Snoozed (2 hours), Resolved/Closed/Canceled close.
"""

from __future__ import annotations

import json
from datetime import timedelta

from fd_sync.store.state import CHOICE_LABELS
from tests.helpers.simulated import START, open_incident

CHOICES = "/api/now/table/sys_choice"


def bodies(flashduty, sys_id):
    return [e.body for e in flashduty.events() if e.key == sys_id]


def test_a_record_never_changed_is_an_insert_every_other_create_an_update(
    servicenow, flashduty, harness
):
    h = harness("servicenow")
    h.cycle()
    new = open_incident(servicenow)
    h.cycle()
    older = open_incident(servicenow)
    servicenow.clock.advance(1)
    servicenow.update(older["sys_id"], urgency="2")  # changed before fd-sync saw it
    h.cycle()
    assert bodies(flashduty, new["sys_id"])[0]["action_type"] == "insert"
    assert bodies(flashduty, older["sys_id"])[0]["action_type"] == "update"
    assert flashduty.history()[older["sys_id"]] == ["create"]  # an update opens it


def test_a_reopened_incident_is_sent_as_an_update(servicenow, flashduty, harness):
    h = harness("servicenow")
    h.cycle()
    inc = open_incident(servicenow)
    h.cycle()
    servicenow.clock.advance(1)
    servicenow.resolve(inc["sys_id"])
    h.cycle()
    servicenow.clock.advance(1)
    servicenow.update(inc["sys_id"], state="2")
    h.cycle()
    actions = [b["action_type"] for b in bodies(flashduty, inc["sys_id"])]
    assert actions == ["insert", "rule_update", "update"]
    assert flashduty.history()[inc["sys_id"]] == ["create", "resolve", "create"]


def test_a_backfill_sends_updates(servicenow, flashduty, harness):
    inc = servicenow.create(short_description="from before the install", urgency="1")
    servicenow.clock.advance(60)
    servicenow.update(inc["sys_id"], short_description="changed since")
    h = harness("servicenow")
    h.cycle(since=START - timedelta(hours=1))
    assert [b["action_type"] for b in bodies(flashduty, inc["sys_id"])] == ["update"]


def test_choice_fields_carry_the_instances_labels_in_both_formats(servicenow, flashduty, harness):
    servicenow.set_choice("urgency", "1", "1 - Business critical")
    servicenow.set_choice("state", "3", "Waiting for vendor")  # a customised state label
    h = harness("servicenow")
    h.cycle()
    inc = open_incident(servicenow, urgency="1", impact="2", state="3")
    h.cycle()
    (body,) = bodies(flashduty, inc["sys_id"])
    assert (body["urgency"], body["impact"], body["state"]) == (
        "1 - Business critical",
        "2 - Medium",
        "Waiting for vendor",
    )
    standard = harness("standard")  # the same ledger: the labels are cached in it
    servicenow.clock.advance(1)
    servicenow.update(inc["sys_id"], short_description="now in the standard format")
    standard.cycle()
    labels = flashduty.events()[-1].body["labels"]
    assert labels["urgency"] == "1 - Business critical" and labels["state"] == "Waiting for vendor"


def test_a_route_severity_is_sent_as_the_label_of_its_urgency(servicenow, flashduty, harness):
    servicenow.set_choice("urgency", "1", "1 - Business critical")
    h = harness("servicenow", route=[{"name": "all", "severity": "Critical"}])
    h.cycle()
    inc = open_incident(servicenow, urgency="3")
    h.cycle()
    assert bodies(flashduty, inc["sys_id"])[0]["urgency"] == "1 - Business critical"


def test_the_labels_cost_one_request_an_hour(servicenow, flashduty, harness):
    h = harness("servicenow")
    h.cycle()
    h.cycle()
    assert servicenow.requests_to(CHOICES) == []  # nothing to render: not read (issue 24)
    open_incident(servicenow)
    h.cycle()
    h.cycle()
    (read,) = servicenow.requests_to(CHOICES)
    assert read.query["sysparm_query"] == (
        "name=incident^elementINstate,impact,urgency,priority^inactive=false^language=en"
    )
    cached = h.ledger.state.get_json(CHOICE_LABELS)
    assert cached["source"] == "instance" and cached["labels"]["urgency"]["2"] == "2 - Medium"
    cached["fetched_at"] = (h.ledger.clock() - timedelta(minutes=61)).isoformat()
    h.ledger.state.set_json(CHOICE_LABELS, cached)  # an hour later
    h.cycle()
    assert len(servicenow.requests_to(CHOICES)) == 1  # idle: the labels can wait
    open_incident(servicenow)
    h.cycle()
    h.cycle()
    assert len(servicenow.requests_to(CHOICES)) == 2


def test_unreadable_choices_fall_back_to_base_labels_said_once(
    servicenow, flashduty, harness, _logs_without_secrets
):
    servicenow.deny_tables.add("sys_choice")
    h = harness("servicenow")
    h.cycle()
    inc = open_incident(servicenow, urgency="1")
    report = h.cycle()
    assert report.exit_code == 0  # a missing read right is reported, not a failed cycle
    assert bodies(flashduty, inc["sys_id"])[0]["urgency"] == "1 - High"
    cached = h.ledger.state.get_json(CHOICE_LABELS)
    assert cached["source"] == "base"
    cached["fetched_at"] = (h.ledger.clock() - timedelta(minutes=61)).isoformat()
    h.ledger.state.set_json(CHOICE_LABELS, cached)
    open_incident(servicenow, urgency="2")
    h.cycle()  # tried again an hour later, still refused: not said again
    assert len(servicenow.requests_to(CHOICES)) == 2
    events = [json.loads(line)["event"] for line in _logs_without_secrets.getvalue().splitlines()]
    assert events.count("choice_labels_unreadable") == 1


def test_comments_are_sent_by_default(servicenow, flashduty, harness):
    h = harness("servicenow")  # no sync_comments key: the default
    h.cycle()
    inc = open_incident(servicenow)
    servicenow.comment(inc["sys_id"], "customer called")
    h.cycle()
    assert bodies(flashduty, inc["sys_id"])[-1]["comments"] == "customer called"


def test_on_hold_is_sent_and_snoozes_the_flashduty_incident(servicenow, flashduty, harness):
    h = harness("servicenow")
    h.cycle()
    inc = open_incident(servicenow)
    h.cycle()
    servicenow.clock.advance(1)
    servicenow.update(inc["sys_id"], state="3")
    h.cycle()
    assert bodies(flashduty, inc["sys_id"])[-1]["state"] == "On Hold"
    assert flashduty.progress[inc["sys_id"]] == "Snoozed"


def test_a_backfill_asks_comments_only_where_an_event_may_follow(servicenow, flashduty, harness):
    """Comments are on by default, so a backfill of closed rows must not pay for them."""
    closed = [servicenow.create(short_description=f"old {n}", state="7") for n in range(30)]
    opened = servicenow.create(short_description="still open", urgency="1")
    servicenow.comment(opened["sys_id"], "customer waiting")
    h = harness("servicenow")
    h.cycle(since=START - timedelta(hours=1))
    (journal,) = servicenow.requests_to("/api/now/table/sys_journal_field")
    query = journal.query["sysparm_query"]
    assert opened["sys_id"] in query
    assert not any(row["sys_id"] in query for row in closed)
    assert bodies(flashduty, opened["sys_id"])[0]["comments"] == "customer waiting"
