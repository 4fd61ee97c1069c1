"""What tickets from Flashduty did in a cycle: for the cycle report, the log, the metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from fd_sync.errors import FdSyncError
from fd_sync.servicenow.writer import WriteRefused


@dataclass
class TicketsReport:
    found: int = 0  # open incidents listed in the watched channels
    queued: int = 0  # new ones queued to open a ticket
    opened: int = 0  # tickets created (or found created) this cycle
    refused: list[WriteRefused] = field(default_factory=list)  # creates ServiceNow refused
    forwarded: int = 0  # OpenAPI writes the tickets' changes in ServiceNow queued
    written: int = 0  # OpenAPI writes Flashduty took (resolve, reopen, comment, severity)
    dead: int = 0  # OpenAPI writes Flashduty refused this cycle
    planned: list[str] = field(default_factory=list)  # --dry-run's lines
    error: FdSyncError | None = None
    openapi_requests: int = 0
    servicenow_requests: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # fdsync_tickets_total{outcome}

    def tally(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n
