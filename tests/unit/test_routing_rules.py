"""Routes, pure: which incident goes where and why, and what a route table may say."""

from __future__ import annotations

from pathlib import Path

import pytest

from fd_sync import wiring
from fd_sync.config import parse
from fd_sync.core.incident import Incident
from fd_sync.core.routing import Route, Routing, route
from fd_sync.errors import ConfigError
from tests.helpers.config import to_toml
from tests.unit.test_config import PUSH, minimal
from tests.unit.test_payloads import incident as payload_incident

NET_ID = "a1" * 16

ROUTES = Routing(
    routes=(
        Route("ignore-low", match=(("priority", ("5",)),), skip=True),
        Route(
            "network-p1",
            match=(("assignment_group", ("Network", "Network-Core")), ("priority", ("1", "2"))),
            destination="route:network-p1",
        ),
        Route("by-label", match=(("urgency", ("1 - High",)),), destination="route:by-label"),
        Route("db-server", match=(("cmdb_ci", ("db-01",)),), destination="route:db"),
        Route("acme", match=(("company", ("ACME Corp",)), ("category", ("network",)))),
        Route("billing", match=(("u_service", ("billing",)),), destination="route:billing"),
    )
)


def incident(**kw: str) -> Incident:
    """State In Progress, urgency and priority 3, group Database (see test_payloads)."""
    extra = {"u_service": kw.pop("u_service", "")}
    return payload_incident(**{"urgency": "3", "priority": "3", "extra": extra, **kw})


@pytest.mark.parametrize(
    ("case", "inc", "expected"),
    [
        (
            "group by name, priority by value",
            incident(assignment_group="Network", priority="1"),
            "network-p1",
        ),
        (
            "group by sys_id",
            incident(assignment_group_id=NET_ID, assignment_group="Network-Core", priority="2"),
            "network-p1",
        ),
        (
            "names compare case-insensitively",
            incident(assignment_group="network-core", priority="1"),
            "network-p1",
        ),
        ("every key must match", incident(assignment_group="Network", priority="3"), "default"),
        ("skip route first", incident(assignment_group="Network", priority="5"), "ignore-low"),
        ("choice by list label", incident(urgency="1"), "by-label"),
        ("reference by name: cmdb_ci", incident(cmdb_ci="db-01", cmdb_ci_id="d" * 32), "db-server"),
        ("company and category", incident(company="ACME Corp", category="network"), "acme"),
        ("company without category", incident(company="ACME Corp"), "default"),
        ("extra field", incident(u_service="billing"), "billing"),
        ("nothing matches", incident(), "default"),
    ],
)
def test_route_matching(case, inc, expected):
    assert route(inc, ROUTES).route.name == expected, case


def test_match_says_why_and_why_not():
    match = route(incident(assignment_group="Network", priority="1"), ROUTES)
    assert match.reasons == ("assignment_group = 'Network' (name)", "priority = '1' (value)")
    assert match.passed_over == (("ignore-low", "priority is '1', not one of '5'"),)
    by_id = route(
        incident(assignment_group_id=NET_ID, assignment_group="X", priority="2"),
        Routing(routes=(Route("n", match=(("assignment_group", (NET_ID,)),)),)),
    )
    assert by_id.reasons == (f"assignment_group = '{NET_ID}' (sys_id)",)


def test_skip_and_default_skip_have_no_target():
    assert route(incident(priority="5"), ROUTES).target is None
    skip_default = Routing(default=Route("default", skip=True))
    assert route(incident(), skip_default).target is None
    assert route(incident(), ROUTES).target == "default"


def test_a_route_without_match_keys_takes_everything():
    catch_all = Routing(routes=(Route("all", destination="route:all"),))
    assert route(incident(), catch_all).target == "route:all"


# --- configuration ------------------------------------------------------------------------

OTHER = "https://api.flashcat.cloud/event/push/alert/standard?integration_key=rOuTeSeCrEt99"


def document(*routes: dict, **sections: dict) -> dict:
    doc = minimal(**sections)
    doc["route"] = list(routes)
    return doc


