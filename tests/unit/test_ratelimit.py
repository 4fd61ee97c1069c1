"""The client-side limiter: never more than N sends in any window, exactly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fd_sync.http.ratelimit import SlidingWindowLimiter, flashduty_limiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def sends_in_any_window(times: list[float], period: float) -> int:
    worst, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - period:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


def test_flashduty_limits_hold_for_a_backfill():
    t = FakeTime()
    limiter = flashduty_limiter(1000, clock=t.clock, sleep=t.sleep)
    sent = []
    for _ in range(3500):
        limiter.acquire()
        sent.append(t.now)
    assert sends_in_any_window(sent, 60.0) == 1000
    assert sends_in_any_window(sent, 1.0) == 100
    # No more waiting than needed: the 4th thousand starts at 180 s, 100 a second.
    assert 184.0 <= sent[-1] < 184.1  # the last hundred leaves 4 s after 180 s


@given(
    st.lists(st.floats(min_value=0, max_value=2), max_size=300),
    st.integers(min_value=1, max_value=20),
    st.floats(min_value=0.1, max_value=5),
)
def test_never_more_than_limit_in_any_window(gaps, limit, period):
    t = FakeTime()
    limiter = SlidingWindowLimiter([(limit, period)], clock=t.clock, sleep=t.sleep)
    sent = []
    for gap in gaps:
        t.now += gap
        limiter.acquire()
        sent.append(t.now)
    if sent:
        assert sends_in_any_window(sent, period) <= limit
