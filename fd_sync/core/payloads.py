"""The bodies Flashduty receives, in its two push formats. Pure functions.

The format follows the push URL: ``/event/push/servicenow/<token>`` takes the
body the ServiceNow-side integration (fd-servicenow) sent;
``/event/push/alert/standard`` takes a standard alert event keyed by the
incident's ``sys_id``. Flashduty's documented limits are enforced here by
truncation, never by rejecting the event: a long description must not cost a page.

What a route adds (severity, labels, escalation rule, channels, members to
notify) is rendered once, when the event is queued, into :class:`Extras`,
which the outbox stores with the event: a later configuration change or a
ServiceNow outage can neither change nor block an event already queued.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from fd_sync.core import routing
from fd_sync.core.choices import BASE_CHOICES, ChoiceLabels
from fd_sync.core.decide import Kind
from fd_sync.core.incident import TICKET_FIELDS, Incident, IncidentState
from fd_sync.core.routing import PushFormat

TITLE_LIMIT = 512
DESCRIPTION_LIMIT = 2048
ALERT_KEY_LIMIT = 255
MAX_LABELS = 50
LABEL_KEY_LIMIT = 128
LABEL_VALUE_LIMIT = 2048
ELLIPSIS = "…"

# The ServiceNow format has no severity: Flashduty derives it from urgency, so a
# route's severity travels as the label of the urgency value that maps to it.
URGENCY_FOR_SEVERITY = {"Critical": "1", "Warning": "2", "Info": "3"}
_LABEL_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class Member:
    """A ServiceNow user to notify, as fd-servicenow sent them."""

    sys_id: str
    name: str
    email: str


@dataclass(frozen=True)
class Extras:
    """What a route or a dispatch adds to an incident's body; empty for older events."""

    route: str = ""
    severity: str | None = None  # None: from urgency, as before routing existed
    labels: tuple[tuple[str, str], ...] = ()
    rule_id: str = ""
    personal_channels: tuple[str, ...] = ()
    notify_members: tuple[Member, ...] = ()
    teams_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Extras:
        if not data:
            return cls()
        return cls(
            route=str(data.get("route") or ""),
            severity=data.get("severity") or None,
            labels=tuple((str(k), str(v)) for k, v in data.get("labels") or ()),
            rule_id=str(data.get("rule_id") or ""),
            personal_channels=tuple(data.get("personal_channels") or ()),
            notify_members=tuple(Member(**m) for m in data.get("notify_members") or ()),
            teams_id=str(data.get("teams_id") or ""),
        )


NO_EXTRAS = Extras()  # shared: an incident without a route's additions (frozen, so safe)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def severity(incident: Incident) -> str:
    """Flashduty's documented mapping for this integration: urgency High/Medium/Low."""
    return routing.severity(incident, None, "urgency")


def incident_link(instance_url: str, table: str, sys_id: str) -> str:
    return f"{instance_url}/{table}.do?sys_id={urllib.parse.quote(sys_id)}"


def title(incident: Incident) -> str:
    text = (
        f"{incident.number}: {incident.short_description}"
        if incident.short_description
        else incident.number
    )
    return truncate(text, TITLE_LIMIT)


