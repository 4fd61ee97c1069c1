"""The Ledger's steps for tickets from Flashduty (mixed into it, apart only for length).

Each method is one transaction, with its crash argument:

- found incidents are queued as creates in the step that moves the search window past
  them (a crash searches again; a known incident is never queued twice);
- a create is marked attempted before its POST and recorded after the answer, in one step
  with the ticket's link, the link-back comment owed to Flashduty and the version the POST
  produced (so the poll never sends that version back); a crash in between leaves an
  attempted create, which the next try looks up by ``correlation_id`` before posting;
- an OpenAPI write likewise: attempted, then delivered; a comment whose answer never came
  is looked for in the incident's feed before it is sent again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fd_sync.core.tickets import FlashdutySource, OpenAPIWrite, OwedWrite, TicketSeen
from fd_sync.core.turns import answered_mod_count
from fd_sync.core.writeback import Intents
from fd_sync.store.links import Link, Links
from fd_sync.store.state import TICKETS_SEARCHED, TICKETS_SINCE, State
from fd_sync.store.tickets import FlashdutyWriteQueue, TicketCreate, TicketCreateQueue, Tickets
from fd_sync.store.times import iso
from fd_sync.store.writeback import NewWrite, WritebackQueue


@dataclass(frozen=True)
class TicketForward:
    """A new version of a ticket, handled: what the ledger now knows of it, and the writes
    it owes the Flashduty incident."""

    seen: TicketSeen
    writes: tuple[OpenAPIWrite, ...]
    reopened: bool = False  # its Flashduty timeline is read again


class TicketSteps:
    tickets: Tickets
    ticket_creates: TicketCreateQueue
    flashduty_writes: FlashdutyWriteQueue
    links: Links
    writeback: WritebackQueue
    state: State
    clock: Callable[[], datetime]

    if TYPE_CHECKING:  # the Ledger's

        def transaction(self, doing: str = "") -> contextlib.AbstractContextManager[None]: ...

    def begin_tickets(self, since: int) -> None:
        """The first run with [tickets] on: only incidents that start after it open tickets."""
        with self.transaction("begin tickets"):
            self.state.set(TICKETS_SINCE, str(since))
            self.state.set(TICKETS_SEARCHED, str(since))

    def record_found_tickets(
        self,
        found: Sequence[tuple[FlashdutySource, Mapping[str, str]]],
        *,
        searched_to: int | None,
        run_id: str,
    ) -> None:
        """New incidents, each queued to open a ticket, with the search window past them."""
        with self.transaction("queue tickets"):
            known = self.tickets.known(source.incident_id for source, _ in found)
            fresh = [(s, f) for s, f in found if s.incident_id not in known]
            self.tickets.add([s for s, _ in fresh], self.clock())
            for source, fields in fresh:
                self.ticket_creates.queue(source, fields, run_id=run_id)
            if searched_to is not None:
                self.state.set(TICKETS_SEARCHED, str(searched_to))

    def attempt_create(self, item: TicketCreate) -> None:
        """Committed before the POST: after a crash, the next try looks the ticket up."""
        with self.transaction("record a ticket attempt"):
            self.ticket_creates.mark_attempt([item.id])

    def record_ticket_opened(
        self, item: TicketCreate, record: Mapping[str, Any], *, link_back: OpenAPIWrite
    ) -> None:
        """The ticket exists (its POST answered, or a look-up found it): linked, its version
        handled, the link-back comment owed to Flashduty."""
        sys_id, number = str(record.get("sys_id") or ""), str(record.get("number") or "")
        with self.transaction("record a ticket"):
            now = self.clock()
            self.tickets.opened(item.incident_id, record, now)
            self.ticket_creates.opened(item.id, sys_id, number)
            self.ticket_creates.mark_delivered([item.id], http_status=201)
            self.links.ticket(sys_id, number, incident_id=item.incident_id, sent_at=iso(now))
            owed = OwedWrite(item.incident_id, sys_id, number, link_back)
            self.flashduty_writes.queue([owed], run_id="")

    def _record_forwards(
        self, forwards: Sequence[TicketForward], owed: Sequence[OwedWrite], *, run_id: str
    ) -> int:
        """Inside the page's step: the tickets' versions handled, and the writes owed to
        Flashduty's incidents (tickets' changes, the desk's reassignments) queued."""
        self.flashduty_writes.queue(owed, run_id=run_id)
        queued = len(owed)
        for forward in forwards:
            seen = forward.seen
            self.tickets.handled(seen)
            writes = [
                OwedWrite(seen.incident_id, seen.sys_id, seen.number, w) for w in forward.writes
            ]
            self.flashduty_writes.queue(writes, run_id=run_id)
            queued += len(writes)
            if forward.reopened:
                self.links.watch_again(seen.sys_id)
        return queued

    def attempt_flashduty_writes(self, ids: Sequence[int]) -> None:
        """Committed before the OpenAPI request: a crash after it repeats it at most once
        (a comment is looked for in the feed first)."""
        with self.transaction("record an OpenAPI attempt"):
            self.flashduty_writes.mark_attempt(ids)

    def record_moot_write(self, write_id: int) -> None:
        """A resolve or reopen the incident no longer needs (it is in that state already):
        cancelled, and no feed entry will be its echo."""
        with self.transaction("cancel a moot OpenAPI write"):
            self.flashduty_writes.cancel(write_id)
            self.flashduty_writes.echo_seen([write_id])

    def record_flashduty_written(self, ids: Sequence[int], *, request_id: str | None) -> None:
        with self.transaction("record an OpenAPI write"):
            self.flashduty_writes.mark_delivered(ids, http_status=200, request_id=request_id)

    def stop_ticket(self, link: Link, why: str, *, read_at: int, run_id: str) -> None:
        """The Flashduty incident is gone (merged away, deleted): the ticket stays, a work
        note says so, and syncing stops."""
        with self.transaction("stop syncing a ticket"):
            self.tickets.stop(link.incident_id or "")
            self.links.record_read(
                link.sys_id,
                progress="",
                updated_at=0,
                read_at=read_at,
                cursor=link.cursor,
                watching=False,
            )
            note = f"[Flashduty] {why}; fd-sync no longer syncs this ticket."
            write = NewWrite(
                link.sys_id, link.number, link.incident_id or "", note, Intents(), ("stopped",)
            )
            self.writeback.queue(write, run_id=run_id)

    def tickets_dead(self) -> int:
        """Creates ServiceNow refused and writes Flashduty refused, kept for an operator."""
        return self.ticket_creates.counts().dead + self.flashduty_writes.counts().dead

    def _ticket_own_version(self, sys_id: str, answer: Mapping[str, object]) -> None:
        """A write-back PATCH to a ticket: the version it produced is handled when it is the
        only change since the ledger's (the poll must not send fd-sync's own state back)."""
        seen = self.tickets.by_sys_id([sys_id]).get(sys_id)
        mod_count = answered_mod_count(answer)
        if seen is None or mod_count is None or mod_count != seen.mod_count + 1:
            return
        state = str(answer.get("state") or seen.state)
        urgency = str(answer.get("urgency") or seen.urgency)
        assigned = str(answer.get("assigned_to") or seen.assigned_to)
        self.tickets.handled(
            replace(seen, state=state, urgency=urgency, assigned_to=assigned, mod_count=mod_count)
        )
