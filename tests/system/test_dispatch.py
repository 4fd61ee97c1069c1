"""``fd-sync dispatch``: fd-servicenow's "Send to Flashduty" dialog as a command, run as
operators run it (a real process), and the pin that makes later updates and the resolve
follow the incident to where it was sent."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from fd_sync.simulators.flashduty import layer
from tests.helpers.simulated import change, open_incident

PUSH = "/event/push/"


@pytest.fixture
def world(servicenow, flashduty):
    """Groups, users, and a Flashduty channel with an escalation rule."""
    ids = {
        "network": servicenow.add_group("Network"),
        "database": servicenow.add_group("Database"),
        "ann": servicenow.add_user("Ann Lee", user_name="ann", email="ann@example.com"),
        "bob": servicenow.add_user("Bob Diaz", user_name="bob", email="bob@example.com"),
    }
    servicenow.add_member(ids["network"], ids["ann"])
    servicenow.add_member(ids["network"], ids["bob"])
    channel = flashduty.add_channel("Network", channel_id=77)
    ids["rule"] = flashduty.add_rule(channel, "Network P1", [layer()], rule_id="65aa00bb")
    return ids


@pytest.fixture
def config(write_config, flashduty, world):
    """Default: the standard integration; Network: the ServiceNow one; priority 5: skipped."""
    return str(
        write_config(
            "standard",
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url, "channel_id": 77},
            route=[
                {"name": "ignore-low", "match": {"priority": ["5"]}, "skip": True},
                {
                    "name": "network",
                    "match": {"assignment_group": ["Network"]},
                    "push_url": flashduty.push_url_servicenow,
                    "rule_id": "route-rule",
                },
            ],
        )
    )


def request_ids(output: str) -> list[str]:
    return re.findall(r"request_id (\w+)\)", output)


def ledger_row(database, sys_id):
    conn = sqlite3.connect(database)
    try:
        return conn.execute(
            "SELECT alert_open, destination, pinned FROM incidents WHERE sys_id = ?", [sys_id]
        ).fetchone()
    finally:
        conn.close()


def test_dispatch_sends_prints_the_request_id_and_the_resolve_follows(
    servicenow, flashduty, config, run_fd_sync, database, world
):
    assert run_fd_sync("--config", config, "once").code == 0
    inc = open_incident(servicenow, priority="5", assignment_group=world["network"])
    result = run_fd_sync(
        "--config",
        config,
        "dispatch",
        inc["number"],
        "--channels",
        "sms,voice",
        "--members",
        "ann@example.com",
        "--rule",
        "65aa00bb",
        "--severity",
        "critical",
    )
    assert result.code == 0, result.output
    (event,) = flashduty.events()
    assert request_ids(result.stdout) == [event.request_id]
    assert f"{inc['number']} create at default: delivered (HTTP 200" in result.stdout
    assert "default takes standard alert events, which have no rule_id" in result.stdout
    body = event.body
    assert body["event_status"] == "Critical"  # the standard integration of the default route
    assert ledger_row(database, inc["sys_id"]) == (1, "default", 1)
    # The skip route does not resolve a dispatched incident; its updates follow it.
    change(servicenow, inc["sys_id"], short_description="still broken")
    assert run_fd_sync("--config", config, "once").code == 0
    # Resolved in ServiceNow: the resolve goes where it was dispatched.
    change(servicenow, inc["sys_id"], state="6")
    assert run_fd_sync("--config", config, "once").code == 0
    assert [(e.kind, e.fmt) for e in flashduty.events()] == [
        ("create", "standard"),
        ("update", "standard"),
        ("resolve", "standard"),
    ]
    assert flashduty.open_keys() == set()
    assert ledger_row(database, inc["sys_id"]) == (0, None, 0)


def test_the_dialogs_choices_reach_the_servicenow_body_and_stay_pinned(
    servicenow, flashduty, config, run_fd_sync, world
):
    run_fd_sync("--config", config, "once")
    inc = open_incident(servicenow, assignment_group=world["database"], urgency="3")
    result = run_fd_sync(
        "--config",
        config,
        "dispatch",
        inc["number"],
        "--group",
        "Network",
        "--group-members",
        "--channels",
        "teams,email",
        "--rule-name",
        "network p1",
    )
    assert result.code == 0, result.output
    (event,) = flashduty.events()
    assert event.fmt == "servicenow"  # --group Network: the Network route's integration
    body = event.body
    assert body["assignment_group"] == "Network"
    assert body["assignment_group_id"] == world["network"]
    assert body["personal_channels"] == "teams,email"
    assert body["rule_id"] == "65aa00bb"  # found by name through the OpenAPI
    assert [m["email"] for m in body["notify_members"]] == ["ann@example.com", "bob@example.com"]
    # A later change is an update to the same integration, with the same choices.
    change(servicenow, inc["sys_id"], short_description="worse")
    run_fd_sync("--config", config, "once")
    update = flashduty.events()[-1]
    assert (update.kind, update.fmt) == ("update", "servicenow")
    assert update.body["personal_channels"] == "teams,email"
    assert update.body["notify_members"] == body["notify_members"]


def test_dispatch_moves_an_open_alert_resolve_there_create_here(
    servicenow, flashduty, config, run_fd_sync, world
):
    run_fd_sync("--config", config, "once")
    inc = open_incident(servicenow, assignment_group=world["database"])
    run_fd_sync("--config", config, "once")
    result = run_fd_sync("--config", config, "dispatch", inc["number"], "--group", "Network")
    assert result.code == 0, result.output
    assert [(e.kind, e.fmt) for e in flashduty.events()] == [
        ("create", "standard"),
        ("resolve", "standard"),
        ("create", "servicenow"),
    ]
    assert request_ids(result.stdout) == [e.request_id for e in flashduty.events()[1:]]


def test_closed_incidents_need_force(servicenow, flashduty, config, run_fd_sync):
    inc = open_incident(servicenow)
    change(servicenow, inc["sys_id"], state="6")
    refused = run_fd_sync("--config", config, "dispatch", inc["number"])
    assert refused.code == 64
    assert "is Resolved in ServiceNow" in refused.stderr and "--force" in refused.stderr
    assert flashduty.requests == []
    forced = run_fd_sync("--config", config, "dispatch", inc["number"], "--force")
    assert forced.code == 0, forced.output
    assert len(flashduty.events()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["INC9999999"], "no incident INC9999999 in ServiceNow table 'incident'"),
        (["{number}", "--group", "Nope"], "no ServiceNow assignment group named 'Nope'"),
        (["{number}", "--members", "zed@example.com"], "no ServiceNow user with email or"),
        (
            ["{number}", "--rule-name", "Nope"],
            "no enabled escalation rule named 'Nope' in channel 77 (enabled: 'Network P1')",
        ),
        (["{number}", "--group-members"], "has no assignment group: pass --group NAME"),
    ],
)
def test_what_does_not_exist_is_a_usage_error(
    servicenow, flashduty, config, run_fd_sync, args, message
):
    inc = open_incident(servicenow)
    result = run_fd_sync("--config", config, "dispatch", *(a.format(**inc) for a in args))
    assert result.code == 64
    assert message in result.stderr and "Traceback" not in result.output
    assert flashduty.requests_to(PUSH) == []


def test_flashduty_refusal_is_reported_inline(servicenow, flashduty, config, run_fd_sync):
    inc = open_incident(servicenow)
    flashduty.inject(
        status=400,
        path=PUSH,
        body=json.dumps(
            {
                "request_id": "rid-refused-1",
                "error": {"code": "InvalidParameter", "message": "rule_id is not valid"},
            }
        ),
    )
    result = run_fd_sync("--config", config, "dispatch", inc["number"])
    assert result.code == 76
    line = (
        f"{inc['number']} create at default: refused by Flashduty: HTTP 400 InvalidParameter: "
        "rule_id is not valid (request_id rid-refused-1)"
    )
    assert line in result.stdout
    assert result.stderr.splitlines()[-1].startswith("fd-sync: Flashduty did not accept")


def test_flashduty_down_keeps_it_queued_for_the_next_run(
    servicenow, flashduty, config, run_fd_sync
):
    inc = open_incident(servicenow)
    flashduty.inject(status=503, path=PUSH, times=3)
    result = run_fd_sync("--config", config, "dispatch", inc["number"])
    assert result.code == 75
    assert "not delivered (HTTP 503" in result.stdout and "queued for the next run" in result.stdout
    assert "wait more than 10 s" in result.stderr
    assert run_fd_sync("--config", config, "once").code == 0
    assert flashduty.history()[inc["sys_id"]] == ["create"]


def test_dispatch_waits_behind_the_incidents_earlier_events(
    servicenow, flashduty, config, run_fd_sync
):
    run_fd_sync("--config", config, "once")
    inc = open_incident(servicenow)
    flashduty.inject(status=503, path=PUSH, times=3)
    assert run_fd_sync("--config", config, "once").code == 75  # the create is queued
    result = run_fd_sync("--config", config, "dispatch", inc["number"], "--severity", "info")
    assert result.code == 0, result.output
    assert flashduty.history()[inc["sys_id"]] == ["create", "update"]
    assert [e.body["event_status"] for e in flashduty.events()] == ["Critical", "Info"]


def test_dry_run_prints_the_bodies_and_changes_nothing(
    servicenow, flashduty, config, run_fd_sync, database, world
):
    run_fd_sync("--config", config, "once")
    inc = open_incident(servicenow, assignment_group=world["network"])
    result = run_fd_sync("--config", config, "dispatch", inc["number"], "--dry-run")
    assert result.code == 0, result.output
    assert f"{inc['number']}: route 'network' (assignment_group = 'Network' (name))" in (
        result.stdout
    )
    assert "would send create to route:network:" in result.stdout
    body = json.loads(result.stdout.split("would send create to route:network:\n", 1)[1])
    assert body["action_type"] == "insert" and body["rule_id"] == "route-rule"
    assert flashduty.requests_to(PUSH) == []
    assert ledger_row(database, inc["sys_id"]) is None


def test_dropping_a_refused_dispatch_unpins_the_incident(
    servicenow, flashduty, config, run_fd_sync, database
):
    inc = open_incident(servicenow, priority="5")  # skipped by its route
    flashduty.inject(status=400, path=PUSH, body='{"request_id": "r", "error": {"code": "X"}}')
    assert run_fd_sync("--config", config, "dispatch", inc["number"]).code == 76
    assert ledger_row(database, inc["sys_id"]) == (1, "default", 1)
    conn = sqlite3.connect(database)
    (event_id,) = conn.execute("SELECT id FROM outbox WHERE status = 'dead'").fetchone()
    conn.close()
    assert run_fd_sync("--config", config, "outbox", "drop", str(event_id)).code == 0
    assert ledger_row(database, inc["sys_id"]) == (0, None, 0)  # no alert, and no pin left


def test_a_number_in_lower_case_is_the_same_incident(servicenow, flashduty, config, run_fd_sync):
    """ServiceNow's numbers are upper case: ``dispatch inc0010002`` means INC0010002
    (issue 23, item 13)."""
    assert run_fd_sync("--config", config, "once").code == 0
    inc = open_incident(servicenow)
    result = run_fd_sync("--config", config, "dispatch", "--dry-run", inc["number"].lower())
    assert result.code == 0, result.output
    assert inc["number"] in result.stdout
