"""`fd-sync outbox`: see the items of every durable queue, requeue dead ones, give up on one.

Items are named by their queue's prefix: ``12`` an event owed to Flashduty, ``w12`` a
write-back owed to ServiceNow, ``c12`` a command, ``t12`` a ticket to create in ServiceNow,
``f12`` a write owed to a ticket's Flashduty incident (OpenAPI)."""

from __future__ import annotations

from typing import Any

from fd_sync.core.decide import Kind
from fd_sync.errors import UsageRefused
from fd_sync.store.commands import Command
from fd_sync.store.ledger import Ledger
from fd_sync.store.outbox import OutboxEvent
from fd_sync.store.queue import DurableQueue, QueueStatus
from fd_sync.store.tickets import FlashdutyWrite, TicketCreate
from fd_sync.store.writeback import Write

Entry = OutboxEvent | Write | Command | TicketCreate | FlashdutyWrite
NOUNS = {
    "": "event",
    "w": "write-back",
    "c": "command",
    "t": "ticket create",
    "f": "Flashduty write",
}


def parse_id(text: str) -> tuple[str, int]:
    """``12`` (an event for Flashduty), ``w12`` (a write-back), ``t12``, ``f12``...:
    (the queue's prefix, the id)."""
    prefix = text[:1].lower() if text[:1].isalpha() else ""
    digits = text[len(prefix) :]
    if prefix not in NOUNS or not digits.isdigit():
        raise UsageRefused(
            f"{text!r} is not an item id: give a number (an event for Flashduty), "
            "wNUMBER (a write-back), tNUMBER (a ticket create) or fNUMBER (a Flashduty "
            "write), as fd-sync outbox list shows"
        )
    return prefix, int(digits)


def queue_of(ledger: Ledger, prefix: str) -> DurableQueue[Any]:
    (queue,) = [q for q in ledger.queues if q.label_prefix == prefix]
    return queue


def waiting(ledger: Ledger, *, dead_only: bool, show_all: bool, limit: int) -> list[Entry]:
    """Pending and dead items of every queue, oldest first; ``show_all``: every one,
    newest first."""
    if show_all:
        every: list[Entry] = [e for q in ledger.queues for e in q.items(limit=limit)]
        return sorted(every, key=lambda e: e.created_at, reverse=True)[:limit]
    statuses = [QueueStatus.DEAD] if dead_only else [QueueStatus.PENDING, QueueStatus.DEAD]
    found: list[Entry] = [
        e for q in ledger.queues for s in statuses for e in q.items(status=s, limit=limit)
    ]
    return sorted(found, key=lambda e: (e.created_at, e.id))[:limit]


def as_json(e: Entry) -> dict[str, Any]:
    """One item as `outbox list --json` prints it: the queue's shared fields, then its own."""
    shared: dict[str, Any] = {
        "id": e.id if isinstance(e, OutboxEvent) else e.label,
        "number": e.number,
        "sys_id": e.sys_id,
        "status": e.status.value,
        "attempts": e.attempts,
        "created_at": e.created_at,
    }
    if isinstance(e, Command):
        return {**shared, "to": "servicenow", "kind": "command", "verb": e.verb, "author": e.author}
    failure = {"http_status": e.http_status, "error": e.error_message}
    if isinstance(e, OutboxEvent):
        return {
            **shared,
            **failure,
            "to": "flashduty",
            "kind": e.kind.value,
            "destination": e.destination,
            "error_code": e.error_code,
            "request_id": e.request_id,
        }
    if isinstance(e, TicketCreate):
        own: dict[str, Any] = {"to": "servicenow", "kind": "ticket"}
    elif isinstance(e, FlashdutyWrite):
        own = {"to": "flashduty", "kind": e.kind}
    else:
        own = {"to": "servicenow", "kind": "write-back", "kinds": list(e.kinds)}
    return {**shared, **failure, **own, "incident_id": e.incident_id}


def line(e: Entry, hold: dict[str, str] | None = None) -> str:
    """One item; ``hold`` (the Ledger's write-back hold) says why a pending update waits."""
    error = f"  {' '.join(e.error_message.split())}" if e.error_message else ""
    if hold and isinstance(e, OutboxEvent) and e.status is QueueStatus.PENDING and e.attempts == 0:
        error += (
            f"  (may wait: Flashduty cannot be read since {hold.get('since')}, so whether a "
            f"responder closed the alert is unknown; it goes by {hold.get('until')} at the "
            "latest)"
        )
    if isinstance(e, TicketCreate):
        title = e.fields.get("short_description", "")
        return (
            f"{e.label:>7}  {e.number:<12} {'ticket':<8} {e.status.value:<9} "
            f"tries {e.attempts:<3} {e.created_at} (Flashduty {e.incident_id}: {title}){error}"
        )
    if isinstance(e, FlashdutyWrite):
        return (
            f"{e.label:>7}  {e.number:<12} {e.kind:<8} {e.status.value:<9} "
            f"tries {e.attempts:<3} {e.created_at} (to Flashduty {e.incident_id}){error}"
        )
    if isinstance(e, Command):
        return (
            f"{e.label:>7}  {e.number:<12} {'command':<8} {e.status.value:<9} "
            f"tries {e.attempts:<3} {e.created_at} ({e.verb or 'unreadable'} by {e.author})"
        )
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


def _noun(queue: DurableQueue[Any]) -> str:
    return NOUNS.get(queue.label_prefix, "item")


def retry(ledger: Ledger, queue: DurableQueue[Any], item_id: int | None) -> tuple[int, int]:
    """Requeue one dead item, or (None) all of the queue's: (requeued, cancelled because
    their incident closed before Flashduty ever had its alert)."""
    if item_id is not None:
        item = queue.get(item_id)
        if item is None or item.status is not QueueStatus.DEAD:
            state = item.status.value if item else "unknown"
            label = f"{queue.label_prefix}{item_id}"
            raise UsageRefused(f"{_noun(queue)} {label} is {state}, not dead; nothing requeued")
    return ledger.retry(queue, item_id)


def drop(ledger: Ledger, queue: DurableQueue[Any], item_id: int) -> tuple[Entry, int, list[str]]:
    """Give up on a pending or dead item: the item, how many went, and notes to print."""
    item = queue.get(item_id)
    if item is None or item.status not in (QueueStatus.PENDING, QueueStatus.DEAD):
        state = item.status.value if item else "unknown"
        noun = _noun(queue)
        label = f"{queue.label_prefix}{item_id}"
        only = "only pending or dead events" if noun == "event" else "only pending or dead ones"
        raise UsageRefused(f"{noun} {label} is {state}: {only} can be dropped")
    count = ledger.drop(item)
    notes = []
    if isinstance(item, OutboxEvent) and item.kind is Kind.RESOLVE:
        notes.append(f"note: the alert of {item.number} stays open in Flashduty; resolve it there")
    return item, count, notes
