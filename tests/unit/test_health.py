"""Health as the metrics endpoint reports it: pure, on a fake clock."""

from __future__ import annotations

from fd_sync.errors import TemporaryFailure
from fd_sync.service.metrics import Metrics
from fd_sync.sync.report import CycleReport


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_health_follows_the_last_success():
    clock = Clock()
    metrics = Metrics(poll_interval=60, clock=clock)
    assert metrics.health() == (False, "no successful cycle yet")
    metrics.observe(CycleReport(run_id="a", fetched=3))
    assert metrics.health()[0] is True
    clock.now += 3 * 60 + 1
    assert metrics.health()[0] is False
    metrics.observe(CycleReport(run_id="b", error=TemporaryFailure("down")))
    assert metrics.health()[0] is False  # a failed cycle does not count as success
