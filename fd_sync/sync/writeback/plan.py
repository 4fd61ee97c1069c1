"""The write-back's plan: what each incident's one PATCH says, decided just before it.

Everything queued for an incident goes in one write (the notes joined in order, the
intents merged); a state change is decided against the incident as ServiceNow has it
now, because a person may have moved it since the Flashduty event was read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fd_sync.core.writeback import Intents, ServiceNowNow, StateRules, marker, state_fields
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


def wants_current(groups: Mapping[str, Sequence[Write]], rules: StateRules) -> list[str]:
    """Incidents whose state may change: only those need ServiceNow's present version."""
    if not (rules.acknowledge_state or rules.resolve_state):
        return []
    return [
        sys_id
        for sys_id, writes in groups.items()
        if any(w.intents.ack_at_ms is not None or w.intents.close for w in writes)
    ]


def plan_writes(
    groups: Mapping[str, Sequence[Write]],
    current: Mapping[str, ServiceNowNow],
    links: Mapping[str, Link],
    rules: StateRules,
) -> list[PlannedWrite]:
    planned = []
    for sys_id, writes in groups.items():
        intents = Intents()
        for w in writes:
            intents = intents.merged(w.intents)
        note = "\n".join(w.note for w in writes if w.note)
        if note:
            note += "\n" + marker(writes[-1].id)  # how a retry knows whether it landed
        now = current.get(sys_id)
        fields: dict[str, str] = {}
        if now is not None:
            link = links.get(sys_id)
            own = link.own_mod_count if link else None
            fields, _ = state_fields(intents, now, rules, own_mod_count=own)
        planned.append(
            PlannedWrite(sys_id, writes[-1].number, tuple(writes), note, fields, intents)
        )
    return planned
