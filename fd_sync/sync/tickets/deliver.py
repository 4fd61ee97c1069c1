"""Send the writes owed to the tickets' Flashduty incidents, in per-incident order.

``/incident/resolve``, ``reopen`` and ``reset`` set a state: sending one again changes
nothing. A resolve or reopen is sent only when the incident is not in that state already
(its progress is read first, one request per 100): a responder may have closed it since,
and a write that changes nothing would leave no feed entry to recognise.
A comment is not repeatable: one tried before whose answer never came is looked
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
        before = self.flashduty.requests_made
        try:
            self._run(report)
        finally:
            report.openapi_requests += self.flashduty.requests_made - before

    def _run(self, report: TicketsReport) -> None:
        queue = self.ledger.flashduty_writes
        held = queue.held_incidents()
        try:
            pending = [w for w in queue.pending(limit=10_000) if w.incident_id not in held]
            states = [w.incident_id for w in pending if w.write.moot_when]
            progress = self.flashduty.progress(states) if states else {}
            for write in pending:
                if write.incident_id in held:
                    continue  # behind a refused write of the same incident, in order
                if self._moot(write, progress):
                    self.ledger.record_moot_write(write.id)
                    progress[write.incident_id] = "Closed" if write.kind == "resolve" else "open"
                    continue
                if not self._send(write, report):
                    held.add(write.incident_id)
                elif write.kind in ("resolve", "reopen"):
                    progress[write.incident_id] = "Closed" if write.kind == "resolve" else "open"
        except (AccessDenied, TemporaryFailure) as exc:
            report.error = report.error or exc
            self.log.error("flashduty_write_failed", error=str(exc), exit_code=exc.exit_code)

    @staticmethod
    def _moot(write: FlashdutyWrite, progress: dict[str, str]) -> bool:
        now = progress.get(write.incident_id)
        if write.write.moot_when is None or now is None:
            return False
        return (now == "Closed") == (write.write.moot_when == "Closed")

    def _send(self, write: FlashdutyWrite, report: TicketsReport) -> bool:
        """Send one write; False when Flashduty refused it (it then holds the incident)."""
        queue = self.ledger.flashduty_writes
        if write.attempts and write.kind == "comment" and self._landed(write):
            self.ledger.record_flashduty_written([write.id], request_id=None)
            self.log.info(
                "flashduty_write_found_landed", incident_id=write.incident_id, write=write.label
            )
            return True
        member = None
        if write.kind == "assign":
            member, why = self.flashduty.member_of(str(write.body.get("email") or ""))
            if member is None:  # not guessed: said, counted, and not sent
                self.ledger.record_moot_write(write.id)
                self.ledger.record_unmatched_people({str(write.body.get("email") or ""): why})
                self.log.warning(
                    "person_unmatched", number=write.number, why=why, name=write.body.get("name")
                )
                return True
        self.ledger.attempt_flashduty_writes([write.id])
        try:
            self.flashduty.write(write.incident_id, write.write, member=member)
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
