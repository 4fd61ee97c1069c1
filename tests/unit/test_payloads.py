"""Both push formats, Flashduty's limits enforced by truncation, and the severity mapping."""

from __future__ import annotations

import pytest

from fd_sync.core.decide import Kind
from fd_sync.core.incident import Incident
from fd_sync.core.payloads import (
    DESCRIPTION_LIMIT,
    LABEL_VALUE_LIMIT,
    MAX_LABELS,
    TITLE_LIMIT,
    Extras,
    Member,
    labels,
    servicenow_body,
    severity,
    standard_body,
)

LINK = "https://acme.service-now.com/incident.do?sys_id=abc"


def incident(**kw) -> Incident:
    base = dict(
        sys_id="a" * 32,
        number="INC0010001",
        updated_on="2026-11-01 08:00:00",
        mod_count=1,
        state="2",
        short_description="Disk full on db-01",
        description="The disk is full.",
        impact="1",
        urgency="2",
        priority="2",
        assignment_group="Database",
        assignment_group_id="b" * 32,
        assigned_to="Ann Lee",
        assigned_to_id="c" * 32,
    )
    base.update(kw)
    return Incident(**base)


@pytest.mark.parametrize(
    ("urgency", "expected"), [("1", "Critical"), ("2", "Warning"), ("3", "Info"), ("", "Warning")]
)
def test_severity_follows_urgency(urgency, expected):
    assert severity(incident(urgency=urgency)) == expected


def test_standard_create_and_resolve():
    body = standard_body(Kind.CREATE, incident(), link=LINK)
    assert body["event_status"] == "Warning"
    assert body["alert_key"] == "a" * 32
    assert body["title_rule"] == "INC0010001: Disk full on db-01"
    assert body["description"] == "The disk is full."
    assert body["labels"]["assignment_group"] == "Database"
    assert body["labels"]["priority"] == "2 - High"
    assert body["labels"]["link"] == LINK
    resolved = standard_body(Kind.RESOLVE, incident(state="6"), link=LINK)
    assert resolved["event_status"] == "Ok"
    assert resolved["alert_key"] == "a" * 32
    assert resolved["title_rule"]  # required even to recover


def test_servicenow_format_matches_the_documented_business_rule():
    """servicenow-sync.mdx, "Business Rules" script: choice fields through
    getDisplayValue() (a base instance's labels), insert only for a new record."""
    new = incident(created_on="2026-11-01 08:00:00")  # never changed since it was created
    body = servicenow_body(Kind.CREATE, new)
    assert body == {
        "action_type": "insert",
        "number": "INC0010001",
        "sys_id": "a" * 32,
        "short_description": "Disk full on db-01",
        "description": "The disk is full.",
        "impact": "1 - High",
        "urgency": "2 - Medium",
        "state": "In Progress",
        "comments": "",
        "personal_channels": "",
        "assignment_group": "Database",
        "assignment_group_id": "b" * 32,
        "notify_members": [],
        "rule_id": "",
        "teams_id": "",
        "sys_updated_on": "2026-11-01 08:00:00",  # a mapped field: the version
    }
    assert servicenow_body(Kind.UPDATE, incident())["action_type"] == "update"
    assert servicenow_body(Kind.RESOLVE, incident(state="7")) == {
        "action_type": "rule_update",
        "number": "INC0010001",
        "sys_id": "a" * 32,
        "state": "Closed",
    }


def test_limits_are_enforced_by_truncation():
    huge = incident(
        short_description="t" * 5000, description="d" * 100_000, assignment_group="g" * 5000
    )
    body = standard_body(Kind.CREATE, huge, link=LINK)
    assert len(body["title_rule"]) == TITLE_LIMIT
    assert body["title_rule"].endswith("…")
    assert len(body["description"]) == DESCRIPTION_LIMIT
    assert len(body["labels"]["assignment_group"]) == LABEL_VALUE_LIMIT
    sn = servicenow_body(Kind.CREATE, huge)
    assert len(sn["short_description"]) == TITLE_LIMIT
    assert len(sn["description"]) == DESCRIPTION_LIMIT


def test_labels_keep_flashduty_rules():
    extra = {f"k{i}": "v" for i in range(80)} | {"bad-key": "x", "9starts_with_digit": "y"}
    out = labels(incident(), link=LINK, extra=extra)
    assert len(out) == MAX_LABELS
    assert "bad-key" not in out and "9starts_with_digit" not in out
    assert "assigned_to" in out  # built-in labels come first


# --- what routes add ---------------------------------------------------------------------

EXTRAS = Extras(
    route="network-p1",
    severity="Critical",
    labels=(("service", "network"), ("state", "overridden")),
    rule_id="6532aa",
    personal_channels=("sms", "voice"),
    notify_members=(Member("u" * 32, "Ann Lee", "ann@example.com"),),
    teams_id="teams-1",
)


def test_servicenow_body_carries_the_route_extras():
    body = servicenow_body(Kind.CREATE, incident(urgency="3", comment="on it"), EXTRAS)
    assert body["personal_channels"] == "sms,voice"
    assert body["notify_members"] == [
        {"sys_id": "u" * 32, "name": "Ann Lee", "email": "ann@example.com"}
    ]
    assert body["rule_id"] == "6532aa" and body["teams_id"] == "teams-1"
    assert body["comments"] == "on it"
    # No severity field in this format: the route's Critical travels as the label of
    # urgency 1, which Flashduty maps to Critical.
    assert body["urgency"] == "1 - High"
    assert servicenow_body(Kind.CREATE, incident(urgency="1"), EXTRAS)["urgency"] == "1 - High"
    assert servicenow_body(Kind.CREATE, incident(urgency="3"))["urgency"] == "3 - Low"


def test_a_resolve_for_an_incident_still_open_closes_the_alert():
    # Moved to another route, or to a skip route: its state is open, its alert here must close.
    assert servicenow_body(Kind.RESOLVE, incident(state="2"))["state"] == "Resolved"
    assert servicenow_body(Kind.RESOLVE, incident(state="8"))["state"] == "Canceled"
    assert standard_body(Kind.RESOLVE, incident(state="2"), link=LINK)["event_status"] == "Ok"


def test_standard_body_takes_severity_and_labels_from_the_route():
    body = standard_body(
        Kind.CREATE, incident(urgency="3", category="network"), link=LINK, extras=EXTRAS
    )
    assert body["event_status"] == "Critical"
    assert body["labels"]["service"] == "network"
    assert body["labels"]["route"] == "network-p1"
    assert body["labels"]["category"] == "network"
    assert body["labels"]["state"] == "overridden"  # a route label replaces a built-in one


def test_extras_round_trip_through_the_outbox_json():
    import json

    assert Extras.from_dict(json.loads(json.dumps(EXTRAS.to_dict()))) == EXTRAS
    assert Extras.from_dict(None) == Extras()
