"""Tickets from Flashduty: which incidents open one, what it says, what flows back. Pure.

A Flashduty incident born from a monitoring tool (not from fd-sync's own push) in a
watched channel opens one ServiceNow incident, the *ticket*. Three decisions live here:

- :func:`skip_reason`: whether an incident ``/incident/list`` returned opens a ticket
  (channel, severity, labels, and never fd-sync's own alerts: no echo);
- :func:`render_fields`: the ticket's fields from ``[tickets.fields]`` templates, cut to
  ServiceNow's lengths on a character boundary, never refused;
- :func:`forward`: what a new version of the ticket in ServiceNow means for the Flashduty
  incident (resolve, reopen, comment, severity), decided against what the ledger last saw
  of the ticket, which includes the versions fd-sync itself wrote (they are never sent back).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fd_sync.core.incident import Incident, is_closed_state

SEVERITIES = ("Critical", "Warning", "Info")
TEMPLATE_FIELDS = ("title", "description", "severity", "channel_name", "url", "incident_id", "num")
CORRELATION_DISPLAY = "Flashduty"
# ServiceNow's default lengths of the fields a ticket usually fills; longer text is cut.
FIELD_LENGTHS = {
    "short_description": 160,
    "description": 4000,
    "correlation_id": 100,
    "correlation_display": 100,
    "category": 40,
    "subcategory": 40,
}
# [tickets.fields] and [tickets.severity] when the file has none.
DEFAULT_FIELDS = {
    "short_description": "{title}",
    "description": "{description}\n\nFlashduty incident: {url}",
}
DEFAULT_SEVERITY = {
    "Critical": {"urgency": "1", "impact": "1"},
    "Warning": {"urgency": "2", "impact": "2"},
    "Info": {"urgency": "3", "impact": "3"},
}
DEFAULT_SEVERITY_MAP = {
    "Critical": ("1", "1"),
    "Warning": ("2", "2"),
    "Info": ("3", "3"),
}
OPENAPI_TEXT = 1024  # comment, resolution, reason: CommentIncidentRequest and friends


@dataclass(frozen=True)
class FlashdutySource:
    """A Flashduty incident as ``/incident/list`` returns it: what a ticket is made of."""

    incident_id: str
    num: str
    title: str
    description: str
    severity: str
    progress: str
    channel_id: int
    channel_name: str
    start_time: int
    url: str
    integration_ids: tuple[int, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> FlashdutySource:
        labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
        ids = item.get("integration_ids") or [item.get("integration_id") or 0]
        return cls(
            incident_id=str(item.get("incident_id") or ""),
            num=str(item.get("num") or ""),
            title=str(item.get("title") or ""),
            description=str(item.get("description") or ""),
            severity=str(item.get("incident_severity") or ""),
            progress=str(item.get("progress") or ""),
            channel_id=int(item.get("channel_id") or 0),
            channel_name=str(item.get("channel_name") or ""),
            start_time=int(item.get("start_time") or 0),
            url=str(item.get("detail_url") or ""),
            integration_ids=tuple(int(i) for i in ids if isinstance(i, int) and i),
            labels={str(k): str(v) for k, v in (labels or {}).items()},
        )

    @property
    def name(self) -> str:
        """How a log line or an error names it: Flashduty #num "title"."""
        return f'Flashduty #{self.num} "{self.title}"'


@dataclass(frozen=True)
class TicketRules:
    """``[tickets]``, as the pure decisions need it."""

    channel_ids: frozenset[int]
    severities: frozenset[str]
    labels: Mapping[str, str]
    fields: tuple[tuple[str, str], ...]  # field -> template, in the file's order
    severity_map: Mapping[str, tuple[str, str]]  # severity -> (urgency, impact)


@dataclass(frozen=True)
class OwnAlerts:
    """What tells fd-sync's own alerts apart from a monitoring tool's (no ticket for those)."""

    incident_ids: frozenset[str] = frozenset()  # linked to an incident fd-sync pushed
    integration_ids: frozenset[int] = frozenset()  # fd-sync's push integrations, as learned
    unlinked_since: int | None = None  # oldest push whose incident is not found yet (seconds)


