"""Both APIs' budgets over a simulated hour (issue 24): real HTTP to the simulators, a
real ledger, and one fake clock for ServiceNow, Flashduty and fd-sync, so an hour of
cycles runs in seconds.

ServiceNow's rate-limit rule (REFERENCE section 10: per user per hour, the three
``X-RateLimit-*`` headers, 429 with ``Retry-After`` beyond) and Flashduty's OpenAPI limit
(REFERENCE section 1, on-call.openapi.en.json: 1000 a minute per account, 429
``RequestTooFrequently``) are the simulators'; fd-sync must never meet either.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from fd_sync import wiring
from fd_sync.core.cadence import SLOWEST_SECONDS
from fd_sync.ops.status import read_status, render
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim
from fd_sync.store.ledger import Ledger
from fd_sync.sync.pacing import Pacing
from tests.helpers.cycle import Harness
from tests.helpers.simulated import open_incident
from tests.unit.test_ratelimit import sends_in_any_window

pytestmark = pytest.mark.backends("sqlite")


@dataclass
class Hour:
    h: Harness
    sn: ServiceNowSim
    fd: FlashdutySim
    time: Callable[[], float]  # ServiceNow's simulated clock as Unix time: everyone's
    pacing: Pacing
    to: Any

    def cycle(self) -> Any:
        cycle = wiring.cycle(
            self.h.config,
            self.h.ledger,
            sleep=self.h.sleeps,
            wall=self.time,
            to=self.to,
            paced=self.pacing,
        )
        return cycle.run(command="run")


@pytest.fixture
def hour(harness, servicenow, flashduty) -> Iterator[Callable[..., Hour]]:
    def build(servicenow_keys: dict[str, Any], flashduty_keys: dict[str, Any]) -> Hour:
        time = servicenow.clock.timestamp
        flashduty.clock = time
        flashduty.wall = time
        h = harness(
            servicenow=servicenow_keys,
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url, **flashduty_keys},
            writeback={"enabled": True},
            sync={"poll_interval_seconds": 10},
        )
        pacing = wiring.pacing(h.config)
        pacing.servicenow.clock = time
        pacing.openapi.limiter.clock = time
        pacing.openapi.limiter.sleep = servicenow.clock.sleep
        to = wiring.destinations(
            h.config, sleep=h.sleeps, pacing_clock=time, pacing_sleep=servicenow.clock.sleep
        )
        # The ledger's clock is the fake one too (when alerts were sent, when notes were).
        ledger = Ledger(h.config.sync.database, clock=lambda: datetime.fromtimestamp(time(), UTC))
        opened.append(ledger)
        return Hour(replace(h, ledger=ledger), servicenow, flashduty, time, pacing, to)

    opened: list[Ledger] = []
    yield build
    for ledger in opened:
        ledger.close()


@pytest.mark.parametrize("whose", ["max_requests_per_hour", "the instance's rule"])
def test_an_hour_of_busy_cycles_stays_within_the_servicenow_budget(
    hour, whose, _logs_without_secrets
):
    """An incident changes every 2 s and a responder comments every 5 minutes: the poll
    interval stretches, no request is refused with a 429, and every comment is written."""
    limit = 200
    keys = {"max_requests_per_hour": limit} if whose == "max_requests_per_hour" else {}
    t = hour(keys, {})
    t.sn.rate_limit_per_hour = limit
    t.cycle()  # the baseline
    incidents = [open_incident(t.sn) for _ in range(10)]
    ann = t.fd.add_person("Ann Lee", "ann@example.com")
    start = t.time()
    round_robin = itertools.cycle(incidents)
    next_comment, comments, intervals = start + 120, [], []
    t.sn.clock.advance(10)
    while t.time() < start + 3600:
        report = t.cycle()
        assert report.error is None, report.message()
        intervals.append(report.interval)
        next_cycle = t.time() + report.interval - report.seconds
        while t.time() < next_cycle:
            t.sn.clock.advance(2)
            t.sn.update(next(round_robin)["sys_id"], short_description=f"at {t.time():.0f}")
        if t.time() >= next_comment:
            text = f"<comment {len(comments)}>"
            t.fd.comment(t.fd.incident_of(incidents[0]["sys_id"]), ann, text)
            comments.append((incidents[0]["sys_id"], text))
            next_comment += 300
    for _ in range(3):
        t.sn.clock.advance(max(intervals))
        t.cycle()
    assert t.sn.rate_limited == 0
    assert sends_in_any_window(sorted(t.sn.api_times), 3600) <= limit
    assert max(intervals) > 10  # stretched: 10 s would cost more than 200 an hour
    events = [json.loads(line) for line in _logs_without_secrets.getvalue().splitlines()]
    stretched = [e for e in events if e["event"] == "pacing_stretched"]
    assert len(stretched) == 1 and "requests a cycle within" in stretched[0]["reason"]
    writes = [w for w in t.sn.requests_to("/api/now/table/incident/") if w.method == "PATCH"]
    assert writes, "the reserve kept room for the write-back"
    for sys_id, text in comments:
        notes = "\n".join(j["value"] for j in t.sn.journal(sys_id, "work_notes"))
        assert notes.count(text) == 1, text
    shown = "\n".join(render(read_status(t.h.ledger, 10)))
    source = "max_requests_per_hour" if keys else "the instance's rate-limit rule"
    assert f"of {limit} requests left this hour ({source}; 20 kept for writes)" in shown


def test_the_openapi_budget_holds_with_many_tracked_incidents(hour):
    """300 tracked incidents, a budget of 12 requests a minute: the quiet ones are read on
    the slow cadence, nothing passes the budget, and a responder's comment on a quiet
    incident reaches ServiceNow within two of its cadences."""
    t = hour({}, {"max_openapi_requests_per_minute": 12})
    t.cycle()
    incidents = [open_incident(t.sn) for _ in range(300)]
    t.cycle()
    for _ in range(40):  # link them all, then let them go quiet
        t.sn.clock.advance(60)
        t.cycle()
    ann = t.fd.add_person("Ann Lee", "ann@example.com")
    quiet = incidents[123]
    t.fd.comment(t.fd.incident_of(quiet["sys_id"]), ann, "<quiet comment>")
    commented = t.time()
    reads_before = len(t.fd.requests_to("/incident/list-by-ids"))
    seen = None
    while t.time() < commented + 3 * SLOWEST_SECONDS:
        t.sn.clock.advance(10)
        t.cycle()
        notes = "\n".join(j["value"] for j in t.sn.journal(quiet["sys_id"], "work_notes"))
        if "<quiet comment>" in notes:
            seen = t.time()
            break
    assert seen is not None and seen - commented <= 2 * SLOWEST_SECONDS
    cycles = (seen - commented) / 10
    reads = len(t.fd.requests_to("/incident/list-by-ids")) - reads_before
    assert reads < 3 * cycles  # every cycle would be 3 requests (300 ids)
    assert t.fd.openapi_limited == 0
    assert sends_in_any_window(sorted(t.fd.openapi_times), 60) <= 12
    assert t.pacing.selection is not None and t.pacing.selection.quiet >= 290
    shown = "\n".join(render(read_status(t.h.ledger, 10)))
    assert "of 12 requests in the last minute; incidents read every cycle" in shown
    assert "to every 300 s" in shown


def test_the_simulated_rate_limit_rule_speaks_servicenows_headers(servicenow):
    """REFERENCE section 10: X-RateLimit-Limit, -Remaining (after this request), -Reset (epoch
    seconds) on every answer while a rule applies; past it 429 with Retry-After."""
    import requests

    servicenow.rate_limit_per_hour = 2
    auth = (servicenow.username, servicenow.password)
    url = f"{servicenow.url}/api/now/table/incident"
    answers = [requests.get(url, auth=auth, timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    reset = int(answers[0].headers["X-RateLimit-Reset"])
    now = servicenow.clock.now().timestamp()
    assert 0 < reset - now <= 3600 and reset % 3600 == 0
    assert int(answers[2].headers["Retry-After"]) == pytest.approx(reset - now, abs=2)
    assert servicenow.rate_limited == 1


def test_the_client_keeps_under_the_instances_rule_it_learns_from_the_headers(servicenow, harness):
    """No limit configured: the rule's headers alone keep fd-sync's reads out of the reserve,
    and it never meets the 429."""
    servicenow.rate_limit_per_hour = 12  # a reserve of 5 (the minimum) for writes
    h = harness()
    results = [h.cycle() for _ in range(10)]
    assert servicenow.rate_limited == 0
    assert len(servicenow.api_times) == 12 - 5
    spent = [r for r in results if r.error is not None]
    assert spent and "kept for writes" in str(spent[0].error) and spent[0].exit_code == 75


def test_the_simulated_openapi_answers_its_per_account_limit(flashduty):
    """on-call.openapi.en.json / REFERENCE section 1: beyond the account's limit, 429 with
    the code RequestTooFrequently."""
    import requests

    flashduty.openapi_limit_per_minute = 2
    url = f"{flashduty.url}/member/list?app_key={flashduty.app_key}"
    answers = [requests.post(url, json={"p": 1, "limit": 10}, timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["code"] == "RequestTooFrequently"
    assert flashduty.openapi_limited == 1
