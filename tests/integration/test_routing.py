"""Cycles over real HTTP that move open alerts between Flashduty integrations by route."""

from __future__ import annotations

from fd_sync import wiring
from fd_sync.store.ledger import Ledger
from tests.helpers.simulated import change, open_incident

# --- cycles that move alerts --------------------------------------------------------------


def network_routes(flashduty, **extra):
    """Default: the standard integration; group Network: the ServiceNow integration."""
    return [
        {"name": "ignore-low", "match": {"priority": ["5"]}, "skip": True},
        {
            "name": "network",
            "match": {"assignment_group": ["Network"]},
            "push_url": flashduty.push_url_servicenow,
            **extra,
        },
    ]


def sent(flashduty):
    """(incident, kind, which integration) for every accepted event, in arrival order."""
    return [(e.key, e.kind, e.fmt) for e in flashduty.events()]


def test_reassignment_moves_the_alert_resolve_there_then_create_here(
    servicenow, flashduty, harness
):
    network = servicenow.add_group("Network")
    database = servicenow.add_group("Database")
    h = harness("standard", route=network_routes(flashduty))
    h.cycle()
    inc = open_incident(servicenow, assignment_group=database)
    key = inc["sys_id"]
    h.cycle()
    change(servicenow, key, assignment_group=network)
    h.cycle()
    change(servicenow, key, assignment_group=database)
    h.cycle()
    assert sent(flashduty) == [
        (key, "create", "standard"),
        (key, "resolve", "standard"),
        (key, "create", "servicenow"),
        (key, "resolve", "servicenow"),
        (key, "create", "standard"),
    ]
    assert h.ledger.entries([key])[key].alert_at == "default"


def test_a_skip_route_resolves_an_open_alert_and_sends_nothing_else(servicenow, flashduty, harness):
    h = harness("standard", route=network_routes(flashduty))
    h.cycle()
    low = open_incident(servicenow, priority="5")
    inc = open_incident(servicenow, priority="3")
    h.cycle()
    change(servicenow, inc["sys_id"], priority="5")
    h.cycle()
    change(servicenow, low["sys_id"], short_description="still low")
    change(servicenow, inc["sys_id"], priority="2")
    h.cycle()
    assert low["sys_id"] not in flashduty.history()
    assert flashduty.history()[inc["sys_id"]] == ["create", "resolve", "create"]


def test_default_skip_sends_only_what_routes_match(servicenow, flashduty, harness):
    network = servicenow.add_group("Network")
    h = harness("standard", routing={"default": "skip"}, route=network_routes(flashduty))
    h.cycle()
    unrouted = open_incident(servicenow)
    routed = open_incident(servicenow, assignment_group=network)
    report = h.cycle()
    assert sent(flashduty) == [(routed["sys_id"], "create", "servicenow")]
    assert unrouted["sys_id"] not in flashduty.history()
    assert report.events["create"] == 1


def test_routes_match_references_by_name_and_extra_fields(servicenow, flashduty, harness):
    servicenow.add_column("u_service")
    ci = servicenow.add_ci("db-01")
    acme = servicenow.add_company("ACME Corp")
    routes = [
        {"name": "db", "match": {"cmdb_ci": ["db-01"]}, "push_url": flashduty.push_url_servicenow},
        {
            "name": "acme",
            "match": {"company": ["acme corp"], "category": ["network"]},
            "push_url": flashduty.push_url_servicenow,
        },
        {"name": "billing", "match": {"u_service": ["billing"]}, "skip": True},
    ]
    h = harness("standard", servicenow={"extra_fields": ["u_service"]}, route=routes)
    h.cycle()
    by_ci = open_incident(servicenow, cmdb_ci=ci)
    by_company = open_incident(servicenow, company=acme, category="network")
    skipped = open_incident(servicenow, u_service="billing")
    plain = open_incident(servicenow, company=acme)
    h.cycle()
    assert sorted(sent(flashduty)) == sorted(
        [
            (by_ci["sys_id"], "create", "servicenow"),
            (by_company["sys_id"], "create", "servicenow"),
            (plain["sys_id"], "create", "standard"),
        ]
    )
    assert skipped["sys_id"] not in flashduty.history()
    standard = next(e.body for e in flashduty.events() if e.fmt == "standard")
    assert standard["labels"]["company"] == "ACME Corp"


def test_reordering_routes_that_share_a_url_moves_nothing(
    servicenow, flashduty, make_config, harness
):
    routes = [
        {"name": "a", "match": {"priority": ["1"]}, "push_url": flashduty.push_url_servicenow},
        {"name": "b", "match": {"priority": ["2"]}, "push_url": flashduty.push_url_servicenow},
    ]
    h = harness("standard", route=routes)
    h.cycle()
    inc = open_incident(servicenow, priority="2")
    h.cycle()
    assert h.ledger.entries([inc["sys_id"]])[inc["sys_id"]].destination == "route:a"
    # Reordered: the shared destination is now named after "b"; "route:a" is an alias.
    h.config = make_config("standard", route=list(reversed(routes)))
    change(servicenow, inc["sys_id"], priority="1", short_description="worse")
    h.cycle()
    assert sent(flashduty) == [
        (inc["sys_id"], "create", "servicenow"),
        (inc["sys_id"], "update", "servicenow"),
    ]
    assert h.ledger.entries([inc["sys_id"]])[inc["sys_id"]].destination == "route:b"


def test_a_route_removed_while_its_alert_is_open_keeps_the_resolve_for_later(
    servicenow, flashduty, make_config, harness
):
    routes = network_routes(flashduty)
    network = servicenow.add_group("Network")
    h = harness("standard", route=routes)
    h.cycle()
    inc = open_incident(servicenow, assignment_group=network)
    h.cycle()
    h.config = make_config("standard", route=routes[:1])  # the network route is gone
    change(servicenow, inc["sys_id"], state="6")
    report = h.cycle()
    assert report.pending == 1  # the resolve is kept, not sent anywhere else, not lost
    assert flashduty.history()[inc["sys_id"]] == ["create"]
    h.config = make_config("standard", route=routes)  # restored
    h.cycle()
    assert flashduty.history()[inc["sys_id"]] == ["create", "resolve"]


def test_dry_run_shows_where_events_would_go(servicenow, flashduty, harness, database):

    network = servicenow.add_group("Network")
    h = harness("standard", route=network_routes(flashduty))
    h.cycle()
    inc = open_incident(servicenow, urgency="2")
    h.cycle()
    change(servicenow, inc["sys_id"], assignment_group=network)
    with Ledger(database, readonly=True) as ledger:
        report = wiring.cycle(h.config, ledger).run(dry_run=True)
    assert [p.line() for p in report.planned] == [
        f"{inc['number']} resolve Ok",
        f"{inc['number']} create Warning -> route:network",
    ]
