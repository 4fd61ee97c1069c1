"""The ServiceNow simulator's choice lists and creation stamps, as the Table API has them.

ServiceNow's documentation (ServiceNowDocs, c_TableAPI.md and the sys_choice table):
choice labels live in ``sys_choice`` (``name``, ``element``, ``value``, ``label``,
``language``, ``inactive``); a base instance labels urgency and impact ``1 - High``,
``2 - Medium``, ``3 - Low``; ``getDisplayValue()`` and ``sysparm_display_value=true`` return
those labels; every record has ``sys_created_on``.
"""

from __future__ import annotations

from datetime import timedelta

import requests

QUERY = "name=incident^elementINstate,impact,urgency,priority^inactive=false^language=en"


def get(sim, table, **params):
    response = requests.get(
        f"{sim.url}/api/now/table/{table}",
        params=params,
        auth=(sim.username, sim.password),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_sys_choice_holds_a_base_instances_labels(servicenow):
    rows = get(servicenow, "sys_choice", sysparm_query=QUERY, sysparm_fields="element,value,label")
    labels = {(r["element"], r["value"]): r["label"] for r in rows}
    assert labels[("urgency", "1")] == "1 - High" and labels[("impact", "3")] == "3 - Low"
    assert labels[("state", "3")] == "On Hold" and labels[("priority", "5")] == "5 - Planning"


def test_a_customised_label_is_served_and_displayed(servicenow):
    servicenow.set_choice("urgency", "1", "1 - Business critical")
    servicenow.set_choice("urgency", "1", "1 - Kritisch", language="de")  # not English: left out
    servicenow.set_choice("urgency", "4", "4 - Retired", inactive=True)
    rows = get(servicenow, "sys_choice", sysparm_query=QUERY, sysparm_fields="element,value,label")
    urgency = {r["value"]: r["label"] for r in rows if r["element"] == "urgency"}
    assert urgency == {"1": "1 - Business critical", "2": "2 - Medium", "3": "3 - Low"}
    inc = servicenow.create(urgency="1")
    (shown,) = get(
        servicenow,
        "incident",
        sysparm_query=f"sys_id={inc['sys_id']}",
        sysparm_fields="urgency",
        sysparm_display_value="true",
    )
    assert shown["urgency"] == "1 - Business critical"


def test_every_incident_has_its_creation_stamp(servicenow):
    servicenow.seed(20, open_ratio=0.5, span=timedelta(days=1))
    created = servicenow.create(short_description="new")
    rows = get(servicenow, "incident", sysparm_fields="sys_id,sys_created_on,sys_updated_on")
    assert len(rows) == 21 and all(r["sys_created_on"] for r in rows)
    (row,) = [r for r in rows if r["sys_id"] == created["sys_id"]]
    assert row["sys_created_on"] == row["sys_updated_on"]  # never changed: "new"


# --- creating incidents (REFERENCE section 10: POST, 201, Location, correlation_id) ------


def post(sim, body, **params):
    return requests.post(
        f"{sim.url}/api/now/table/incident",
        params=params,
        json=body,
        auth=(sim.username, sim.password),
        timeout=5,
    )


def test_a_post_answers_201_with_the_record_and_its_location(servicenow):
    created = post(
        servicenow,
        {
            "short_description": "Disk full",
            "urgency": "1",
            "correlation_id": "abc",
            "correlation_display": "Flashduty",
            "state": "1",
        },
        sysparm_fields="sys_id,number,urgency,correlation_id",
    )
    assert created.status_code == 201
    record = created.json()["result"]
    assert record["number"].startswith("INC") and record["urgency"] == "1"
    assert created.headers["Location"].endswith(f"/api/now/table/incident/{record['sys_id']}")
    found = get(servicenow, "incident", sysparm_query="correlation_id=abc", sysparm_fields="sys_id")
    assert found == [{"sys_id": record["sys_id"]}]


def test_a_post_meets_acls_data_policies_and_invalid_references(servicenow):
    servicenow.create_policy = ("category",)
    refused = post(servicenow, {"short_description": "x"})
    assert refused.status_code == 403
    assert "The following fields are mandatory: category" in refused.json()["error"]["detail"]
    servicenow.create_policy = ()
    invalid = post(servicenow, {"short_description": "x", "assignment_group": "Nobody"})
    assert invalid.status_code == 400
    group = servicenow.add_group("Network")
    named = post(servicenow, {"short_description": "x", "assignment_group": "Network"})
    reference = named.json()["result"]["assignment_group"]  # {link, value}: documented
    assert named.status_code == 201 and reference["value"] == group
    servicenow.deny_write = True
    acl = post(servicenow, {"short_description": "x"})
    assert acl.status_code == 403 and "ACL Exception Insert Failed" in acl.text
