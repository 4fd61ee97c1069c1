"""The write-back's plan: what each incident's one PATCH says, decided just before it.

Everything queued for an incident goes in one write (the notes joined in order, the
intents merged); a state change is decided against the incident as ServiceNow has it
now, because a person may have moved it since the Flashduty event was read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fd_sync.core.fields import Match, field_changes
from fd_sync.core.writeback import (
    Intents,
    ServiceNowNow,
    StateRules,
    changed_by_person,
    marker,
    state_fields,
)
from fd_sync.store.links import Link
from fd_sync.store.writeback import Write


@dataclass(frozen=True)
class PlannedWrite:
    """One PATCH: everything queued for an incident, its note ending with the marker of
    the last write it carries."""

    sys_id: str
    number: str
    writes: tuple[Write, ...]  # the queued writes this PATCH carries
    note: str
    fields: dict[str, str]  # the state change, if any
    intents: Intents  # merged: what a refused state change is kept as

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for w in self.writes for k in w.kinds)

    @property
    def body(self) -> dict[str, str]:
        return {**({"work_notes": self.note} if self.note else {}), **self.fields}


@dataclass(frozen=True)
class FieldRules:
    """Assignment and severity: each assignee's ServiceNow user by email (casefolded), and
    severity -> (urgency, impact)."""

    matches: Mapping[str, Match] = field(default_factory=dict)
    severity_map: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def wants_current(groups: Mapping[str, Sequence[Write]], rules: StateRules) -> list[str]:
    """Incidents whose fields may change: only those need ServiceNow's present version."""
    states = bool(rules.acknowledge_state or rules.resolve_state)
    return [
        sys_id
        for sys_id, writes in groups.items()
        if any(
            (states and (w.intents.ack_at_ms is not None or w.intents.close))
            or w.intents.assignee is not None
            or w.intents.severity is not None
            for w in writes
        )
    ]


def plan_writes(
    groups: Mapping[str, Sequence[Write]],
    current: Mapping[str, ServiceNowNow],
    links: Mapping[str, Link],
    rules: StateRules,
    fields_rules: FieldRules | None = None,
) -> list[PlannedWrite]:
    planned = []
    for sys_id, writes in groups.items():
        intents = Intents()
        for w in writes:
            intents = intents.merged(w.intents)
        note = "\n".join(w.note for w in writes if w.note)
        now = current.get(sys_id)
        fields: dict[str, str] = {}
        if now is not None:
            link = links.get(sys_id)
            own = link.own_mod_count if link else None
            fields, _ = state_fields(intents, now, rules, own_mod_count=own)
            wanted = intents.assignee is not None or intents.severity is not None
            # A person's change in ServiceNow after the event wins, as for states.
            if (
                fields_rules is not None
                and wanted
                and not changed_by_person(intents, now, own_mod_count=own)
            ):
                more, lines = field_changes(
                    intents.assignee,
                    intents.severity,
                    matches=fields_rules.matches,
                    severity_map=fields_rules.severity_map,
                    current_assigned_to=now.assigned_to,
                )
                fields.update(more)
                note = "\n".join([note, *lines]) if note else "\n".join(lines)
        if note:
            note += "\n" + marker(writes[-1].id)  # how a retry knows whether it landed
        planned.append(
            PlannedWrite(sys_id, writes[-1].number, tuple(writes), note, fields, intents)
        )
    return planned
