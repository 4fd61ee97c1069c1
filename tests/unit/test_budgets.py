"""The API budgets and the read cadence alone, on a fake clock (issue 24)."""

from __future__ import annotations

import pytest

from fd_sync.core.budget import reserve_of
from fd_sync.core.cadence import ACTIVE_SECONDS, SLOWEST_SECONDS, Watch, cadence, choose
from fd_sync.errors import BudgetSpent
from fd_sync.flashduty.budget import OpenAPIBudget
from fd_sync.servicenow.budget import RequestBudget
from tests.unit.test_ratelimit import sends_in_any_window

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_reads_stop_at_the_reserve_and_writes_may_spend_it():
    clock = Clock()
    budget = RequestBudget(100, clock=clock)
    reserve = reserve_of(100)
    for _ in range(100 - reserve):
        budget.spend(write=False, what="GET incident")
    with pytest.raises(BudgetSpent, match="kept for writes"):
        budget.spend(write=False, what="GET incident")
    for _ in range(reserve):
        budget.spend(write=True, what="PATCH incident")
    with pytest.raises(BudgetSpent) as refused:
        budget.spend(write=True, what="PATCH incident")
    assert refused.value.exit_code == 75
    clock.now += 3600  # the hour slides past every request
    budget.spend(write=False, what="GET incident")


def test_the_instances_headers_are_kept_under_too():
    clock = Clock()
    budget = RequestBudget(0, clock=clock)  # no limit of fd-sync's own
    reset = clock.now + 600
    headers = {"X-RateLimit-Limit": "500", "X-RateLimit-Remaining": "60", "X-RateLimit-Reset": ""}
    headers["X-RateLimit-Reset"] = str(int(reset))
    budget.observe(headers)
    view = budget.view()
    assert (view.limit, view.remaining, view.source) == (500, 60, "the instance's rate-limit rule")
    for _ in range(60 - reserve_of(500)):
        budget.spend(write=False, what="GET incident")
    with pytest.raises(BudgetSpent):
        budget.spend(write=False, what="GET incident")
    budget.spend(write=True, what="PATCH incident")
    clock.now = reset + 1  # a new window: the rule's next answer tells
    budget.spend(write=False, what="GET incident")


def test_the_interval_stretches_to_what_the_budget_pays_for():
    budget = RequestBudget(500, clock=Clock())
    assert budget.interval(10, 1.0) == (10, "")  # 360 an hour fit in 450
    interval, why = budget.interval(10, 2.0)  # 720 an hour do not
    assert interval == pytest.approx(2.0 * 3600 / ((500 - reserve_of(500)) * 0.9))
    assert "max_requests_per_hour" in why
    assert RequestBudget(0).interval(10, 5.0) == (10, "")


def test_the_servicenow_hour_survives_a_restart_through_the_ledger():
    clock = Clock()
    first = RequestBudget(100, clock=clock)
    for _ in range(30):
        first.spend(write=False, what="GET")
    second = RequestBudget(100, clock=clock)
    second.load(first.to_json())
    assert second.view().remaining == 70


def test_the_openapi_limiter_never_passes_the_minute_budget():
    clock = Clock(0.0)
    budget = OpenAPIBudget(100, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(350):
        budget.limiter.acquire()
        sent.append(clock.now)
    assert sends_in_any_window(sent, 60.0) == 100
    assert budget.read_capacity(10) == 8 * 100  # half of 100 a minute's share of 10 s


def test_active_incidents_are_read_every_cycle_and_quiet_ones_back_off():
    now = 10_000
    active = Watch("a", changed_at=now - 60, read_at=now - 1, closed=False, owed=False)
    owed = Watch("o", changed_at=now - 5000, read_at=now - 1, closed=False, owed=True)
    quiet = Watch("q", changed_at=now - 1200, read_at=now - 1, closed=False, owed=False)
    closed = Watch("c", changed_at=now - 100, read_at=now - 1, closed=True, owed=False)
    assert cadence(active, now, 10) == 10
    assert cadence(owed, now, 10) == 10
    assert cadence(quiet, now, 10) == 300  # 20 minutes quiet: every 5
    assert cadence(closed, now, 10) == SLOWEST_SECONDS
    just_quiet = Watch("j", now - ACTIVE_SECONDS - 40, now - 1, False, False)
    assert 10 < cadence(just_quiet, now, 10) < SLOWEST_SECONDS
    chosen = choose([active, owed, quiet, closed], now, 10, capacity=1000)
    assert set(chosen.due) == {"a", "o"}
    assert (chosen.active, chosen.quiet) == (2, 2)


def test_a_quiet_incident_is_read_within_its_cadence_and_once_touched_every_cycle():
    """Simulated cycles 10 s apart: a quiet incident is read once per 300 s; an edit in
    ServiceNow (its change time moves) makes it due at the next cycle."""
    interval, now, read_at, changed = 10, 100_000, 100_000, 100_000 - 3600
    reads = []
    for step in range(1, 61):
        now += interval
        if step == 45:
            changed = now  # touched
        watch = Watch("q", changed, read_at, closed=False, owed=False)
        if "q" in choose([watch], now, interval, capacity=100).due:
            reads.append(step)
            read_at = now
    before = [r for r in reads if r < 45]
    assert len(before) in (1, 2)  # every 300 s within the first 440
    assert 45 in reads and all(s in reads for s in range(45, 61))  # active: every cycle


def test_the_budget_caps_how_many_are_read_active_first_then_the_most_overdue():
    now = 50_000
    watches = [Watch(f"q{i}", now - 7200, now - 400 - i, False, False) for i in range(300)]
    watches.append(Watch("hot", now - 10, now - 10, False, False))
    chosen = choose(watches, now, 10, capacity=100)
    assert chosen.due[0] == "hot" and len(chosen.due) == 100
    assert chosen.due[1] == "q299"  # the longest unread
    assert chosen.deferred == 201
    assert chosen.oldest_read == 699


def test_the_openapi_minute_survives_a_new_process_through_the_ledger():
    """Two `once` runs in one minute are two processes with two limiters: the second counts
    the first's requests (kept in Unix time), so together they stay within the budget."""
    wall = Clock(1_800_000_000.0)
    first_clock = Clock(50.0)  # each process's monotonic clock starts anywhere
    first = OpenAPIBudget(5, clock=first_clock, sleep=first_clock.sleep)
    for _ in range(5):
        first.limiter.acquire()
    saved = first.to_json(wall())
    wall.now += 10
    second_clock = Clock(9_000.0)
    second = OpenAPIBudget(5, clock=second_clock, sleep=second_clock.sleep)
    second.load(saved, wall())
    assert second.used() == 5
    waited = second.limiter.acquire()
    assert waited == pytest.approx(50.0, abs=0.1)  # until the first run's minute has passed
