"""``fd-sync explain``: the route and why, the exact payload (compared with what a cycle then
really sends), and the escalation path with names."""

from __future__ import annotations

import json

import pytest

from fd_sync.simulators.flashduty import layer
from tests.helpers.simulated import change, open_incident


@pytest.fixture
def seeded(servicenow, flashduty):
    network = servicenow.add_group("Network")
    ann = servicenow.add_user("Ann Lee", user_name="ann", email="ann@example.com")
    servicenow.add_member(network, ann)
    person = flashduty.add_person("Ann Lee", "ann@example.com")
    oncall = flashduty.add_schedule("Network on-call")
    flashduty.add_channel("Network", channel_id=77)
    flashduty.add_rule(
        77,
        "Network P1",
        [layer(person_ids=(person,), escalate_window=10), layer(schedule_ids=(oncall,))],
        rule_id="65aa00bb",
    )
    flashduty.add_rule(77, "Catch-all", [layer(person_ids=(person,))], rule_id="65aa00cc")
    return {"network": network}


def routes(flashduty):
    return [
        {"name": "ignore-low", "match": {"priority": ["5"]}, "skip": True},
        {
            "name": "network-p1",
            "match": {"assignment_group": ["Network"], "priority": ["1", "2"]},
            "push_url": flashduty.push_url_servicenow,
            "rule_id": "65aa00bb",
            "personal_channels": ["sms"],
            "notify_group_members": True,
        },
    ]


def payload(output: str, heading: str) -> dict:
    """The JSON block printed under a heading line, indented by two spaces."""
    block = output.split(heading + "\n", 1)[1]
    lines = []
    for line in block.splitlines():
        lines.append(line[2:])
        if line == "  }":
            break
    return json.loads("\n".join(lines))


def test_explain_shows_the_route_the_payload_and_the_escalation_path(
    servicenow, flashduty, write_config, run_fd_sync, seeded
):
    config = str(
        write_config(
            "standard",
            servicenow={"sync_comments": True},
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url, "channel_id": 77},
            route=routes(flashduty),
        )
    )
    run_fd_sync("--config", config, "once")
    inc = open_incident(servicenow, assignment_group=seeded["network"], priority="1")
    servicenow.comment(inc["sys_id"], "looking")
    result = run_fd_sync("--config", config, "explain", inc["number"])
    assert result.code == 0, result.output
    out = result.stdout
    assert "  passed over 'ignore-low': priority is '1', not one of '5'" in out
    assert (
        "  matches 'network-p1': assignment_group = 'Network' (name), priority = '1' (value)" in out
    )
    assert "  sends to route:network-p1" in out
    assert "  rule_id 65aa00bb of channel 77:" in out
    assert "after 10 min unacknowledged  schedule Network on-call" in out
    explained = payload(out, "  create at route:network-p1 (servicenow format):")
    assert flashduty.requests_to("/event/push/") == []  # explain sends nothing
    # The payload shown is exactly what the next cycle sends.
    assert run_fd_sync("--config", config, "once").code == 0
    (sent,) = flashduty.events()
    assert sent.body == explained
    assert explained["comments"] == "looking"
    assert explained["notify_members"][0]["email"] == "ann@example.com"


def test_explain_a_move_and_a_skip(servicenow, flashduty, write_config, run_fd_sync, seeded):
    config = str(write_config("standard", route=routes(flashduty)))
    run_fd_sync("--config", config, "once")
    inc = open_incident(servicenow, priority="3")
    run_fd_sync("--config", config, "once")
    change(servicenow, inc["sys_id"], assignment_group=seeded["network"], priority="2")
    moved = run_fd_sync("--config", config, "explain", inc["number"])
    assert "  ledger: alert open at default" in moved.stdout
    assert "  resolve at default (standard format):" in moved.stdout
    assert "  create at route:network-p1 (servicenow format):" in moved.stdout
    assert "not shown: set [flashduty] app_key to preview it" in moved.stdout
    change(servicenow, inc["sys_id"], priority="5")
    skipped = run_fd_sync("--config", config, "explain", inc["number"])
    assert "  matches 'ignore-low': priority = '5' (value)" in skipped.stdout
    assert "  skip: this route sends nothing" in skipped.stdout


