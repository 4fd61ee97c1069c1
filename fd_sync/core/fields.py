"""Who owns it and how bad it is, Flashduty -> ServiceNow: assignment and severity. Pure.

``[writeback] assign``: ``"acknowledger"`` makes the person whose acknowledgement is the
incident's first (``ack_time``) the ServiceNow ``assigned_to``, once; ``"assignee"`` follows
every assignment in Flashduty to a person (``i_assign``). ``[writeback] severity``: a
severity change (``i_r_severity``) sets urgency and impact through ``[tickets.severity]``.
People are matched by email (the only identity both systems share); one without exactly
one active ServiceNow user is not assigned, and the work note says who and why.

The decision is made when the write is made, against the incident as ServiceNow has it
then, by the rule states follow: a person's change after fd-sync read the event wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fd_sync.core.feed import FeedEntry, FlashdutyIncident, Person

ACKNOWLEDGER, ASSIGNEE = "acknowledger", "assignee"


@dataclass(frozen=True)
class Assignee:
    """The Flashduty person a write would make ``assigned_to``."""

    name: str
    email: str


def assignee_of(
    entries: Sequence[FeedEntry],
    incident: FlashdutyIncident,
    people: Mapping[int, Person],
    mode: str,
) -> Assignee | None:
    """Whom these new entries (fd-sync's own left out) make the assignee, if anyone."""
    chosen: int | None = None
    if mode == ACKNOWLEDGER:
        for entry in entries:
            first_ack = entry.created_at // 1000 == incident.ack_time
            if entry.type == "i_ack" and entry.creator_id and first_ack:
                chosen = entry.creator_id
                break
    elif mode == ASSIGNEE:
        for entry in entries:
            if entry.type != "i_assign":
                continue
            targets = entry.detail.get("to") or entry.detail.get("person_ids") or ()
            ids = [int(t) for t in targets if str(t).isdigit()]
            if ids:
                chosen = ids[0]  # the first person of the latest assignment
    if chosen is None:
        return None
    person = people.get(chosen, Person())
    return Assignee(person.short(chosen), person.email)


def severity_changed(entries: Sequence[FeedEntry], incident: FlashdutyIncident) -> str | None:
    """The incident's severity now, if these entries changed it."""
    if any(e.type == "i_r_severity" for e in entries) and incident.severity:
        return incident.severity
    return None


@dataclass(frozen=True)
class Match:
    """An email's ServiceNow user (``sys_id``), or why there is none (``problem``)."""

    sys_id: str = ""
    problem: str = ""


def field_changes(
    assignee: Assignee | None,
    severity: str | None,
    *,
    matches: Mapping[str, Match],
    severity_map: Mapping[str, tuple[str, str]],
    current_assigned_to: str | None,
) -> tuple[dict[str, str], list[str]]:
    """The fields to write and the note lines saying what could not be."""
    fields: dict[str, str] = {}
    lines: list[str] = []
    if assignee is not None:
        match = matches.get(assignee.email.casefold()) if assignee.email else None
        if match is not None and match.sys_id:
            if match.sys_id != current_assigned_to:
                fields["assigned_to"] = match.sys_id
        else:
            why = match.problem if match is not None else "Flashduty has no email for them"
            who = f"{assignee.name} ({assignee.email})" if assignee.email else assignee.name
            lines.append(f"[fd-sync] Not assigned in ServiceNow: {who}: {why}")
    if severity is not None and severity in severity_map:
        urgency, impact = severity_map[severity]
        fields.update(urgency=urgency, impact=impact)
    return fields, lines