def skip_reason(source: FlashdutySource, rules: TicketRules, own: OwnAlerts) -> str | None:
    """Why this incident opens no ticket (None: it opens one). ``wait:`` means not yet."""
    if source.incident_id in own.incident_ids:
        return "fd-sync's own alert (a ServiceNow incident already)"
    if own.integration_ids & set(source.integration_ids):
        return "from fd-sync's push integration (a ServiceNow incident already)"
    if source.labels.get("source") == "servicenow" and source.labels.get("sys_id"):
        return "labelled as fd-sync's standard alert of a ServiceNow incident"
    if source.channel_id not in rules.channel_ids:
        return f"channel {source.channel_id} is not in [tickets] channel_ids"
    if source.severity not in rules.severities:
        return f"severity {source.severity} is not in [tickets] severities"
    for key, value in rules.labels.items():
        if source.labels.get(key) != value:
            return f"label {key} is not {value!r}"
    if own.unlinked_since is not None and source.start_time >= own.unlinked_since - 60:
        # An alert fd-sync pushed may be this incident: wait until the write-back finds it.
        return "wait: fd-sync's recent alerts are not linked yet"
    return None


class _Templates(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        if field_name.startswith("labels."):
            return kwargs["labels"].get(field_name[len("labels.") :], ""), field_name
        return kwargs[field_name], field_name


def template_problem(template: str) -> str | None:
    """What is wrong with a ``[tickets.fields]`` template, or None."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template)]
    except ValueError as exc:
        return f"is not a valid template ({exc}; write a literal brace as {{{{ or }}}})"
    for name in names:
        if name is None or name in TEMPLATE_FIELDS:
            continue
        if name.startswith("labels.") and len(name) > len("labels."):
            continue
        allowed = ", ".join(f"{{{f}}}" for f in (*TEMPLATE_FIELDS, "labels.KEY"))
        return f"unknown field {{{name}}}; a template may use {allowed}"
    return None


def cut(name: str, value: str) -> str:
    """``value`` within ServiceNow's length of ``name`` (code points: never half a character)."""
    limit = FIELD_LENGTHS.get(name)
    return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"


def render_fields(source: FlashdutySource, rules: TicketRules) -> dict[str, str]:
    """The body of the ticket's POST."""
    values = {
        "title": source.title,
        "description": source.description,
        "severity": source.severity,
        "channel_name": source.channel_name,
        "url": source.url,
        "incident_id": source.incident_id,
        "num": source.num,
        "labels": source.labels,
    }
    body = {name: cut(name, _Templates().format(t, **values)) for name, t in rules.fields}
    urgency, impact = rules.severity_map.get(source.severity, DEFAULT_SEVERITY_MAP["Warning"])
    body.update(urgency=urgency, impact=impact)
    body.update(correlation_id=source.incident_id, correlation_display=CORRELATION_DISPLAY)
    return body


def severity_of(urgency: str, severity_map: Mapping[str, tuple[str, str]]) -> str | None:
    """The Flashduty severity a ServiceNow urgency maps to (the first in map order)."""
    for severity, (mapped, _) in severity_map.items():
        if mapped == urgency:
            return severity
    return None


@dataclass(frozen=True)
class TicketSeen:
    """What the ledger knows of a ticket's ServiceNow side: the last version handled."""

    incident_id: str
    sys_id: str
    number: str
    state: str
    urgency: str
    mod_count: int
    last_comment: str  # the latest additional comment already forwarded
    syncing: bool  # False once the Flashduty incident was merged away or deleted
    assigned_to: str = ""  # the ticket's assigned_to (a sys_user sys_id) last handled


@dataclass(frozen=True)
class OpenAPIWrite:
    """One write owed to the Flashduty incident of a ticket."""

    kind: str  # comment, resolve, reopen, severity
    body: Mapping[str, Any]  # the OpenAPI request, without incident_ids

    @property
    def path(self) -> str:
        return {"severity": "/incident/reset"}.get(self.kind, f"/incident/{self.kind}")

    @property
    def moot_when(self) -> str | None:
        """The Flashduty progress in which this write changes nothing (then not sent)."""
        return {"resolve": "Closed", "reopen": "open"}.get(self.kind)

    @property
    def text(self) -> str:
        """What the feed shows of it (an i_comm's comment), to recognise it there."""
        return str(self.body.get("comment") or "")


@dataclass(frozen=True)
class OwedWrite:
    """An OpenAPI write owed to the Flashduty incident linked to a ServiceNow incident."""

    incident_id: str
    sys_id: str
    number: str
    write: OpenAPIWrite
    source: str | None = None  # what it came from, queued once (a journal entry's sys_id/part)


def forward(
    incident: Incident,
    seen: TicketSeen,
    severity_map: Mapping[str, tuple[str, str]],
) -> list[OpenAPIWrite]:
    """What a new version of a ticket means for its Flashduty incident, in order.

    Compared with the version the ledger last handled, which is the one fd-sync's own
    POST or PATCH produced when it wrote last: a state or urgency fd-sync wrote is never
    sent back, only a person's change is. (Whether Flashduty has the incident closed
    already is asked when the write is sent, not here: what the ledger last read of it may
    be old.) ``incident.comment`` is the ticket's latest additional comment: sent once."""
    if not seen.syncing:
        return []
    writes: list[OpenAPIWrite] = []
    was_closed, closed = is_closed_state(seen.state), is_closed_state(incident.state)
    if closed and not was_closed:
        resolution = incident.extra.get("close_notes", "") if incident.extra else ""
        text = f"{incident.number} closed in ServiceNow. {resolution}".strip()
        writes.append(OpenAPIWrite("resolve", {"resolution": text[:OPENAPI_TEXT]}))
    elif was_closed and not closed:
        reason = f"{incident.number} reopened in ServiceNow"
        writes.append(OpenAPIWrite("reopen", {"reason": reason}))
    if incident.urgency != seen.urgency and not closed:
        severity = severity_of(incident.urgency, severity_map)
        if severity is not None:
            writes.append(OpenAPIWrite("severity", {"incident_severity": severity}))
    if incident.comment and incident.comment != seen.last_comment:
        writes.extend(comment_writes(f"{incident.number}: {incident.comment}"))
    return writes


def comment_writes(text: str) -> list[OpenAPIWrite]:
    """A text as comments of at most 1024 characters each, in order."""
    return [
        OpenAPIWrite("comment", {"comment": text[i : i + OPENAPI_TEXT], "mute_reply": True})
        for i in range(0, len(text), OPENAPI_TEXT)
    ]


def link_back(number: str, url: str) -> OpenAPIWrite:
    """The comment on the Flashduty incident that names its ticket."""
    return OpenAPIWrite("comment", {"comment": f"ServiceNow {number}: {url}", "mute_reply": True})


def own_echoes(
    entries: Iterable[tuple[str, str]], own: Iterable[tuple[int, str, str]]
) -> tuple[set[int], list[int]]:
    """Which feed entries are fd-sync's own OpenAPI writes, matched one to one.

    ``entries``: (type, comment) of each new feed entry; ``own``: (write id, kind, text) of
    the writes fd-sync attempted on this incident and has not matched yet, oldest first.
    Returns the positions of the entries that are fd-sync's and the ids of the writes they
    matched. A comment matches by its text; a resolve, reopen or severity change by kind."""
    pool = list(own)
    ours: set[int] = set()
    matched: list[int] = []
    kind_of = {"i_comm": "comment", "i_rslv": "resolve", "i_reopen": "reopen"}
    kind_of.update(i_r_severity="severity", i_assign="assign")
    for position, (entry_type, comment) in enumerate(entries):
        kind = kind_of.get(entry_type)
        for index, (write_id, write_kind, text) in enumerate(pool):
            if write_kind == kind and (kind != "comment" or text == comment):
                ours.add(position)
                matched.append(write_id)
                del pool[index]
                break
    return ours, matched
