"""`fd-sync outbox`: see the events owed to Flashduty and the writes owed to ServiceNow
(write-backs, shown as ``w12``), requeue dead ones, give up on one."""

from __future__ import annotations

from typing import Any

from fd_sync.core.decide import Kind
from fd_sync.errors import UsageRefused
from fd_sync.store.ledger import Ledger
from fd_sync.store.outbox import OutboxEvent, OutboxStatus
from fd_sync.store.writeback import ID_PREFIX, Write

Entry = OutboxEvent | Write


def parse_id(text: str) -> tuple[bool, int]:
    """``12`` (an event for Flashduty) or ``w12`` (a write-back): (is_writeback, id)."""
    writeback = text.lower().startswith(ID_PREFIX)
    digits = text[len(ID_PREFIX) :] if writeback else text
    if not digits.isdigit():
        raise UsageRefused(
            f"{text!r} is not an event id: give a number (an event for Flashduty) or "
            f"{ID_PREFIX}NUMBER (a write-back to ServiceNow), as fd-sync outbox list shows"
        )
    return writeback, int(digits)


def waiting(ledger: Ledger, *, dead_only: bool, show_all: bool, limit: int) -> list[Entry]:
    """Pending and dead events and write-backs, oldest first; ``show_all``: every one,
    newest first."""
    if show_all:
        both: list[Entry] = [*ledger.outbox.events(limit=limit)]
        both += ledger.writeback.events(limit=limit)
        return sorted(both, key=lambda e: e.created_at, reverse=True)[:limit]
    statuses = [OutboxStatus.DEAD] if dead_only else [OutboxStatus.PENDING, OutboxStatus.DEAD]
    found: list[Entry] = [e for s in statuses for e in ledger.outbox.events(status=s, limit=limit)]
    found += [w for s in statuses for w in ledger.writeback.events(status=s, limit=limit)]
    return sorted(found, key=lambda e: (e.created_at, e.id))[:limit]


def as_json(e: Entry) -> dict[str, Any]:
    if isinstance(e, Write):
        return {
            "id": e.label,
            "to": "servicenow",
            "number": e.number,
            "sys_id": e.sys_id,
            "kind": "write-back",
            "kinds": list(e.kinds),
            "incident_id": e.incident_id,
            "status": e.status.value,
            "attempts": e.attempts,
            "created_at": e.created_at,
            "http_status": e.http_status,
            "error": e.error_message,
        }
    return {
        "id": e.id,
        "number": e.number,
        "sys_id": e.sys_id,
        "kind": e.kind.value,
        "destination": e.destination,
        "status": e.status.value,
        "attempts": e.attempts,
        "created_at": e.created_at,
        "http_status": e.http_status,
        "error_code": e.error_code,
        "error": e.error_message,
        "request_id": e.request_id,
        "to": "flashduty",
    }


def line(e: Entry) -> str:
    error = f"  {' '.join(e.error_message.split())}" if e.error_message else ""
    if isinstance(e, Write):
        kind = "write"  # to ServiceNow: a work note and/or a state change
        return (
            f"{e.label:>7}  {e.number:<12} {kind:<8} {e.status.value:<9} "
            f"tries {e.attempts:<3} {e.created_at} ({', '.join(e.kinds)}){error}"
        )
    return (
        f"{e.id:>7}  {e.number:<12} {e.kind.value:<8} {e.status.value:<9} "
        f"tries {e.attempts:<3} {e.created_at}{error}"
    )


def retry_writeback(ledger: Ledger, write_id: int | None) -> int:
    """Requeue one refused write-back, or (None) all of them."""
    if write_id is not None:
        write = ledger.writeback.get(write_id)
        if write is None or write.status is not OutboxStatus.DEAD:
            state = write.status.value if write else "unknown"
            raise UsageRefused(f"write-back w{write_id} is {state}, not dead; nothing requeued")
    return ledger.writeback.retry_dead(write_id)


def drop_writeback(ledger: Ledger, write_id: int) -> Write:
    write = ledger.writeback.get(write_id)
    if write is None or write.status not in (OutboxStatus.PENDING, OutboxStatus.DEAD):
        state = write.status.value if write else "unknown"
        raise UsageRefused(
            f"write-back w{write_id} is {state}: only pending or dead ones can be dropped"
        )
    ledger.writeback.drop(write_id)
    return write


def retry(ledger: Ledger, event_id: int | None) -> tuple[int, int]:
    """Requeue one dead event, or (None) all of them: (requeued, cancelled because their
    incident closed before Flashduty ever had its alert)."""
    if event_id is not None:
        event = ledger.outbox.event(event_id)
        if event is None or event.status is not OutboxStatus.DEAD:
            state = event.status.value if event else "unknown"
            raise UsageRefused(f"event {event_id} is {state}, not dead; nothing requeued")
    return ledger.outbox.retry_dead(event_id)


def drop(ledger: Ledger, event_id: int) -> tuple[OutboxEvent, int, list[str]]:
    """Give up on a pending or dead event: the event, how many went, and notes to print."""
    event = ledger.outbox.event(event_id)
    if event is None or event.status not in (OutboxStatus.PENDING, OutboxStatus.DEAD):
        state = event.status.value if event else "unknown"
        raise UsageRefused(
            f"event {event_id} is {state}: only pending or dead events can be dropped"
        )
    count = ledger.drop(event)
    notes = []
    if event.kind is Kind.RESOLVE:
        notes.append(f"note: the alert of {event.number} stays open in Flashduty; resolve it there")
    return event, count, notes
