"""Flashduty -> ServiceNow: what responders did, written to the incident, outbound only.

Three parts, in the order of a cycle: :mod:`.read` (before ServiceNow's fetch: read
Flashduty, decide, commit the write owed with the timeline cursor), :mod:`.plan` and
:mod:`.write` (after Flashduty's delivery: one PATCH per incident). :class:`Writeback`
is what the cycle holds.
"""

from __future__ import annotations

from fd_sync import logs
from fd_sync.errors import AccessDenied, TemporaryFailure
from fd_sync.sync.writeback.read import FlashdutyRead
from fd_sync.sync.writeback.report import WritebackReport
from fd_sync.sync.writeback.write import ServiceNowWrites

__all__ = ["FlashdutyRead", "ServiceNowWrites", "Writeback", "WritebackReport"]


class Writeback:
    """The two phases a cycle runs, built by :mod:`fd_sync.wiring`."""

    def __init__(self, reads: FlashdutyRead, writes: ServiceNowWrites) -> None:
        self.ledger = reads.ledger
        self.reader = reads.reader
        self.reads = reads
        self.writes = writes
        self.log = logs.get("writeback")

    def unsure(self, report: WritebackReport) -> frozenset[str]:
        """Incidents whose Flashduty side is unknown because reading it failed for now
        (a refused key is not temporary: then nothing waits, or ServiceNow's closes would
        never resolve alerts)."""
        if not isinstance(report.error, TemporaryFailure):
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

    def write(self, report: WritebackReport, *, run_id: str) -> None:
        """Phase 2, after delivery: one PATCH per incident with everything queued for it."""
        self.writes.run(report, run_id=run_id)