def test_explain_a_pinned_incident_and_one_without_a_rule(
    servicenow, flashduty, write_config, run_fd_sync, seeded
):
    config = str(
        write_config(
            "standard",
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url, "channel_id": 77},
            route=routes(flashduty),
        )
    )
    inc = open_incident(servicenow, priority="5")
    assert run_fd_sync("--config", config, "dispatch", inc["number"]).code == 0
    result = run_fd_sync("--config", config, "explain", inc["number"])
    assert "  pinned by fd-sync dispatch at default: routes do not apply until it closes" in (
        result.stdout
    )
    assert "  update at default (standard format):" in result.stdout
    assert "no rule_id: Flashduty chooses among the enabled rules of channel 77" in result.stdout
    assert "Catch-all (rule_id 65aa00cc)" in result.stdout


def test_explain_an_unknown_incident(servicenow, flashduty, write_config, run_fd_sync):
    result = run_fd_sync("--config", str(write_config()), "explain", "INC0404040")
    assert result.code == 64
    assert "no incident INC0404040 in ServiceNow" in result.stderr


def test_explain_tells_the_whole_story_from_the_ledger(
    servicenow, flashduty, write_config, run_fd_sync
):
    """Oldest first: the event sent with its request id, what was read back from Flashduty
    and the work note written; where it stands; and all of it without ServiceNow
    (issue 23, one timeline per incident)."""
    config = str(
        write_config(
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
            writeback={"enabled": True},
        )
    )
    assert run_fd_sync("--config", config, "once").code == 0
    inc = open_incident(servicenow)
    assert run_fd_sync("--config", config, "once").code == 0  # the create
    assert run_fd_sync("--config", config, "once").code == 0  # its Flashduty incident found
    incident_id = flashduty.incident_of(inc["sys_id"])
    flashduty.comment(incident_id, flashduty.add_person("Bob Ray"), "on it")
    assert run_fd_sync("--config", config, "once").code == 0  # the note
    (sent,) = flashduty.events()
    story = run_fd_sync("--config", config, "explain", inc["number"])
    assert story.code == 0, story.output
    text = story.stdout
    assert "history (from the ledger, oldest first)" in text
    delivered = f"create for Flashduty (default) delivered (HTTP 200, request {sent.request_id})"
    assert delivered in text
    assert "read from Flashduty: Comment by Bob Ray: on it" in text
    assert "-> ServiceNow work note written to ServiceNow" in text
    assert text.index("queued create") < text.index(delivered) < text.index("Comment by Bob")
    assert "alert open in Flashduty at default" in text and f"incident {incident_id}" in text

    data = json.loads(run_fd_sync("--config", config, "explain", inc["number"], "--json").stdout)
    assert data["alert_open"] is True and data["flashduty_incident_id"] == incident_id
    assert [m["side"] for m in data["timeline"]][:2] == ["flashduty", "flashduty"]
    assert data["next"]["route"] == "default"

    servicenow.inject(status=503, path="/api/now/table/", times=100)  # ServiceNow down
    offline = run_fd_sync("--config", config, "explain", inc["number"])
    assert offline.code == 0, offline.output
    assert "not read from ServiceNow" in offline.stdout and delivered in offline.stdout

    live = run_fd_sync("--config", config, "explain", inc["number"], "--online")
    assert f"{incident_id}: Triggered" in live.stdout


def test_explain_says_a_refused_create_never_reached_flashduty(
    servicenow, flashduty, write_config, run_fd_sync
):
    """It said "alert open ... next change would send update" (issue 23, item 10)."""
    config = str(write_config())
    assert run_fd_sync("--config", config, "once").code == 0
    inc = open_incident(servicenow)
    flashduty.inject(status=400, path="/event/push/", times=10)
    assert run_fd_sync("--config", config, "once").code == 76
    text = run_fd_sync("--config", config, "explain", inc["number"]).stdout
    assert "the alert never reached Flashduty: its create (event 1) was refused (HTTP 400" in text
    assert "fd-sync outbox retry 1" in text
    assert "nothing leaves until event 1 (the refused create) is retried" in text
    assert "alert open in Flashduty" not in text
