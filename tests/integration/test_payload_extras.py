"""What routes add to a body, over real HTTP: people to notify resolved from sys_user and
sys_user_grmember in batches, the latest comment from sys_journal_field, and extras stored
with the queued event so that later changes and outages cannot alter it."""

from __future__ import annotations

from fd_sync.errors import EX_NOPERM, EX_OK
from tests.helpers.simulated import change, open_incident

PUSH = "/event/push/"


def people(servicenow):
    """Two groups; Network has two active members and one inactive."""
    network = servicenow.add_group("Network")
    database = servicenow.add_group("Database")
    ann = servicenow.add_user("Ann Lee", user_name="ann", email="ann@example.com")
    bob = servicenow.add_user("Bob Diaz", user_name="bob", email="bob@example.com")
    old = servicenow.add_user("Old Timer", user_name="old", email="old@example.com", active=False)
    cid = servicenow.add_user("Cid Roe", user_name="cid", email="cid@example.com")
    for user in (ann, bob, old):
        servicenow.add_member(network, user)
    servicenow.add_member(database, cid)
    return {"network": network, "database": database, "ann": ann, "bob": bob, "cid": cid}


ROUTE = {
    "name": "network-p1",
    "match": {"assignment_group": ["Network", "Database"]},
    "rule_id": "6532aa",
    "personal_channels": ["sms", "voice"],
    "notify_members": ["cid@example.com", "bob"],
    "notify_group_members": True,
    "teams_id": "teams-42",
    "severity": "Critical",
}


def reads(servicenow, table):
    """Requests to exactly this table (sys_user is a prefix of sys_user_grmember)."""
    return sum(1 for r in servicenow.requests if r.path == f"/api/now/table/{table}")


def member(servicenow, sys_id):
    row = servicenow.tables["sys_user"][sys_id]
    return {"sys_id": sys_id, "name": row["name"], "email": row["email"]}


def test_the_servicenow_body_carries_what_the_route_says(servicenow, flashduty, harness):
    ids = people(servicenow)
    h = harness("servicenow", route=[ROUTE], servicenow={"sync_comments": True})
    h.cycle()
    inc = open_incident(servicenow, assignment_group=ids["network"], urgency="3")
    servicenow.comment(inc["sys_id"], "first look: the switch rebooted")
    servicenow.clock.advance(1)
    servicenow.comment(inc["sys_id"], "vendor ticket opened")
    h.cycle()
    (event,) = flashduty.events()
    body = event.body
    assert body["rule_id"] == "6532aa" and body["teams_id"] == "teams-42"
    assert body["personal_channels"] == "sms,voice"
    assert body["urgency"] == "1 - High"  # severity Critical, as the label of urgency 1
    assert body["assignment_group"] == "Network"
    assert body["assignment_group_id"] == ids["network"]
    assert body["comments"] == "vendor ticket opened"  # the latest one
    # Named members first, then the group's active members, each once.
    assert body["notify_members"] == [
        member(servicenow, ids["cid"]),
        member(servicenow, ids["bob"]),
        member(servicenow, ids["ann"]),
    ]


def test_a_new_comment_is_an_update(servicenow, flashduty, harness):
    h = harness("servicenow", servicenow={"sync_comments": True})
    h.cycle()
    inc = open_incident(servicenow)
    h.cycle()
    servicenow.clock.advance(1)
    servicenow.comment(inc["sys_id"], "customer called again")
    h.cycle()
    servicenow.update(inc["sys_id"], work_notes="internal only")
    h.cycle()
    assert flashduty.history()[inc["sys_id"]] == ["create", "update"]
    assert flashduty.events()[-1].body["comments"] == "customer called again"


def test_lookups_are_batched_never_one_per_incident(servicenow, flashduty, harness):
    ids = people(servicenow)
    h = harness(
        "servicenow",
        route=[ROUTE],
        servicenow={"sync_comments": True, "page_size": 10},
    )
    h.cycle()
    groups = [ids["network"], ids["database"]]
    rows = [open_incident(servicenow, assignment_group=groups[n % 2]) for n in range(25)]
    h.cycle()
    assert len(flashduty.events()) == 25
    # One request per page for comments (3 pages), one per cycle for users and for groups.
    assert reads(servicenow, "sys_journal_field") == 3
    assert reads(servicenow, "sys_user_grmember") == 1
    assert reads(servicenow, "sys_user") == 1
    before = len(servicenow.requests)
    h.cycle()  # nothing changed: the look-back re-read asks ServiceNow for nothing else
    assert {r.path for r in servicenow.requests[before:]} == {"/api/now/table/incident"}
    change(servicenow, rows[0]["sys_id"], short_description="worse")
    h.cycle()  # a new cycle looks people up again, once
    assert reads(servicenow, "sys_user") == 2


def test_an_unknown_member_is_logged_and_the_rest_is_sent(servicenow, flashduty, harness):
    ids = people(servicenow)
    route = {
        **ROUTE,
        "notify_members": ["nobody@example.com", "ann"],
        "notify_group_members": False,
    }
    h = harness("servicenow", route=[route])
    h.cycle()
    open_incident(servicenow, assignment_group=ids["database"])
    assert h.cycle().exit_code == EX_OK
    assert flashduty.events()[0].body["notify_members"] == [member(servicenow, ids["ann"])]


def test_severity_by_priority_and_route_labels_in_the_standard_body(servicenow, flashduty, harness):
    h = harness(
        "standard",
        routing={"severity_by": "priority"},
        route=[{"name": "svc", "match": {"priority": ["4"]}, "labels": {"service": "web"}}],
    )
    h.cycle()
    p1 = open_incident(servicenow, priority="1", urgency="3")
    p4 = open_incident(servicenow, priority="4", urgency="1")
    h.cycle()
    bodies = {e.key: e.body for e in flashduty.events()}
    assert bodies[p1["sys_id"]]["event_status"] == "Critical"  # priority 1, urgency Low
    assert bodies[p4["sys_id"]]["event_status"] == "Info"  # priority 4, urgency High
    assert bodies[p4["sys_id"]]["labels"]["service"] == "web"
    assert bodies[p4["sys_id"]]["labels"]["route"] == "svc"


def test_queued_extras_survive_a_config_change_and_a_servicenow_outage(
    servicenow, flashduty, harness, make_config
):
    ids = people(servicenow)
    h = harness("servicenow", route=[ROUTE])
    h.cycle()
    open_incident(servicenow, assignment_group=ids["network"])
    flashduty.inject(status=503, path=PUSH, times=10)  # Flashduty down: the create is queued
    h.cycle()
    flashduty.clear_faults()
    h.config = make_config("servicenow", route=[{**ROUTE, "rule_id": "changed-since"}])
    servicenow.deny_read = True  # and ServiceNow refuses every read
    report = h.cycle()
    assert report.exit_code == EX_NOPERM  # the fetch failed ...
    assert report.delivery.delivered == 1  # ... but the queued event left as it was queued
    body = flashduty.events()[0].body
    assert body["rule_id"] == "6532aa"
    assert len(body["notify_members"]) == 3
