"""Send the writes owed to the tickets' Flashduty incidents, in per-incident order.

``/incident/resolve``, ``reopen`` and ``reset`` set a state: sending one again changes
nothing. A comment is not repeatable: one tried before whose answer never came is looked
for in the incident's feed (and in the echoes the write-back matched) before it is sent
again. A refusal is kept dead with Flashduty's code and message, and holds the incident's
later writes, so that they arrive in order after an operator's ``outbox retry``.

Crash contract: attempted before the request, delivered after the answer
(:meth:`Ledger.attempt_flashduty_writes`, :meth:`Ledger.record_flashduty_written`).
"""

from __future__ import annotations

from fd_sync import logs
from fd_sync.errors import AccessDenied, RemoteRejected, TemporaryFailure
from fd_sync.flashduty.tickets import FlashdutyTickets
from fd_sync.store.ledger import Ledger
from fd_sync.store.queue import Failure
from fd_sync.store.tickets import FlashdutyWrite
from fd_sync.sync.tickets.report import TicketsReport


class FlashdutyWrites:
    def __init__(self, ledger: Ledger, flashduty: FlashdutyTickets) -> None:
        self.ledger = ledger
        self.flashduty = flashduty
        self.log = logs.get("tickets")

    def run(self, report: TicketsReport) -> None:
        queue = self.ledger.flashduty_writes
        held = queue.held_incidents()
        try:
            for write in queue.pending(limit=10_000):
                if write.incident_id in held:
                    continue  # behind a refused write of the same incident, in order
                if not self._send(write, report):
                    held.add(write.incident_id)
        except (AccessDenied, TemporaryFailure) as exc:
            report.error = report.error or exc
            self.log.error("flashduty_write_failed", error=str(exc), exit_code=exc.exit_code)

    def _send(self, write: FlashdutyWrite, report: TicketsReport) -> bool:
        """Send one write; False when Flashduty refused it (it then holds the incident)."""
        queue = self.ledger.flashduty_writes
        if write.attempts and write.kind == "comment" and self._landed(write):
            self.ledger.record_flashduty_written([write.id], request_id=None)
            self.log.info(
                "flashduty_write_found_landed", incident_id=write.incident_id, write=write.label
            )
            return True
        self.ledger.attempt_flashduty_writes([write.id])
        try:
            self.flashduty.write(write.incident_id, write.write)
        except RemoteRejected as exc:
            self.ledger.record_failure(
                queue, [write.id], dead=True, failure=Failure(None, str(exc))
            )
            report.dead += 1
            report.tally(f"{write.kind}_refused")
            self.log.error(
                "flashduty_write_refused", number=write.number, kind=write.kind, error=str(exc)
            )
            return False
        except TemporaryFailure as exc:
            self.ledger.record_failure(
                queue, [write.id], dead=False, failure=Failure(None, str(exc))
            )
            raise
        self.ledger.record_flashduty_written([write.id], request_id=None)
        report.written += 1
        report.tally(write.kind)
        self.log.info(
            "flashduty_written", number=write.number, kind=write.kind, incident_id=write.incident_id
        )
        return True

    def _landed(self, write: FlashdutyWrite) -> bool:
        if self.ledger.flashduty_writes.seen_in_feed(write.id):
            return True
        return write.write.text in self.flashduty.comments(write.incident_id)
