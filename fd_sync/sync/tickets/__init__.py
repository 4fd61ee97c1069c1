"""Tickets from Flashduty: monitoring incidents open ServiceNow incidents, outbound only.

Three parts, each a phase of the cycle: :mod:`.find` (list the watched channels' open
incidents, queue a create for each new one that is not fd-sync's own), :mod:`.create`
(POST each queued create exactly once, link the ticket, owe Flashduty the link-back
comment), and :mod:`.deliver` (send the OpenAPI writes owed: the link-back comment, and
what the tickets' changes in ServiceNow mean, planned by :mod:`.forward` from the poll).
Flashduty -> ServiceNow for tickets is the write-back's, exactly as for any linked pair.
"""

from __future__ import annotations

from collections.abc import Callable

from fd_sync import logs
from fd_sync.errors import AccessDenied, TemporaryFailure
from fd_sync.store.state import TICKETS_SEARCHED
from fd_sync.sync.tickets.create import TicketCreator
from fd_sync.sync.tickets.deliver import FlashdutyWrites
from fd_sync.sync.tickets.find import TicketFinder
from fd_sync.sync.tickets.report import TicketsReport

__all__ = ["FlashdutyWrites", "TicketCreator", "TicketFinder", "Tickets", "TicketsReport"]


class Tickets:
    """What the cycle holds, built by :mod:`fd_sync.wiring`."""

    def __init__(self, finder: TicketFinder, creator: TicketCreator, writes: FlashdutyWrites):
        self.finder = finder
        self.creator = creator
        self.writes = writes
        self.log = logs.get("tickets")

    def open(self, report: TicketsReport, *, run_id: str, dry_run: bool = False) -> None:
        """Before the poll: find new incidents and open their tickets, so that the poll
        already knows each ticket (and never sends one to Flashduty as an alert)."""
        before = self.finder.flashduty.requests_made
        try:
            self.finder.run(report, run_id=run_id, dry_run=dry_run)
        except (AccessDenied, TemporaryFailure) as exc:
            report.error = exc
            self.log.error("tickets_read_failed", error=str(exc), exit_code=exc.exit_code)
        finally:
            report.openapi_requests += self.finder.flashduty.requests_made - before
        if not dry_run:
            self.creator.run(report)

    def backfill(
        self,
        report: TicketsReport,
        *,
        since: int,
        now: int,
        run_id: str,
        dry_run: bool,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """``fd-sync tickets backfill``: open tickets for incidents already open that
        started since ``since``, then send their link-back comments."""
        before = self.finder.flashduty.requests_made
        try:
            if not dry_run and self.finder.ledger.state.get(TICKETS_SEARCHED) is None:
                self.finder.ledger.begin_tickets(now)  # later cycles go on from here
            self.finder.find(report, start=since, end=now, run_id=run_id, dry_run=dry_run)
        finally:
            report.openapi_requests += self.finder.flashduty.requests_made - before
        if not dry_run:
            self.creator.run(report, progress)
            self.deliver(report)

    def deliver(self, report: TicketsReport) -> None:
        """The writes owed to Flashduty's incidents (the backfill's link-back comments)."""
        self.writes.run(report)
