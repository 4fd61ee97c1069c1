"""`fd-sync outbox`: see the events owed to Flashduty, requeue dead ones, give up on one."""

from __future__ import annotations

from typing import Any

from fd_sync.core.decide import Kind
from fd_sync.errors import UsageRefused
from fd_sync.store.ledger import Ledger
from fd_sync.store.outbox import OutboxEvent, OutboxStatus


def waiting(ledger: Ledger, *, dead_only: bool, show_all: bool, limit: int) -> list[OutboxEvent]:
    """Pending and dead events in queue order; ``show_all``: every event, newest first."""
    if show_all:
        return ledger.outbox.events(limit=limit)
    statuses = [OutboxStatus.DEAD] if dead_only else [OutboxStatus.PENDING, OutboxStatus.DEAD]
    events = [e for s in statuses for e in ledger.outbox.events(status=s, limit=limit)]
    return sorted(events, key=lambda e: e.id)[:limit]


def as_json(e: OutboxEvent) -> dict[str, Any]:
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
    }


def line(e: OutboxEvent) -> str:
    error = f"  {e.error_message}" if e.error_message else ""
    return (
        f"{e.id:>7}  {e.number:<12} {e.kind.value:<8} {e.status.value:<9} "
        f"tries {e.attempts:<3} {e.created_at}{error}"
    )


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
