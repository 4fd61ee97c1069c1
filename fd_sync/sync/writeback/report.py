"""What the write-back did in a cycle: for the cycle report, the log and the metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from fd_sync.errors import FdSyncError
from fd_sync.servicenow.writer import WriteRefused


@dataclass
class WritebackReport:
    linked: int = 0
    read: int = 0  # timelines read
    queued: int = 0
    written: int = 0  # PATCHes ServiceNow accepted
    held: int = 0  # writes waiting behind a refused work note of the same incident
    refused: list[WriteRefused] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)  # --dry-run's lines
    error: FdSyncError | None = None
    openapi_requests: int = 0
    servicenow_requests: int = 0
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, outcome) -> n
    lag_seconds: float = 0.0  # age of the oldest write still pending after this cycle

    def tally(self, kinds: tuple[str, ...], outcome: str) -> None:
        for kind in kinds or ("state",):
            self.outcomes[(kind, outcome)] = self.outcomes.get((kind, outcome), 0) + 1
