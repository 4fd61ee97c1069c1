"""The simulators' two-way side keeps to the documented APIs, since every write-back test
trusts them: Flashduty's On-call OpenAPI (api-reference/on-call.openapi.en.json: /alert/list,
/incident/list-by-ids, /incident/feed) and ServiceNow's Table API PATCH (REFERENCE
section 7: unknown fields ignored, journal fields, data policies, ACLs)."""

from __future__ import annotations

import time

import requests

from tests.helpers.simulated import open_incident


def openapi(fd, path: str, body: dict) -> dict:
    answer = requests.post(f"{fd.url}{path}", params={"app_key": fd.app_key}, json=body, timeout=5)
    return answer.json()


def push(fd, key: str, title: str = "disk") -> None:
    body = {"event_status": "Warning", "title_rule": title, "alert_key": key}
    assert requests.post(fd.push_url_standard, json=body, timeout=5).ok


def test_alert_list_enforces_the_window_and_the_page_size(flashduty):
    push(flashduty, "a" * 32)
    now = int(time.time())
    too_wide = openapi(flashduty, "/alert/list", {"start_time": now - 32 * 86400, "end_time": now})
    assert too_wide["error"]["code"] == "InvalidParameter"
    missing = openapi(flashduty, "/alert/list", {"alert_keys": ["a" * 32]})
    assert missing["error"]["code"] == "InvalidParameter"
    big = openapi(
        flashduty, "/alert/list", {"start_time": now - 60, "end_time": now + 60, "limit": 101}
    )
    assert big["error"]["code"] == "InvalidParameter"
    found = openapi(
        flashduty,
        "/alert/list",
        {"start_time": now - 60, "end_time": now + 60, "alert_keys": ["a" * 32], "is_active": True},
    )["data"]
    (item,) = found["items"]
    assert item["alert_key"] == "a" * 32 and len(item["alert_id"]) == 24
    assert len(item["incident"]["incident_id"]) == 24 and found["has_next_page"] is False


def test_incident_times_are_seconds_and_feed_times_milliseconds(flashduty):
    push(flashduty, "b" * 32)
    incident_id = flashduty.incident_of("b" * 32)
    flashduty.ack(incident_id, flashduty.add_person("Ann Lee"))
    (incident,) = openapi(flashduty, "/incident/list-by-ids", {"incident_ids": [incident_id]})[
        "data"
    ]["items"]
    assert incident["progress"] == "Processing"
    assert abs(incident["updated_at"] - time.time()) < 60  # seconds
    feed = openapi(flashduty, "/incident/feed", {"incident_id": incident_id, "asc": True})["data"]
    assert [e["type"] for e in feed["items"]] == ["i_new", "i_assign", "i_ack"]
    assert abs(feed["items"][-1]["created_at"] / 1000 - time.time()) < 60  # milliseconds
    too_many = openapi(flashduty, "/incident/list-by-ids", {"incident_ids": ["x"] * 101})
    assert too_many["error"]["code"] == "InvalidParameter"
    newest_first = openapi(flashduty, "/incident/feed", {"incident_id": incident_id, "limit": 1})
    assert newest_first["data"]["items"][0]["type"] == "i_ack"
    assert newest_first["data"]["has_next_page"] is True


def test_a_responders_resolve_closes_the_alert_so_the_next_event_opens_a_new_one(flashduty):
    push(flashduty, "c" * 32)
    first = flashduty.incident_of("c" * 32)
    flashduty.resolve(first, flashduty.add_person("Bob Ray"), "fixed")
    assert flashduty.open_keys() == set()
    push(flashduty, "c" * 32, "disk full")  # an identical event would be discarded
    assert [e.kind for e in flashduty.events()] == ["create", "create"]
    assert flashduty.incident_of("c" * 32) != first
    feed = openapi(flashduty, "/incident/feed", {"incident_id": first, "asc": True})["data"]
    assert feed["items"][-1]["detail"] == {"from": "console"}


def patch(sn, sys_id: str, body: dict, **params: str) -> requests.Response:
    return requests.patch(
        f"{sn.url}/api/now/table/incident/{sys_id}",
        json=body,
        params=params,
        auth=(sn.username, sn.password),
        timeout=5,
    )


def test_patch_ignores_unknown_fields_and_moves_the_version_only_on_a_change(servicenow):
    inc = open_incident(servicenow)
    fields = {"sysparm_fields": "sys_mod_count,sys_updated_by,work_notes,u_nothing"}
    same = patch(servicenow, inc["sys_id"], {"u_nothing": "x", "state": inc["state"]}, **fields)
    assert same.status_code == 200
    assert same.json()["result"]["sys_mod_count"] == inc["sys_mod_count"]
    noted = patch(servicenow, inc["sys_id"], {"work_notes": "checked"}, **fields).json()["result"]
    assert noted["sys_mod_count"] == str(int(inc["sys_mod_count"]) + 1)
    assert noted["sys_updated_by"] == servicenow.username
    assert noted["work_notes"] == ""  # journal fields read back empty
    (entry,) = servicenow.journal(inc["sys_id"])
    assert (entry["value"], entry["sys_created_by"]) == ("checked", servicenow.username)


def test_patch_refusals_carry_servicenows_own_words(servicenow):
    inc = open_incident(servicenow)
    servicenow.require_on_close("close_code", "close_notes")
    refused = patch(servicenow, inc["sys_id"], {"state": "6", "work_notes": "closing"})
    assert refused.status_code == 403
    assert "Data Policy Exception" in refused.json()["error"]["detail"]
    assert "Resolution code, Resolution notes" in refused.json()["error"]["detail"]
    assert servicenow.journal(inc["sys_id"]) == []  # nothing of a refused write is kept
    servicenow.deny_write = True
    acl = patch(servicenow, inc["sys_id"], {"work_notes": "x"})
    assert acl.status_code == 403 and "ACL Exception" in acl.json()["error"]["detail"]
    assert patch(servicenow, "0" * 32, {"work_notes": "x"}).status_code == 404
