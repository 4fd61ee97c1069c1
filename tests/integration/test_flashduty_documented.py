"""The Flashduty simulator answers as Flashduty's documentation says, one test per rule.

Every test names the page it follows, in flashcatcloud/flashduty-docs:
- STANDARD: en/on-call/integration/alert-integration/alert-sources/standard alert.mdx
- SN_SYNC: en/on-call/integration/webhooks/servicenow-sync.mdx
- PAGINATION: en/openapi/pagination.mdx
- PLATFORM: api-reference/platform.openapi.en.json, /member/list
- ONCALL: api-reference/on-call.openapi.en.json, /channel/list
When the simulator and a page disagree, the test that cites the page is the one to fix.
"""

from __future__ import annotations

import json

import pytest
import requests

STANDARD_EVENT = {"event_status": "Warning", "title_rule": "cpu idle low than 20%"}


def post(url: str, body: object) -> tuple[int, dict]:
    response = requests.post(url, json=body, timeout=5)
    return response.status_code, response.json()


def sn_body(action: str, sys_id: str = "a" * 32, **fields: str) -> dict:
    return {"action_type": action, "number": "INC0010001", "sys_id": sys_id, **fields}


# --- STANDARD ---------------------------------------------------------------------------


def test_a_wrong_integration_key_is_a_400_invalid_parameter(flashduty):
    """STANDARD, "Failed Response": InvalidParameter, "integration_key is not a valid one"."""
    url = flashduty.push_url_standard.replace(flashduty.integration_key, "not-the-key")
    status, answer = post(url, STANDARD_EVENT)
    assert status == 400
    assert answer["error"] == {
        "code": "InvalidParameter",
        "message": "integration_key is not a valid one",
    }
    assert answer["request_id"]


def test_alert_key_is_optional_except_to_recover(flashduty):
    """STANDARD, Payload: alert_key "You can also rely on system auto-generation, this value
    will be returned in the response. If you're reporting a recovery event, this value must
    exist." """
    status, answer = post(flashduty.push_url_standard, STANDARD_EVENT)
    assert status == 200 and answer["data"]["alert_key"]
    status, answer = post(flashduty.push_url_standard, {**STANDARD_EVENT, "event_status": "Ok"})
    assert status == 400 and answer["error"]["code"] == "InvalidParameter"


def test_event_status_is_case_sensitive(flashduty):
    """STANDARD, Payload: event_status "Enumerated values (case-sensitive)"."""
    status, answer = post(
        flashduty.push_url_standard, {**STANDARD_EVENT, "event_status": "warning"}
    )
    assert status == 400 and answer["error"]["code"] == "InvalidParameter"


def test_long_texts_are_truncated_not_refused(flashduty):
    """STANDARD, Payload: title_rule 512, description 2048, label values 2048: "will be
    truncated if exceeded". (fd-sync itself never sends more: see violations.)"""
    body = {
        **STANDARD_EVENT,
        "alert_key": "k1",
        "title_rule": "t" * 600,
        "description": "d" * 3000,
        "labels": {"check": "v" * 2100},
    }
    status, _ = post(flashduty.push_url_standard, body)
    assert status == 200
    (event,) = flashduty.events()
    assert len(event.body["title_rule"]) == 512 and len(event.body["description"]) == 2048
    assert len(event.body["labels"]["check"]) == 2048
    assert len(flashduty.violations) == 3  # each recorded against the sender


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ({f"k{i}": "v" for i in range(51)}, "Maximum of 50 labels"),
        ({"1starts_with_digit": "v"}, "Prometheus label naming"),
        ({"k": 5}, "both key and value of labels are string type"),
    ],
)
def test_labels_outside_the_rules_are_refused(flashduty, labels, why):
    """STANDARD, Payload: labels."""
    status, answer = post(flashduty.push_url_standard, {**STANDARD_EVENT, "labels": labels})
    assert status == 400 and answer["error"]["code"] == "InvalidParameter", why


