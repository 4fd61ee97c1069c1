"""The OpenAPI budget: ``[flashduty] max_openapi_requests_per_minute``, one for the process.

Flashduty allows 1000 OpenAPI requests a minute *per account* (and 50 a second), shared
with every other tool that uses a key of the account. fd-sync takes a tenth by default.
Every OpenAPI caller of a cycle (the write-back's reads, tickets, the commands, adopt)
goes through the one limiter here, which holds a request until it fits: the budget is
never exceeded, whatever the number of incidents tracked. The write-back's reads are
also planned to fit (:meth:`OpenAPIBudget.read_capacity`), so the limiter rarely waits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from fd_sync.http.ratelimit import SlidingWindowLimiter

PER_SECOND = 40  # under the account's 50 a second
READ_SHARE = 0.5  # of a cycle's requests, for /incident/list-by-ids; the rest: feeds, writes
IDS_PER_READ = 100  # /incident/list-by-ids


class OpenAPIBudget:
    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_minute = per_minute
        windows = [(per_minute, 60.0), (min(per_minute, PER_SECOND), 1.0)]
        self.limiter = SlidingWindowLimiter(windows, clock=clock, sleep=sleep)

    def to_json(self, wall: float) -> dict[str, Any]:
        """The last minute's requests in Unix time, so that the next `once` (a new process
        with a new limiter) counts them too and two runs in one minute stay within it."""
        now = self.limiter.clock()
        sent = [round(wall - (now - t), 3) for t in self.limiter.recent(60.0)]
        return {"per_minute": self.per_minute, "used": len(sent), "sent": sent}

    def load(self, saved: Any, wall: float) -> None:
        times = saved.get("sent") if isinstance(saved, dict) else None
        if isinstance(times, list):
            now = self.limiter.clock()
            self.limiter.remember(now - (wall - float(t)) for t in times if wall - 60 < t <= wall)

    def used(self) -> int:
        """OpenAPI requests in the last minute."""
        return self.limiter.used(60.0)

    def read_capacity(self, interval: float) -> int:
        """How many incidents one cycle's ``list-by-ids`` reads may cover at ``interval``."""
        requests = math.floor(self.per_minute * min(interval, 60.0) / 60.0 * READ_SHARE)
        return max(1, requests) * IDS_PER_READ