@pytest.mark.parametrize(
    ("routes", "env", "message"),
    [
        ([{"match": {"priority": ["1"]}}], {}, "[[route]] #1 name: is required"),
        ([{"name": "a"}, {"name": "a"}], {}, "[[route]] #2 'a' name: is used by an earlier route"),
        (
            [{"name": "a", "match": {"assignment_grop": ["x"]}}],
            {},
            "unknown key 'assignment_grop' (did you mean 'assignment_group'?)",
        ),
        ([{"name": "a", "match": {"u_service": ["x"]}}], {}, "[servicenow] extra_fields"),
        ([{"name": "a", "match": {"priority": []}}], {}, "priority must be a list of values"),
        ([{"name": "a", "personal_channels": ["pager"]}], {}, "unknown channel 'pager'"),
        ([{"name": "a", "severity": "High"}], {}, "must be one of 'Critical', 'Warning', 'Info'"),
        ([{"name": "a", "skip": True, "rule_id": "r"}], {}, "a skip route sends nothing"),
        ([{"name": "a", "push_url": OTHER, "push_url_env": "X"}], {}, "give only one of"),
        (
            [{"name": "a", "push_url_env": "FD_ROUTE_URL"}],
            {},
            "environment variable FD_ROUTE_URL is not set",
        ),
        (
            [{"name": "a", "push_url": "https://example.com/hook"}],
            {},
            "must be a Flashduty push URL",
        ),
        ([{"name": "a", "labels": {"bad-key": "x"}}], {}, "'bad-key' is not a Flashduty label"),
        ([{"name": "a", "notify_members": ["ann,bob"]}], {}, "notify_members"),
        ([{"name": "a b"}], {}, "name: is required: letters"),
        ([{"name": "a", "push_url": 5}], {}, "expected a string, got a non-string value"),
        ([{"name": "a", "mtach": {}}], {}, "unknown key (did you mean 'match'?)"),
    ],
)
def test_route_mistakes_name_the_route_and_the_key(routes, env, message):
    with pytest.raises(ConfigError) as info:
        parse(document(*routes), path=Path("/etc/fd-sync/config.toml"), env=env)
    assert message in str(info.value)
    assert str(info.value).startswith("/etc/fd-sync/config.toml: ")
    assert info.value.exit_code == 78


def test_route_push_url_sources_and_shared_destinations(tmp_path):
    (tmp_path / "net.url").write_text(OTHER + "\n")
    cred = tmp_path / "creds"
    cred.mkdir()
    (cred / "db_url").write_text(PUSH + "-db")
    cfg = parse(
        document(
            {"name": "net", "push_url_file": "net.url"},
            {"name": "net2", "push_url_env": "FD_NET_URL", "match": {"priority": ["1"]}},
            {"name": "db", "push_url_credential": "db_url"},
            {"name": "same-as-default", "push_url": PUSH},
        ),
        path=tmp_path / "config.toml",
        env={"FD_NET_URL": OTHER, "CREDENTIALS_DIRECTORY": str(cred)},
    )
    names = [r.destination for r in cfg.routing.routes]
    assert names == ["route:net", "route:net", "route:db", "default"]
    assert {d.name for d in cfg.routing.destinations} == {"route:net", "route:db"}
    assert "rOuTeSeCrEt99" in cfg.secrets()
    built = wiring.destinations(cfg)
    # Routes sharing a URL share one client, hence one rate limiter.
    assert built["route:net2"] is built["route:net"]
    assert built["route:same-as-default"] is built["default"]
    assert built["route:db"].push_format == "servicenow"


def test_an_example_routing_file_parses(tmp_path):
    text = to_toml(
        document(
            {
                "name": "network-p1",
                "match": {"assignment_group": ["Network"], "priority": [1, 2]},
                "push_url": OTHER,
                "rule_id": "6532aa",
                "personal_channels": ["sms", "voice"],
                "notify_members": ["ann@example.com", "bob"],
                "notify_group_members": True,
                "severity": "Critical",
                "labels": {"service": "network"},
            },
            {"name": "ignore-low", "match": {"priority": ["5"]}, "skip": True},
            routing={"default": "send", "severity_by": "priority"},
        )
    )
    import tomllib

    cfg = parse(tomllib.loads(text), path=tmp_path / "c.toml", env={})
    first = cfg.routing.routes[0]
    assert first.match == (("assignment_group", ("Network",)), ("priority", ("1", "2")))
    assert first.notify_members == ("ann@example.com", "bob") and first.severity == "Critical"
    assert cfg.routing.severity_by == "priority"
