"""A client-side limiter that keeps pushes inside Flashduty's documented rate limits.

Flashduty allows 100 requests per second and 1000 per minute per integration
and answers 429 beyond. A backfill of thousands of events would hit that
within a minute, so the limiter holds each send until it fits every window:
at most ``limit`` sends in any ``period`` seconds, exactly, not on average.
The clock and sleep are injected so tests check the schedule without waiting.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable, Sequence

MARGIN = 0.001  # a send exactly on a window's edge could count twice on the server


class SlidingWindowLimiter:
    def __init__(
        self,
        windows: Sequence[tuple[int, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.windows = [(limit, period) for limit, period in windows if limit > 0]
        self.clock = clock
        self.sleep = sleep
        longest = max((limit for limit, _ in self.windows), default=0)
        self._sent: collections.deque[float] = collections.deque(maxlen=longest or None)

    def recent(self, period: float) -> list[float]:
        """When the sends of the last ``period`` seconds were made (this limiter's clock)."""
        now = self.clock()
        return [t for t in self._sent if t > now - period]

    def remember(self, times: Iterable[float]) -> None:
        """Sends another process made (a previous run), in this limiter's clock."""
        merged = sorted([*self._sent, *times])
        self._sent.clear()
        self._sent.extend(merged[-self._sent.maxlen :] if self._sent.maxlen else merged)

    def used(self, period: float) -> int:
        """Sends in the last ``period`` seconds (as far back as the longest window keeps)."""
        now = self.clock()
        return sum(1 for t in self._sent if t > now - period)

    def acquire(self) -> float:
        """Wait until one more send fits every window; returns the seconds waited."""
        waited = 0.0
        while True:
            now = self.clock()
            delay = 0.0
            for limit, period in self.windows:
                if len(self._sent) >= limit:
                    oldest_in_window = self._sent[-limit]
                    delay = max(delay, oldest_in_window + period + MARGIN - now)
            if delay <= 0:
                self._sent.append(now)
                return waited
            self.sleep(delay)
            waited += delay


def flashduty_limiter(
    per_minute: int,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SlidingWindowLimiter:
    """Flashduty's per-integration limits: ``per_minute`` (≤ 1000) and 100 per second."""
    windows = [(per_minute, 60.0), (min(100, per_minute), 1.0)]
    return SlidingWindowLimiter(windows, clock=clock, sleep=sleep)
