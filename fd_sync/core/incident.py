"""An incident as fd-sync understands it, and how a raw Table API row becomes one.

ServiceNow sends every value as a string, but proxies, customisations and bad
data send anything: nulls, numbers, nested objects, megabytes of text, broken
surrogates. :func:`parse_record` accepts what it can coerce and raises
:class:`BadRecord` only when the row cannot be placed in the scan at all (no
usable ``sys_id`` or ``sys_updated_on``); such rows are quarantined, the rest
of the page goes on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from fd_sync.core.watermark import parse_sn_time
from fd_sync.errors import BadRecord


class IncidentState(StrEnum):
    """A base instance's incident states (the raw ``state`` values); compare codes with
    these, never with literals. Instances may add their own codes: a code not here is open."""

    NEW = "1"
    IN_PROGRESS = "2"
    ON_HOLD = "3"
    RESOLVED = "6"
    CLOSED = "7"
    CANCELED = "8"

    @property
    def label(self) -> str:
        return STATE_NAMES[self.value]


OPEN_STATES = {
    IncidentState.NEW.value: "New",
    IncidentState.IN_PROGRESS.value: "In Progress",
    IncidentState.ON_HOLD.value: "On Hold",
}
CLOSED_STATES = {
    IncidentState.RESOLVED.value: "Resolved",
    IncidentState.CLOSED.value: "Closed",
    IncidentState.CANCELED.value: "Canceled",
}
STATE_NAMES = {**OPEN_STATES, **CLOSED_STATES}


def is_closed_state(code: str) -> bool:
    """Whether a raw state value means the incident is over (Resolved, Closed, Canceled)."""
    return code in CLOSED_STATES


LEVEL_NAMES = {"1": "High", "2": "Medium", "3": "Low"}  # urgency and impact
PRIORITY_NAMES = {"1": "Critical", "2": "High", "3": "Moderate", "4": "Low", "5": "Planning"}

# The Table API fields fd-sync reads (dot-walked names give references by name
# in the same request, instead of one lookup per incident).
FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "impact",
    "urgency",
    "priority",
    "assignment_group",
    "assignment_group.name",
    "assigned_to",
    "assigned_to.name",
    "sys_updated_on",
    "sys_mod_count",
    # Classification that routes match on (issue 4).
    "category",
    "cmdb_ci",
    "cmdb_ci.name",
    "company",
    "company.name",
    # Whether a record is new (Flashduty's documented rule: insert vs update).
    "sys_created_on",
)

# Read with each incident when [tickets] is on: what marks a ticket fd-sync opened (even one
# whose create was never recorded), and the resolution its close sends to Flashduty. Never
# displayed in Flashduty: not in the fingerprint, not a label.
TICKET_FIELDS = ("correlation_display", "close_notes")

_SYS_ID = re.compile(r"[0-9A-Za-z]{1,64}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SN_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
# json.dumps with options builds an encoder per call; these are built once.
_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=True)
MAX_FIELD_CHARS = 65536  # far above Flashduty's limits; bounds memory per record


@dataclass(frozen=True)
class Incident:
    sys_id: str
    number: str
    updated_on: str
    mod_count: int
    state: str
    short_description: str = ""
    description: str = ""
    impact: str = ""
    urgency: str = ""
    priority: str = ""
    assignment_group: str = ""
    assignment_group_id: str = ""
    assigned_to: str = ""
    assigned_to_id: str = ""
    category: str = ""
    cmdb_ci: str = ""
    cmdb_ci_id: str = ""
    company: str = ""
    company_id: str = ""
    comment: str = ""  # the latest additional comment, with [servicenow] sync_comments
    created_on: str = ""  # sys_created_on: equal to updated_on for a record never changed
    extra: dict[str, str] = field(default_factory=dict)  # [servicenow] extra_fields

    @property
    def is_open(self) -> bool:
        """Unknown states count as open: a missed page is worse than a spare alert."""
        return self.state not in CLOSED_STATES

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, self.state or "Unknown")

    def shown(self) -> dict[str, Any]:
        """What Flashduty displays; a change here is worth an update event."""
        shown: dict[str, Any] = {
            "short_description": self.short_description,
            "description": self.description,
            "state": self.state,
            "impact": self.impact,
            "urgency": self.urgency,
            "priority": self.priority,
            "assignment_group": self.assignment_group,
            "assigned_to": self.assigned_to,
        }
        # Fields added after the first release count only when set, so that the
        # fingerprints ledgers recorded before them still match.
        later = {
            "category": self.category,
            "cmdb_ci": self.cmdb_ci,
            "company": self.company,
            "comment": self.comment,
        }
        shown.update({k: v for k, v in later.items() if v})
        extra = {k: v for k, v in sorted(self.extra.items()) if v and k not in TICKET_FIELDS}
        if extra:
            shown["extra"] = extra
        return shown

    def fingerprint(self) -> str:
        text = _FINGERPRINT_JSON.encode(self.shown())
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        # Every field is a str or an int: a shallow copy is the whole dict.
        # (dataclasses.asdict deep-copies each value: 20 µs an incident.)
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


_FIELD_NAMES = tuple(f.name for f in fields(Incident))


def _text(value: Any, limit: int = MAX_FIELD_CHARS) -> str:
    """Coerce any JSON value to clean text: references to their value, junk to ''."""
    if type(value) is str and len(value) <= limit and value.isascii() and value.isprintable():
        return value  # the common case: nothing to cut, replace or strip
    if value is None:
        return ""
    if isinstance(value, dict):
        # A reference link or a display_value=all pair slipped through.
        inner = value.get("display_value", value.get("value", ""))
        return "" if isinstance(inner, dict | list) else _text(inner, limit)
    if isinstance(value, list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value) if isinstance(value, float) else str(value)[:64]
    elif isinstance(value, str):
        text = value
    else:
        return ""
    text = text[:limit]
    # Lone surrogates cannot be encoded as UTF-8 JSON; replace them.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text)


@functools.lru_cache(maxsize=4096)
def _is_sn_time(text: str) -> bool:
    """``YYYY-MM-DD HH:MM:SS``; the strict form is checked in C, strptime judges the rest.
    Cached: a page's rows share few seconds (a backfill's keyset pages, bursts)."""
    if _SN_TIME.fullmatch(text):
        try:
            datetime.fromisoformat(text)
            return True
        except ValueError:
            return False
    try:
        parse_sn_time(text)
    except ValueError:
        return False
    return True


def _code(value: Any) -> str:
    """A choice value such as state or urgency: short, digits expected."""
    return _text(value, 40).strip()


@dataclass(frozen=True, slots=True)
class RowVersion:
    """What a row's decision needs first: whose version it is, and whether it is closed.

    Read from the raw row without building an :class:`Incident`, so that a backfill's
    many rows that decide nothing (re-reads, closed incidents never alerted) cost little.
    The values are exactly those :func:`parse_record` would give.
    """

    sys_id: str
    updated_on: str
    mod_count: int
    closed: bool


def row_version(raw: Any) -> RowVersion | None:
    """The version of a well-formed row; None where :func:`parse_record` would refuse it
    (it then refuses it, with the reason, for the quarantine)."""
    if type(raw) is not dict and not isinstance(raw, Mapping):  # a dict skips the ABC check
        return None
    get = raw.get
    sys_id, updated_on = get("sys_id"), get("sys_updated_on")
    if not isinstance(sys_id, str) or not _SYS_ID.fullmatch(sys_id):
        return None
    if not isinstance(updated_on, str) or not _is_sn_time(updated_on):
        return None
    mod_text, state = get("sys_mod_count"), get("state")
    # The common case, plain short digits, without _code's cleaning (same result).
    if type(mod_text) is not str or not mod_text.isdigit() or not mod_text.isascii():
        mod_text = _code(mod_text)
    mod_count = int(mod_text) if mod_text.isdigit() and len(mod_text) < 18 else 0
    if type(state) is not str or not state.isdigit() or not state.isascii():
        state = _code(state)
    return RowVersion(sys_id, updated_on, mod_count, state in CLOSED_STATES)


def parse_record(raw: Any, extra_fields: Sequence[str] = ()) -> Incident:
    """An Incident from one Table API row; ``extra_fields`` are kept as text in ``extra``."""
    if not isinstance(raw, Mapping):
        raise BadRecord(f"row is {type(raw).__name__}, not an object")
    sys_id = raw.get("sys_id")
    if not isinstance(sys_id, str) or not _SYS_ID.fullmatch(sys_id):
        raise BadRecord(f"sys_id missing or malformed: {_text(sys_id, 80)!r}")
    updated_on = raw.get("sys_updated_on")
    if not isinstance(updated_on, str) or not _is_sn_time(updated_on):
        raise BadRecord(
            f"sys_updated_on missing or not YYYY-MM-DD HH:MM:SS: {_text(updated_on, 80)!r}"
        )
    mod_text = _code(raw.get("sys_mod_count"))
    mod_count = int(mod_text) if mod_text.isdigit() and len(mod_text) < 18 else 0
    number = _text(raw.get("number"), 40).strip() or f"sys_id:{sys_id}"
    created_on = raw.get("sys_created_on")
    return Incident(
        sys_id=sys_id,
        number=number,
        updated_on=updated_on,
        mod_count=mod_count,
        state=_code(raw.get("state")),
        short_description=_text(raw.get("short_description")).strip(),
        description=_text(raw.get("description")),
        impact=_code(raw.get("impact")),
        urgency=_code(raw.get("urgency")),
        priority=_code(raw.get("priority")),
        assignment_group=_text(raw.get("assignment_group.name"), 200).strip(),
        assignment_group_id=_code(raw.get("assignment_group")),
        assigned_to=_text(raw.get("assigned_to.name"), 200).strip(),
        assigned_to_id=_code(raw.get("assigned_to")),
        category=_text(raw.get("category"), 200).strip(),
        cmdb_ci=_text(raw.get("cmdb_ci.name"), 200).strip(),
        cmdb_ci_id=_code(raw.get("cmdb_ci")),
        company=_text(raw.get("company.name"), 200).strip(),
        company_id=_code(raw.get("company")),
        extra={name: _text(raw.get(name), 2000).strip() for name in extra_fields},
        created_on=created_on if isinstance(created_on, str) and _is_sn_time(created_on) else "",
    )
