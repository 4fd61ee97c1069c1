"""ServiceNow -> Flashduty beyond the alert events: the desk's reassignments (``[forward]
assignment``), through the OpenAPI.

A new version of a linked incident whose ``assigned_to`` differs from the version the
ledger last handled was reassigned by a person: fd-sync's own writes are versions the
ledger handled already (their ``assigned_to`` included), so they never come back here and
nothing ping-pongs between the two directions. The member is found by email when the
write is sent (``/member/list``); the write is queued with the page, in the step that
moves the watermark.
"""

from __future__ import annotations

from collections.abc import Sequence

from fd_sync.core.decide import Decision
from fd_sync.core.incident import Incident
from fd_sync.core.tickets import OpenAPIWrite, OwedWrite
from fd_sync.servicenow.people import People
from fd_sync.store.ledger import Ledger


def assign_write(incident: Incident, email: str) -> OpenAPIWrite:
    """The /incident/assign owed for a reassignment to this person (member found later)."""
    return OpenAPIWrite("assign", {"email": email, "name": incident.assigned_to})


class AssignmentForwarder:
    def __init__(self, ledger: Ledger, people: People) -> None:
        self.ledger = ledger
        self.people = people

    def owed(self, decisions: Sequence[Decision]) -> list[OwedWrite]:
        """The reassignments among these decisions, for the linked Flashduty incidents."""
        ids = [d.incident.sys_id for d in decisions]
        if not ids:
            return []
        before = self.ledger.incidents.snapshots(ids)
        moved = [
            d.incident
            for d in decisions
            if d.incident.assigned_to_id
            and d.incident.sys_id in before
            and before[d.incident.sys_id].assigned_to_id != d.incident.assigned_to_id
        ]
        if not moved:
            return []
        links = self.ledger.links.get(i.sys_id for i in moved)
        linked = [i for i in moved if i.sys_id in links and links[i.sys_id].incident_id]
        emails = self.people.emails_of(i.assigned_to_id for i in linked)
        return [
            OwedWrite(
                links[i.sys_id].incident_id or "",
                i.sys_id,
                i.number,
                assign_write(i, emails.get(i.assigned_to_id, "")),
            )
            for i in linked
        ]
