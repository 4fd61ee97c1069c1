"""Find the Flashduty incidents that open tickets, and queue their creates.

One ``/incident/list`` per cycle (per 100 incidents and 31 days), from the newest start
time already handled minus ``[sync] lookback_seconds`` to now. The first run with
``[tickets]`` on takes only incidents that start after it (``tickets backfill --since``
takes older ones). An incident is judged by :func:`fd_sync.core.tickets.skip_reason`;
one that may be fd-sync's own alert not linked yet waits, and the window does not pass it.

Crash contract: the creates are queued in the step that moves the window
(:meth:`Ledger.record_found_tickets`); an incident already known is never queued twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from fd_sync import logs
from fd_sync.config.model import TicketsConfig
from fd_sync.core.tickets import FlashdutySource, OwnAlerts, TicketRules, render_fields, skip_reason
from fd_sync.flashduty.tickets import FlashdutyTickets
from fd_sync.store.ledger import Ledger
from fd_sync.store.state import OWN_INTEGRATIONS, TICKETS_SEARCHED
from fd_sync.sync.tickets.report import TicketsReport

WAIT = "wait:"


def rules_of(config: TicketsConfig) -> TicketRules:
    return TicketRules(
        channel_ids=frozenset(config.channel_ids),
        severities=config.severities,
        labels=config.labels,
        fields=config.fields,
        severity_map=config.severity,
    )


def describe_ticket(source: FlashdutySource, fields: dict[str, str]) -> str:
    """``would open a ticket for Flashduty #1234 "Disk full": urgency 1, impact 1, ...``"""
    shown = [f"urgency {fields['urgency']}", f"impact {fields['impact']}"]
    shown += [
        f"{name} {value}"
        for name, value in fields.items()
        if name not in ("urgency", "impact", "short_description", "description")
        and not name.startswith("correlation_")
    ]
    return f"would open a ticket for {source.name}: " + ", ".join(shown)


class TicketFinder:
    def __init__(
        self,
        ledger: Ledger,
        flashduty: FlashdutyTickets,
        config: TicketsConfig,
        *,
        lookback_seconds: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.flashduty = flashduty
        self.config = config
        self.rules = rules_of(config)
        self.lookback_seconds = lookback_seconds
        self.wall = wall
        self.log = logs.get("tickets")

    def run(self, report: TicketsReport, *, run_id: str, dry_run: bool) -> None:
        now = int(self.wall())
        searched = self.ledger.state.get(TICKETS_SEARCHED)
        if searched is None:
            self.log.info(
                "tickets_first_run",
                since=datetime.fromtimestamp(now).isoformat(timespec="seconds"),
                note="only Flashduty incidents that start from now open tickets; "
                "fd-sync tickets backfill --since DATE opens tickets for older ones",
            )
            if not dry_run:
                self.ledger.begin_tickets(now)
            return
        self.find(
            report,
            start=int(searched) - self.lookback_seconds,
            end=now,
            run_id=run_id,
            dry_run=dry_run,
        )

    def find(
        self, report: TicketsReport, *, start: int, end: int, run_id: str, dry_run: bool
    ) -> None:
        """Queue a create for each incident in [start, end] that opens a ticket."""
        sources = self.flashduty.open_incidents(
            self.config.channel_ids, start=start, end=end, severities=self.config.severities
        )
        report.found += len(sources)
        known = self.ledger.tickets.known(s.incident_id for s in sources)
        fresh = [s for s in sources if s.incident_id not in known]
        own = self._own([s.incident_id for s in fresh])
        queued: list[tuple[FlashdutySource, dict[str, str]]] = []
        waiting: list[int] = []
        for source in fresh:
            reason = skip_reason(source, self.rules, own)
            if reason is not None:
                if reason.startswith(WAIT):
                    waiting.append(source.start_time)
                self.log.debug("ticket_skipped", incident=source.name, reason=reason)
                continue
            fields = render_fields(source, self.rules)
            queued.append((source, fields))
            if dry_run:
                report.planned.append(describe_ticket(source, fields))
        report.queued += len(queued)
        if dry_run:
            return
        newest = max((s.start_time for s in sources), default=None)
        searched_to = min(waiting) - 1 if waiting else newest
        self.ledger.record_found_tickets(queued, searched_to=searched_to, run_id=run_id)

    def _own(self, incident_ids: list[str]) -> OwnAlerts:
        linked = self.ledger.links.linked_incidents(incident_ids)
        learned = self.ledger.state.get_json(OWN_INTEGRATIONS) or []
        oldest = self.ledger.links.oldest_unlinked()
        since = int(datetime.fromisoformat(oldest).timestamp()) if oldest else None
        return OwnAlerts(frozenset(linked), frozenset(int(i) for i in learned), since)
