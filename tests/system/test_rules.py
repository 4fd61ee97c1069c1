"""``fd-sync rules``: a channel's enabled escalation rules with every id resolved to a name,
as a terminal table (checked against a golden file) and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fd_sync.simulators.flashduty import layer

GOLDEN = Path(__file__).parent / "golden" / "rules.txt"
CHANNEL = 2451002751131


def seed(flashduty):
    """The Network channel: two enabled rules (one uses a deleted person) and a disabled one."""
    ann = flashduty.add_person("Ann Lee", "ann@example.com")
    bob = flashduty.add_person("Bob Diaz", "bob@example.com")
    cid = flashduty.add_person("Cid Roe", "cid@example.com")
    gone = flashduty.add_person("Former Employee", "gone@example.com")
    netops = flashduty.add_team("NetOps", (ann, bob))
    dba = flashduty.add_team("DBA", (cid,))
    oncall = flashduty.add_schedule("Network on-call")
    flashduty.add_channel("Network", channel_id=CHANNEL)
    flashduty.add_rule(
        CHANNEL,
        "Network P1",
        [
            layer(person_ids=(ann, bob), escalate_window=15),
            layer(
                team_ids=(netops,),
                schedule_ids=(oncall,),
                escalate_window=30,
                force_escalate=True,
                critical=("voice",),
                warning=("sms",),
                info=(),
            ),
            layer(
                person_ids=(cid, gone),
                critical=("voice", "sms"),
                warning=("voice",),
                info=("email",),
            ),
        ],
        rule_id="6532a1b2c3d4e5f6a7b8c9d0",
    )
    flashduty.add_rule(
        CHANNEL,
        "Database",
        [layer(team_ids=(dba,), escalate_window=10, critical=("sms",), warning=("email",))],
        rule_id="6532a1b2c3d4e5f6a7b8c9d1",
    )
    flashduty.add_rule(CHANNEL, "Retired", [layer(person_ids=(bob,))], status="disabled")
    del flashduty.persons[gone]


@pytest.fixture
def rules_config(write_config, flashduty):
    return str(
        write_config(
            flashduty={
                "app_key": flashduty.app_key,
                "api_domain": flashduty.url,
                "channel_id": CHANNEL,
            }
        )
    )


def test_rules_table_matches_the_golden_file(flashduty, rules_config, run_fd_sync):
    seed(flashduty)
    result = run_fd_sync("--config", rules_config, "rules")
    assert result.code == 0, result.output
    assert result.stdout == GOLDEN.read_text()
    # Names are resolved in batches, not per id: one request per kind, plus the halving
    # around the deleted person that Flashduty refuses with ResourceNotFound.
    assert len(flashduty.requests_to("/person/infos")) == 5
    assert len(flashduty.requests_to("/team/infos")) == 1
    assert len(flashduty.requests_to("/schedule/infos")) == 1


def test_rules_json_keeps_ids_beside_names(flashduty, rules_config, run_fd_sync):
    seed(flashduty)
    result = run_fd_sync("--config", rules_config, "rules", "--json")
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    assert data["channel"] == {"channel_id": CHANNEL, "channel_name": "Network"}
    assert [r["rule_name"] for r in data["rules"]] == ["Network P1", "Database"]
    first, second, third = data["rules"][0]["layers"]
    assert [p["person_name"] for p in first["persons"]] == ["Ann Lee", "Bob Diaz"]
    assert first["persons"][0]["email"] == "ann@example.com"
    assert second["starts"] == "after 15 min unacknowledged"
    assert second["teams"][0]["team_name"] == "NetOps"
    assert second["schedules"][0]["schedule_name"] == "Network on-call"
    assert second["schedules"][0]["role_ids"] == [0]
    assert second["channels"] == {"critical": ["voice"], "warning": ["sms"], "info": []}
    assert third["persons"][1]["person_name"] is None  # deleted: the id stays


def test_another_channel_by_flag(flashduty, rules_config, run_fd_sync):
    other = flashduty.add_channel("Empty")
    result = run_fd_sync("--config", rules_config, "rules", "--channel", str(other))
    assert result.code == 0
    assert result.stdout == f"channel Empty ({other}): 0 enabled escalation rules\n"


@pytest.mark.parametrize(
    ("flashduty_keys", "code", "message"),
    [
        ({"app_key": None}, 78, "[flashduty] app_key is required for fd-sync rules"),
        ({"channel_id": None}, 78, "[flashduty] channel_id is not set: set it, or pass --channel"),
        ({"app_key": "wrong-key-0123"}, 77, "HTTP 401 Unauthorized: invalid app_key (request_id"),
        ({"channel_id": 404}, 76, "HTTP 400 ResourceNotFound: channel 404 not found (request_id"),
    ],
)
def test_rules_errors_are_one_line_with_the_fix(
    flashduty, write_config, run_fd_sync, flashduty_keys, code, message
):
    keys = {"app_key": flashduty.app_key, "api_domain": flashduty.url, "channel_id": CHANNEL}
    config = write_config(flashduty={**keys, **flashduty_keys})
    result = run_fd_sync("--config", str(config), "rules")
    assert result.code == code
    assert message in result.stderr
    assert result.stderr.count("fd-sync: ") == 1 and "Traceback" not in result.output
    assert "wrong-key-0123" not in result.output


def test_rules_need_no_servicenow_password_nor_push_url(flashduty, write_config, run_fd_sync):
    flashduty.add_channel("Network", channel_id=CHANNEL)
    config = write_config(
        servicenow={"password": None},
        flashduty={
            "push_url": None,
            "app_key": flashduty.app_key,
            "api_domain": flashduty.url,
            "channel_id": CHANNEL,
        },
    )
    assert run_fd_sync("--config", str(config), "rules").code == 0