def labels(
    incident: Incident,
    *,
    link: str,
    extra: dict[str, str] | None = None,
    choices: ChoiceLabels = BASE_CHOICES,
) -> dict[str, str]:
    """Prometheus-style labels within Flashduty's limits; empty values are left out.
    Choice fields carry the instance's labels, as in the ServiceNow format."""
    candidates = {
        "source": "servicenow",
        "number": incident.number,
        "state": choices.label("state", incident.state),
        "priority": choices.label("priority", incident.priority),
        "urgency": choices.label("urgency", incident.urgency),
        "impact": choices.label("impact", incident.impact),
        "assignment_group": incident.assignment_group,
        "assigned_to": incident.assigned_to,
        "category": incident.category,
        "cmdb_ci": incident.cmdb_ci,
        "company": incident.company,
        "sys_id": incident.sys_id,
        # The version: Flashduty discards an event identical to an earlier one, so the
        # create that reopens an alert a responder closed must differ from the first.
        "updated_on": incident.updated_on,
        "link": link,
        **{
            name.replace(".", "_"): value
            for name, value in incident.extra.items()
            if name not in TICKET_FIELDS
        },
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


def standard_body(
    kind: Kind,
    incident: Incident,
    *,
    link: str,
    extras: Extras = NO_EXTRAS,
    choices: ChoiceLabels = BASE_CHOICES,
) -> dict[str, Any]:
    route_labels = dict(extras.labels)
    if extras.route:
        route_labels.setdefault("route", extras.route)
    if incident.comment:
        route_labels.setdefault("last_comment", incident.comment)
    body: dict[str, Any] = {
        "event_status": "Ok" if kind is Kind.RESOLVE else extras.severity or severity(incident),
        "alert_key": incident.sys_id[:ALERT_KEY_LIMIT],
        "title_rule": title(incident),
        "description": truncate(incident.description, DESCRIPTION_LIMIT),
        "labels": labels(incident, link=link, extra=route_labels, choices=choices),
    }
    return body


def _urgency(incident: Incident, extras: Extras, choices: ChoiceLabels) -> str:
    """The urgency's label, or the label of the urgency that carries the route's severity."""
    if extras.severity and extras.severity != severity(incident):
        return choices.label("urgency", URGENCY_FOR_SEVERITY[extras.severity])
    return choices.label("urgency", incident.urgency)


def is_new_record(incident: Incident) -> bool:
    """The documented business rule's test for ``insert``: never changed since created."""
    return bool(incident.created_on) and incident.created_on == incident.updated_on


def servicenow_body(
    kind: Kind,
    incident: Incident,
    extras: Extras = NO_EXTRAS,
    choices: ChoiceLabels = BASE_CHOICES,
) -> dict[str, Any]:
    """The body of Flashduty's documented business rule (and fd-servicenow's button):
    choice fields as the instance displays them; resolve is ``rule_update``."""
    if kind is Kind.RESOLVE:
        # An incident moved away from this integration (another route, a skip route)
        # is still open: only a closed state closes its alert here.
        closed = incident.state if not incident.is_open else IncidentState.RESOLVED.value
        body = {
            "action_type": "rule_update",
            "number": incident.number,
            "sys_id": incident.sys_id,
            "state": choices.label("state", closed),
        }
        if incident.comment:
            # The latest comment, as the documented rule sends with every change; it also
            # keeps a second resolve (closing again what Flashduty reopened) from being the
            # same event as the first, which Flashduty would discard as a duplicate.
            body["comments"] = truncate(incident.comment, DESCRIPTION_LIMIT)
        return body
    # "insert" only for a record never changed since it was created, as the documented
    # rule decides; a backfill, an older incident seen first, a reopen: "update", which
    # Flashduty answers by opening the incident when it has none for this sys_id.
    new = kind is Kind.CREATE and is_new_record(incident)
    return {
        "action_type": "insert" if new else "update",
        "number": incident.number,
        "sys_id": incident.sys_id,
        "short_description": truncate(incident.short_description, TITLE_LIMIT),
        "description": truncate(incident.description, DESCRIPTION_LIMIT),
        # Display values, as Flashduty's documented business rule sends them.
        "impact": choices.label("impact", incident.impact),
        "urgency": _urgency(incident, extras, choices),
        "state": choices.label("state", incident.state),
        "comments": truncate(incident.comment, DESCRIPTION_LIMIT),
        "personal_channels": ",".join(extras.personal_channels),
        "assignment_group": incident.assignment_group,
        "assignment_group_id": incident.assignment_group_id,
        "notify_members": [asdict(m) for m in extras.notify_members],
        "rule_id": extras.rule_id,
        "teams_id": extras.teams_id,
        # A mapped field (servicenow-sync.mdx, "Custom Field Mapping"): the version, so that
        # no two versions' events are identical, which Flashduty would discard.
        "sys_updated_on": incident.updated_on,
    }


def build(
    fmt: PushFormat,
    kind: Kind,
    incident: Incident,
    *,
    instance_url: str,
    table: str,
    extras: Extras = NO_EXTRAS,
    choices: ChoiceLabels = BASE_CHOICES,
) -> dict[str, Any]:
    if fmt == "standard":
        link = incident_link(instance_url, table, incident.sys_id)
        return standard_body(kind, incident, link=link, extras=extras, choices=choices)
    return servicenow_body(kind, incident, extras, choices)
