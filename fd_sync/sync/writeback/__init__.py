"""Flashduty -> ServiceNow: what responders did, written to the incident, outbound only.

Three parts, in the order of a cycle: :mod:`.read` (before ServiceNow's fetch: read
Flashduty, decide, commit the write owed with the timeline cursor), :mod:`.plan` and
:mod:`.write` (after Flashduty's delivery: one PATCH per incident). :class:`Writeback`
is what the cycle holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fd_sync import logs
from fd_sync.errors import AccessDenied, TemporaryFailure
from fd_sync.store.state import FLASHDUTY_READ
from fd_sync.sync.writeback.read import FlashdutyRead
from fd_sync.sync.writeback.report import WritebackReport
from fd_sync.sync.writeback.write import ServiceNowWrites

__all__ = ["FlashdutyRead", "ServiceNowWrites", "Writeback", "WritebackReport"]


class Writeback:
    """The two phases a cycle runs, built by :mod:`fd_sync.wiring`."""

    def __init__(
        self, reads: FlashdutyRead, writes: ServiceNowWrites, *, hold_seconds: int
    ) -> None:
        self.ledger = reads.ledger
        self.reader = reads.reader
        self.reads = reads
        self.writes = writes
        self.hold_seconds = hold_seconds  # [writeback] hold_seconds
        self.log = logs.get("writeback")

    def unsure(self, report: WritebackReport) -> frozenset[str]:
        """Incidents whose updates wait this cycle: their Flashduty side is unknown because
        reading it failed for now, for no longer than ``hold_seconds`` from the last good
        read (or, with none, from the first failed one); then they go: an escalation must
        not wait out an outage. A refused key is not temporary: then nothing waits, or
        ServiceNow's closes would never resolve alerts."""
        if not isinstance(report.error, TemporaryFailure):
            self.ledger.record_writeback_hold(None)  # Flashduty answered: nothing held
            return self.reads.unread()  # the cadence left these unread: updates wait
        now = datetime.fromtimestamp(self.reads.wall(), UTC)
        hold = self.ledger.writeback_hold()
        if hold is None:
            since = self.ledger.state.get(FLASHDUTY_READ) or now.isoformat(timespec="seconds")
            until = datetime.fromisoformat(since) + timedelta(seconds=self.hold_seconds)
            hold = {"since": since, "until": until.isoformat(timespec="seconds")}
            self.ledger.record_writeback_hold({**hold, "why": str(report.error)})
        if now > datetime.fromisoformat(hold["until"]):
            self.log.warning(
                "writeback_hold_expired",
                since=hold["since"],
                hold_seconds=self.hold_seconds,
                note="Flashduty still cannot be read: updates go, as without [writeback]",
            )
            return frozenset()
        return frozenset(link.sys_id for link in self.ledger.links.watched())

    def observe(self, report: WritebackReport, *, run_id: str, dry_run: bool = False) -> None:
        """Phase 1, before the fetch: read Flashduty and queue what is owed."""
        before = self.reader.requests_made
        try:
            self.reads.run(report, run_id=run_id, dry_run=dry_run)
        except (AccessDenied, TemporaryFailure) as exc:
            report.error = exc  # the rest of the cycle goes on
            self.log.error("flashduty_read_failed", error=str(exc), exit_code=exc.exit_code)
        finally:
            report.openapi_requests += self.reader.requests_made - before

    def catch_up(self, report: WritebackReport, *, run_id: str, dry_run: bool = False) -> None:
        """Between the fetch and the delivery: read what the fetch made owed and the read
        cadence skipped (see FlashdutyRead.catch_up)."""
        if report.error is not None:
            return  # Flashduty could not be read: unsure() holds their updates instead
        before = self.reader.requests_made
        try:
            self.reads.catch_up(report, run_id=run_id, dry_run=dry_run)
        except (AccessDenied, TemporaryFailure) as exc:
            report.error = exc
            self.log.error("flashduty_read_failed", error=str(exc), exit_code=exc.exit_code)
        finally:
            report.openapi_requests += self.reader.requests_made - before

    def write(self, report: WritebackReport, *, run_id: str) -> None:
        """Phase 2, after delivery: one PATCH per incident with everything queued for it."""
        self.writes.run(report, run_id=run_id)