def test_other_methods_are_method_not_allowed(flashduty):
    """STANDARD, Code table: MethodNotAllowed, HTTP 400."""
    response = requests.get(flashduty.push_url_standard, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MethodNotAllowed"


def test_a_body_that_is_not_json_is_refused(flashduty):
    """STANDARD, Code table: InvalidContentType (400) for a content type other than JSON."""
    response = requests.post(flashduty.push_url_standard, data="x=1", timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidContentType"


# --- SN_SYNC ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "progress"),
    [
        ("New", "Triggered"),
        ("In Progress", "Processing"),
        ("On Hold", "Snoozed"),  # "Default snooze 2 hours"
        ("Resolved", "Closed"),
        ("Closed", "Closed"),
        ("Canceled", "Closed"),
    ],
)
def test_state_maps_to_progress_as_the_status_mapping_table_says(flashduty, state, progress):
    """SN_SYNC, "Status Mapping"."""
    status, _ = post(flashduty.push_url_servicenow, sn_body("insert", state=state))
    assert status == 200
    assert flashduty.progress["a" * 32] == progress
    assert ("a" * 32 in flashduty.open_keys()) is (progress != "Closed")


def test_an_update_for_an_unknown_sys_id_opens_an_incident(flashduty):
    """SN_SYNC, business rule: "update" for every record that is not new; the button sends
    it for an existing record, and Flashduty opens the incident when it has none."""
    post(flashduty.push_url_servicenow, sn_body("update", state="In Progress"))
    assert flashduty.open_keys() == {"a" * 32}
    assert flashduty.history() == {"a" * 32: ["create"]}


def test_rule_update_and_a_closed_state_both_close(flashduty):
    """SN_SYNC, "Status Mapping" (Resolved/Closed/Canceled -> Closed) and the resolve
    fd-servicenow sends (rule_update)."""
    post(flashduty.push_url_servicenow, sn_body("insert", "a" * 32, state="New"))
    post(flashduty.push_url_servicenow, sn_body("insert", "b" * 32, state="New"))
    post(flashduty.push_url_servicenow, sn_body("rule_update", "a" * 32, state="Resolved"))
    post(flashduty.push_url_servicenow, sn_body("update", "b" * 32, state="Canceled"))
    assert flashduty.open_keys() == set()


# --- the OpenAPI ------------------------------------------------------------------------


def openapi(flashduty, path: str, body: dict) -> tuple[int, dict]:
    url = f"{flashduty.url}{path}?app_key={flashduty.app_key}"
    response = requests.post(url, data=json.dumps(body), timeout=5)
    return response.status_code, response.json()


def test_member_list_items_are_member_fields(flashduty):
    """PLATFORM, /member/list: items carry member_id, member_name, email."""
    person = flashduty.add_person("Ann Lee", "ann@example.com")
    status, answer = openapi(flashduty, "/member/list", {"p": 1, "limit": 10})
    assert status == 200
    # The app key's owner is a member too (its writes are theirs, as Flashduty's are).
    assert [i for i in answer["data"]["items"] if i["member_id"] != flashduty.app_key_member] == [
        {"member_id": person, "member_name": "Ann Lee", "email": "ann@example.com"}
    ]


def test_channel_list_says_whether_another_page_follows(flashduty):
    """ONCALL /channel/list and PAGINATION: total and has_next_page."""
    for n in range(3):
        flashduty.add_channel(f"channel {n}")
    _, first = openapi(flashduty, "/channel/list", {"p": 1, "limit": 2})
    _, last = openapi(flashduty, "/channel/list", {"p": 2, "limit": 2})
    assert first["data"]["has_next_page"] is True and len(first["data"]["items"]) == 2
    assert last["data"]["has_next_page"] is False and len(last["data"]["items"]) == 1
    assert first["data"]["total"] == 3


def test_totals_are_capped_and_deep_pages_refused(flashduty):
    """PAGINATION, "About TOTAL": exact below 1000 only; "PAGE x LIMIT must be <= 10000.
    If it exceeds 10000, the system will directly return a 400 error"."""
    for n in range(1001):
        flashduty.add_person(f"member {n}")
    _, answer = openapi(flashduty, "/member/list", {"p": 1, "limit": 100})
    assert answer["data"]["total"] == 1000
    status, answer = openapi(flashduty, "/member/list", {"p": 101, "limit": 100})
    assert status == 400 and answer["error"]["code"] == "InvalidParameter"


# --- incident writes (ONCALL: CommentIncidentRequest, ResolveIncidentRequest,
# ReopenIncidentRequest, UpdateIncidentFieldsRequest, ListIncidentsRequest) --------------


def test_incident_writes_take_1_to_100_object_ids_and_texts_within_their_limits(flashduty):
    incident_id = flashduty.open_incident("Disk full", channel_id=5550001)
    ok = openapi(flashduty, "/incident/comment", {"incident_ids": [incident_id], "comment": "c"})
    assert ok == (200, {"request_id": ok[1]["request_id"], "data": {}})
    for body in (
        {"incident_ids": [incident_id], "comment": "x" * 1025},  # maxLength 1024
        {"incident_ids": [], "comment": "c"},  # minItems 1
        {"incident_ids": [incident_id] * 101},  # maxItems 100
        {"incident_ids": ["not-an-object-id"]},  # pattern ^[0-9a-fA-F]{24}$
    ):
        status, answer = openapi(flashduty, "/incident/comment", body)
        assert (status, answer["error"]["code"]) == (400, "InvalidParameter"), body
    status, answer = openapi(flashduty, "/incident/resolve", {"incident_ids": ["0" * 24]})
    assert (status, answer["error"]["code"]) == (400, "ResourceNotFound")


def test_resolve_and_reopen_move_the_incident_and_its_feed(flashduty):
    incident_id = flashduty.open_incident("Disk full", channel_id=5550001)
    openapi(flashduty, "/incident/resolve", {"incident_ids": [incident_id], "resolution": "r"})
    assert flashduty.fd_incidents[incident_id]["progress"] == "Closed"
    openapi(flashduty, "/incident/reopen", {"incident_ids": [incident_id], "reason": "again"})
    assert flashduty.fd_incidents[incident_id]["progress"] == "Triggered"
    kinds = [e["type"] for e in flashduty.feeds[incident_id]]
    assert kinds[-2:] == ["i_rslv", "i_reopen"]
    # The key acts as the member who made it: nothing marks these as an API's writes.
    creators = {e["creator_id"] for e in flashduty.feeds[incident_id][-2:]}
    assert creators == {flashduty.app_key_member}


def test_reset_needs_a_field_and_a_documented_severity(flashduty):
    incident_id = flashduty.open_incident("Disk full", channel_id=5550001, severity="Warning")
    status, answer = openapi(flashduty, "/incident/reset", {"incident_id": incident_id})
    assert (status, answer["error"]["code"]) == (400, "InvalidParameter")
    bad = {"incident_id": incident_id, "incident_severity": "High"}
    assert openapi(flashduty, "/incident/reset", bad)[0] == 400
    good = {"incident_id": incident_id, "incident_severity": "Critical"}
    assert openapi(flashduty, "/incident/reset", good)[0] == 200
    assert flashduty.feeds[incident_id][-1]["type"] == "i_r_severity"


def test_incident_list_filters_by_channel_progress_and_severity(flashduty):
    watched = flashduty.open_incident("a", channel_id=5550001, severity="Critical")
    flashduty.open_incident("b", channel_id=5550002, severity="Critical")
    flashduty.open_incident("c", channel_id=5550001, severity="Info")
    now = int(flashduty.wall())
    body = {
        "start_time": now - 60,
        "end_time": now + 60,
        "channel_ids": [5550001],
        "progress": "Triggered,Processing",
        "incident_severity": "Critical,Warning",
    }
    status, answer = openapi(flashduty, "/incident/list", body)
    assert status == 200 and answer["data"]["has_next_page"] is False
    (item,) = answer["data"]["items"]
    assert item["incident_id"] == watched
    assert {"channel_id", "channel_name", "integration_ids", "incident_severity"} <= item.keys()
    span = {**body, "start_time": now - 32 * 86400}
    assert openapi(flashduty, "/incident/list", span)[0] == 400  # at most 31 days
