"""ServiceNow -> Flashduty for tickets: what the poll's new versions of them mean.

The poll reads tickets like any incident; the planner hands their rows here instead of to
the alert decisions (a ticket has no alert of fd-sync's: an alert push would echo it
back to Flashduty as a new incident). A ticket whose create was never recorded (a kill
between the POST and its commit) is recognised by ``correlation_display`` and left for
the create's look-up. The rest is :func:`fd_sync.core.tickets.forward`, pure; the writes
it owes are queued with the page, in the step that moves the watermark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fd_sync.core.incident import RowVersion, parse_record
from fd_sync.core.tickets import CORRELATION_DISPLAY, forward
from fd_sync.servicenow.lookups import Lookups
from fd_sync.servicenow.people import People
from fd_sync.store.ledger import Ledger
from fd_sync.store.ticket_steps import TicketForward
from fd_sync.sync.forward import assign_write


@dataclass(frozen=True)
class TicketRows:
    """A page split: the rows of tickets apart from the others."""

    others: list[Any]
    other_versions: list[RowVersion | None]
    forwards: list[TicketForward]
    unrecorded: int = 0  # tickets whose create is not recorded yet


class TicketForwarder:
    def __init__(
        self,
        ledger: Ledger,
        lookups: Lookups,
        severity_map: Mapping[str, tuple[str, str]],
        *,
        extra_fields: tuple[str, ...],
        people: People | None = None,
    ) -> None:
        self.ledger = ledger
        self.people = people  # [forward] assignment: a desk's reassignment goes to Flashduty
        self.lookups = lookups
        self.severity_map = severity_map
        self.extra_fields = extra_fields

    def split(self, records: Sequence[Any], versions: Sequence[RowVersion | None]) -> TicketRows:
        ids = [v.sys_id for v in versions if v is not None]
        seen = self.ledger.tickets.by_sys_id(ids)
        others: list[Any] = []
        other_versions: list[RowVersion | None] = []
        tickets: dict[str, Any] = {}
        unrecorded = 0
        for raw, version in zip(records, versions, strict=True):
            if version is not None and version.sys_id in seen:
                tickets[version.sys_id] = raw  # the page's newest version of it
            elif version is not None and raw.get("correlation_display") == CORRELATION_DISPLAY:
                unrecorded += 1
            else:
                others.append(raw)
                other_versions.append(version)
        return TicketRows(others, other_versions, self._forwards(tickets, seen), unrecorded)

    def _forwards(self, rows: Mapping[str, Any], seen: Mapping[str, Any]) -> list[TicketForward]:
        incidents = [parse_record(raw, self.extra_fields) for raw in rows.values()]
        changed = [i for i in incidents if i.mod_count > seen[i.sys_id].mod_count]
        if not changed:
            return []
        comments = self.lookups.latest_comments([i.sys_id for i in changed])
        emails: dict[str, str] = {}
        if self.people is not None:  # one request for every reassigned ticket of the page
            moved = [
                i.assigned_to_id
                for i in changed
                if i.assigned_to_id and i.assigned_to_id != seen[i.sys_id].assigned_to
            ]
            emails = self.people.emails_of(moved) if moved else {}
        out = []
        for version in changed:
            before = seen[version.sys_id]
            incident = replace(version, comment=comments.get(version.sys_id, ""))
            writes = forward(incident, before, self.severity_map)
            reassigned = incident.assigned_to_id and incident.assigned_to_id != before.assigned_to
            if self.people is not None and reassigned:
                writes.append(assign_write(incident, emails.get(incident.assigned_to_id, "")))
            after = replace(
                before,
                state=incident.state,
                urgency=incident.urgency,
                mod_count=incident.mod_count,
                last_comment=incident.comment or before.last_comment,
                assigned_to=incident.assigned_to_id,
            )
            reopened = any(w.kind == "reopen" for w in writes)
            out.append(TicketForward(after, tuple(writes), reopened))
        return out
