"""The bodies Flashduty receives, in its two push formats. Pure functions.

The format follows the push URL: ``/event/push/servicenow/<token>`` takes the
body the ServiceNow-side integration (fd-servicenow) sent;
``/event/push/alert/standard`` takes a standard alert event keyed by the
incident's ``sys_id``. Flashduty's documented limits are enforced here by
truncation, never by rejecting the event: a long description must not cost a page.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from fd_sync.config import PushFormat
from fd_sync.incident import LEVEL_NAMES, PRIORITY_NAMES, Incident
from fd_sync.reconcile import Kind

TITLE_LIMIT = 512
DESCRIPTION_LIMIT = 2048
ALERT_KEY_LIMIT = 255
MAX_LABELS = 50
LABEL_KEY_LIMIT = 128
LABEL_VALUE_LIMIT = 2048
ELLIPSIS = "…"

# Flashduty's documented mapping for this integration: urgency High/Medium/Low.
SEVERITY_BY_URGENCY = {"1": "Critical", "2": "Warning", "3": "Info"}
DEFAULT_SEVERITY = "Warning"  # urgency missing or unknown: page, but not as Critical
SEVERITIES = ("Critical", "Warning", "Info")
_LABEL_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def severity(incident: Incident) -> str:
    return SEVERITY_BY_URGENCY.get(incident.urgency, DEFAULT_SEVERITY)


def incident_link(instance_url: str, table: str, sys_id: str) -> str:
    return f"{instance_url}/{table}.do?sys_id={urllib.parse.quote(sys_id)}"


def title(incident: Incident) -> str:
    text = (
        f"{incident.number}: {incident.short_description}"
        if incident.short_description
        else incident.number
    )
    return truncate(text, TITLE_LIMIT)


def _coded(names: dict[str, str], value: str) -> str:
    """'2 - Medium' style, as ServiceNow lists show choices; the raw value if unknown."""
    return f"{value} - {names[value]}" if value in names else value


def labels(incident: Incident, *, link: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Prometheus-style labels within Flashduty's limits; empty values are left out."""
    candidates = {
        "source": "servicenow",
        "number": incident.number,
        "state": incident.state_name,
        "priority": _coded(PRIORITY_NAMES, incident.priority),
        "urgency": _coded(LEVEL_NAMES, incident.urgency),
        "impact": _coded(LEVEL_NAMES, incident.impact),
        "assignment_group": incident.assignment_group,
        "assigned_to": incident.assigned_to,
        "sys_id": incident.sys_id,
        "link": link,
        **(extra or {}),
    }
    out: dict[str, str] = {}
    for key, value in candidates.items():
        if not value or not _LABEL_KEY.fullmatch(key) or len(key) > LABEL_KEY_LIMIT:
            continue
        if len(out) == MAX_LABELS:
            break
        out[key] = truncate(value, LABEL_VALUE_LIMIT)
    return out


def standard_body(kind: Kind, incident: Incident, *, link: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_status": "Ok" if kind is Kind.RESOLVE else severity(incident),
        "alert_key": incident.sys_id[:ALERT_KEY_LIMIT],
        "title_rule": title(incident),
        "description": truncate(incident.description, DESCRIPTION_LIMIT),
        "labels": labels(incident, link=link),
    }
    return body


def servicenow_body(kind: Kind, incident: Incident) -> dict[str, Any]:
    """The body fd-servicenow posted; resolve is ``rule_update`` with the state's name."""
    if kind is Kind.RESOLVE:
        return {
            "action_type": "rule_update",
            "number": incident.number,
            "sys_id": incident.sys_id,
            "state": incident.state_name,
        }
    return {
        "action_type": "insert" if kind is Kind.CREATE else "update",
        "number": incident.number,
        "sys_id": incident.sys_id,
        "short_description": truncate(incident.short_description, TITLE_LIMIT),
        "description": truncate(incident.description, DESCRIPTION_LIMIT),
        # Display values, as Flashduty's documentation of this integration shows.
        "impact": LEVEL_NAMES.get(incident.impact, incident.impact),
        "urgency": LEVEL_NAMES.get(incident.urgency, incident.urgency),
        "state": incident.state_name,
        "comments": "",
        "personal_channels": "",
        "assignment_group": incident.assignment_group,
        "assignment_group_id": incident.assignment_group_id,
        "notify_members": [],
        "rule_id": "",
        "teams_id": "",
    }


def build(
    fmt: PushFormat, kind: Kind, incident: Incident, *, instance_url: str, table: str
) -> dict[str, Any]:
    if fmt == "standard":
        return standard_body(
            kind, incident, link=incident_link(instance_url, table, incident.sys_id)
        )
    return servicenow_body(kind, incident)
