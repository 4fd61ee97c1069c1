"""The desk's work notes, ServiceNow -> Flashduty (``[forward] work_notes``).

Read with the commands' one journal query a cycle (then widened to every work note): a
note by a person (not fd-sync's user, not a ``/flashduty`` command, not one of fd-sync's
own ``[Flashduty]`` notes) on an incident linked to a Flashduty incident becomes comments
on it, ``mute_reply``, prefixed with the author's name, at most 1,024 characters each, in
order. Queued in the step that moves the journal's watermark (each note once); its echo
in Flashduty's feed is matched to the write and never written back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fd_sync.core.commands import is_command
from fd_sync.core.tickets import OwedWrite, comment_writes
from fd_sync.core.writeback import MARKER_PREFIX
from fd_sync.servicenow.lookups import Lookups
from fd_sync.store.ledger import Ledger

ALL_WORK_NOTES = "name={table}^element=work_notes"


def is_desk_note(row: Mapping[str, Any], own_user: str) -> bool:
    text = str(row.get("value") or "")
    return (
        bool(text.strip())
        and str(row.get("sys_created_by") or "") != own_user
        and not is_command(text)
        and MARKER_PREFIX not in text
        and not text.startswith("[Flashduty]")
    )


def desk_note_writes(
    rows: Sequence[Mapping[str, Any]], ledger: Ledger, lookups: Lookups, own_user: str
) -> list[OwedWrite]:
    """The comments owed to Flashduty for these journal rows, oldest first."""
    notes = [r for r in rows if is_desk_note(r, own_user)]
    if not notes:
        return []
    links = ledger.links.get(str(r.get("element_id") or "") for r in notes)
    linked = [
        r for r in notes if (link := links.get(str(r.get("element_id")))) and link.incident_id
    ]
    if not linked:
        return []
    authors = lookups.users(str(r.get("sys_created_by") or "") for r in linked)
    owed: list[OwedWrite] = []
    for row in linked:
        link = links[str(row["element_id"])]
        by = str(row.get("sys_created_by") or "")
        member = authors.get(by)
        name = member.name if member is not None and member.name else by
        text = f"{name} (ServiceNow work note on {link.number}): {str(row.get('value')).strip()}"
        journal_id = str(row.get("sys_id") or "")
        owed += [
            OwedWrite(link.incident_id or "", link.sys_id, link.number, write, f"{journal_id}/{n}")
            for n, write in enumerate(comment_writes(text))
        ]
    return owed
