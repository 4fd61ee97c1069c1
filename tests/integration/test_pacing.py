"""With default settings, a backfill never exceeds Flashduty's 1000 requests a minute.

A backfill queues thousands of creates at once. The receiver enforces
Flashduty's documented per-integration limit (a sliding minute, 429 beyond)
and the client-side limiter must keep every push inside it. Both run on one
fake clock, so two and a half minutes of pacing take a few real seconds.
"""

from __future__ import annotations

from fd_sync import wiring
from fd_sync.config import parse
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.store.ledger import Ledger
from tests.unit.test_ratelimit import FakeTime, sends_in_any_window

EVENTS = 2100  # more than two minutes' worth at 1000 a minute


def run_backfill(servicenow, tmp_path, flashduty: FlashdutySim, t: FakeTime, *, paced: bool):
    servicenow.seed(EVENTS, open_ratio=1.0)
    config = parse(
        {
            "servicenow": {
                "instance_url": servicenow.url,
                "username": servicenow.username,
                "password": servicenow.password,
                "page_size": 1000,
            },
            # Everything else at its defaults: max_requests_per_minute = 1000.
            "flashduty": {"push_url": flashduty.push_url_standard, "max_attempts": 1},
            "sync": {"database": str(tmp_path / "fd-sync.db")},
        },
        path=tmp_path / "config.toml",
        env={},
    )
    destinations = wiring.destinations(
        config, sleep=t.sleep, pacing_clock=t.clock, pacing_sleep=t.sleep
    )
    if not paced:
        destinations["default"].client.limiter = None
    with Ledger(config.sync.database) as ledger:
        cycle = wiring.cycle(config, ledger, sleep=t.sleep, to=destinations)
        return cycle.run(since=servicenow.clock.now().replace(year=2020))


def test_default_pacing_never_triggers_a_429(servicenow, tmp_path):
    t = FakeTime()
    with FlashdutySim(rate_limit_per_minute=1000, clock=t.clock) as flashduty:
        report = run_backfill(servicenow, tmp_path, flashduty, t, paced=True)
        arrivals = [e.at for e in flashduty.events()]
    assert report.delivery.delivered == EVENTS and report.exit_code == 0
    assert flashduty.rate_limited == 0
    assert sends_in_any_window(arrivals, 60.0) <= 1000
    assert sends_in_any_window(arrivals, 1.0) <= 100
    assert t.now >= 120.0  # the third thousand had to wait for the third minute


def test_the_receiver_would_catch_an_unpaced_backfill(servicenow, tmp_path):
    t = FakeTime()
    with FlashdutySim(rate_limit_per_minute=1000, clock=t.clock) as flashduty:
        report = run_backfill(servicenow, tmp_path, flashduty, t, paced=False)
    assert flashduty.rate_limited > 0
    assert report.delivery.delivered == 1000 and report.delivery.down
