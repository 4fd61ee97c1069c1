"""The Ledger's steps for the Flashduty -> ServiceNow write-back (apart only for length).

Each method is one transaction, as every step of :class:`~fd_sync.store.ledger.Ledger`,
whose class these are mixed into; the crash argument is in each docstring.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fd_sync.core.decide import Decision, LedgerEntry, closed_again
from fd_sync.core.turns import TurnOutcome, answered_mod_count, own_version
from fd_sync.store.incidents import Incidents
from fd_sync.store.links import Link, Links
from fd_sync.store.outbox import Outbox
from fd_sync.store.state import FLASHDUTY_READ, OWN_INTEGRATIONS, UNMATCHED_PEOPLE, State
from fd_sync.store.tickets import FlashdutyWriteQueue
from fd_sync.store.times import iso
from fd_sync.store.writeback import NewWrite, Write, WritebackQueue


@dataclass(frozen=True)
class RefusedPart:
    """The state change ServiceNow refused while the notes of the same write went."""

    write: NewWrite
    http_status: int | None
    message: str


class WritebackSteps:
    incidents: Incidents
    outbox: Outbox
    writeback: WritebackQueue
    links: Links
    state: State
    clock: Callable[[], datetime]
    flashduty_writes: FlashdutyWriteQueue

    if TYPE_CHECKING:  # the Ledger's, which these steps are mixed into

        def _ticket_own_version(self, sys_id: str, answer: Mapping[str, object]) -> None: ...
        def transaction(self, doing: str = "") -> contextlib.AbstractContextManager[None]: ...
        def entries(self, sys_ids: Iterable[str]) -> dict[str, LedgerEntry]: ...
        def _record(self, decisions: Sequence[Decision], *, run_id: str) -> dict[str, int]: ...

    def record_links(
        self,
        found: Mapping[str, str],
        given_up: Sequence[Link],
        *,
        read_at: int,
        integration_ids: Iterable[int] = (),
    ) -> None:
        """Alerts matched to their Flashduty incident, and those Flashduty made none of;
        ``integration_ids``: the integrations fd-sync's alerts arrived by, learned so that
        [tickets] never opens a ticket for one of them."""
        with self.transaction("record Flashduty incidents"):
            learned = set(self.state.get_json(OWN_INTEGRATIONS) or [])
            new = {i for i in integration_ids if i} - learned
            if new:
                self.state.set_json(OWN_INTEGRATIONS, sorted(learned | new))
            for sys_id, incident_id in found.items():
                self.links.link(sys_id, incident_id)
            for link in given_up:
                self._stop_watching(link, read_at)

    def stop_watching(self, link: Link, *, read_at: int) -> None:
        """The incident is gone from Flashduty (deleted, merged away): nothing more to read."""
        with self.transaction("record a Flashduty incident"):
            self._stop_watching(link, read_at)

    def _stop_watching(self, link: Link, read_at: int) -> None:
        self.links.record_read(
            link.sys_id,
            progress="",
            updated_at=0,
            read_at=read_at,
            cursor=link.cursor,
            watching=False,
        )

    def record_flashduty_checked(self, sys_ids: Sequence[str], at: int) -> None:
        """The read cadence's clock: list-by-ids looked at these (nothing else changes)."""
        with self.transaction("record the incidents looked at"):
            self.links.checked(sys_ids, at)

    def record_flashduty_read(
        self, link: Link, outcome: TurnOutcome, *, run_id: str, echoes: Sequence[int] = ()
    ) -> int | None:
        """What one timeline read decided (:func:`fd_sync.core.turns.settle`), with the
        cursor past it: a crash re-reads the entries, never skips them. ``echoes``: fd-sync's
        own OpenAPI writes the entries were found to be. Returns the id of the write queued,
        if any."""
        sys_id = link.sys_id
        with self.transaction("queue a write-back"):
            if echoes:
                self.flashduty_writes.echo_seen(echoes)
            if outcome.closed_in_flashduty:
                self.incidents.closed_in_flashduty(sys_id, held=outcome.held)
                self.outbox.cancel_updates(sys_id)  # they would open (and page) a new alert
            elif outcome.reopened_in_flashduty:
                self.incidents.reopened_in_flashduty(sys_id, link.destination)
                if outcome.close_again_at_ms is not None:
                    self._close_again(link, outcome.close_again_at_ms, run_id)
            self.links.record_read(
                sys_id,
                progress=outcome.progress,
                updated_at=outcome.updated_at,
                read_at=outcome.read_at,
                cursor=outcome.cursor,
                watching=outcome.watching,
            )
            if outcome.intents is None:
                return None
            write = NewWrite(
                sys_id,
                link.number,
                link.incident_id or "",
                outcome.note,
                outcome.intents,
                outcome.kinds,
            )
            return self.writeback.queue(write, run_id=run_id)

    def _close_again(self, link: Link, reopened_at_ms: int, run_id: str) -> None:
        snapshot = self.incidents.snapshots([link.sys_id]).get(link.sys_id)
        entry = self.entries([link.sys_id]).get(link.sys_id)
        if snapshot is None or entry is None:
            return
        when = datetime.fromtimestamp(reopened_at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        self._record([closed_again(snapshot, entry, link.destination, when)], run_id=run_id)

    def record_unmatched_people(self, unmatched: Mapping[str, str]) -> None:
        """People fd-sync could not assign (no ServiceNow user with their email, or two),
        for `status`: the newest 100, each with why."""
        with self.transaction("record unmatched people"):
            known: dict[str, str] = dict(self.state.get_json(UNMATCHED_PEOPLE) or {})
            known.update(unmatched)
            self.state.set_json(UNMATCHED_PEOPLE, dict(list(known.items())[-100:]))

    def record_flashduty_read_time(self, when: datetime) -> None:
        with self.transaction("record the write-back's read"):
            self.state.set(FLASHDUTY_READ, iso(when))

    def attempt_writes(self, writes: Sequence[Write]) -> None:
        """Committed before the PATCH: a crash after it repeats that one note, once."""
        with self.transaction("record a write-back attempt"):
            self.writeback.mark_attempt([w.id for w in writes])

    def record_write(
        self,
        writes: Sequence[Write],
        *,
        answer: Mapping[str, object] | None,
        refused: RefusedPart | None = None,
        run_id: str = "",
    ) -> None:
        """ServiceNow took the write (``answer``: its record; None when nothing was left to
        write). The version the PATCH produced is recorded as fd-sync's own when it is the
        only change since the ledger's, so the next poll does not push it back."""
        with self.transaction("record a write-back"):
            self.writeback.mark_delivered([w.id for w in writes], http_status=200 if answer else 0)
            if refused is not None:
                self.writeback.keep_refused(
                    refused.write,
                    http_status=refused.http_status,
                    message=refused.message,
                    run_id=run_id,
                )
            if answer is not None and writes:
                self._own_version(writes[-1].sys_id, answer)

    def _own_version(self, sys_id: str, answer: Mapping[str, object]) -> None:
        mod_count = answered_mod_count(answer)
        if mod_count is None:
            return
        self._ticket_own_version(sys_id, answer)
        self.links.own_write(sys_id, mod_count)
        snapshot = self.incidents.snapshots([sys_id]).get(sys_id)
        entry = self.incidents.entries_as_stored([sys_id]).get(sys_id)
        if snapshot is None or entry is None:
            return
        ours = own_version(snapshot, entry.mod_count, answer)
        if ours is not None:
            self.incidents.own_version(ours, held=entry.held and ours.is_open)
