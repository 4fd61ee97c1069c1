"""``python -m bench.budgets``: both APIs' budgets and freshness (issue 24), targets met/missed.

Each scenario runs the real cycle (wiring, ledger, HTTP to both simulators in this
process) on ServiceNow's simulated clock, which ticks in real time (so a cycle's own
duration counts in every latency) and is moved on to the next cycle instead of waiting:
an hour of 10-second cycles takes a minute. fd-sync's pacing, its ledger, the Flashduty
simulator and the push rate limiter all read that clock. Every figure is the median of
``--repeat`` runs.

1. ServiceNow requests an hour, idle, 10 s interval, commands off (no alert open, and 20
   open); with ``max_requests_per_hour = 500`` and the instance's rule at 500, an
   incident changing every 2 s and the write-back on: the most in any sliding hour, 429s,
   freshness p95.
2. 10,000 tracked incidents, 50 active: OpenAPI requests in any sliding minute against
   ``max_openapi_requests_per_minute = 100``; a responder's action to its work note,
   p95, on active incidents and on quiet ones (against 2 x the 300 s cadence).
3. Freshness both ways at 10 s: ServiceNow change -> Flashduty event, Flashduty action ->
   ServiceNow work note, p95.
4. Start-up CPU of ``fd-sync --help``, ``status`` and an empty ``once`` against a bare
   ``python -c "import requests"``, measured in the same run (child processes' rusage);
   ``status`` with https URLs in its configuration, as a real one has (it contacts
   nothing, and the simulators' http:// URLs would make it log a warning first).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.writeback import base_document
from fd_sync import logs, wiring
from fd_sync.config import parse
from fd_sync.flashduty.budget import OpenAPIBudget
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim
from fd_sync.store.ledger import Ledger
from fd_sync.sync.pacing import Pacing

INTERVAL = 10


@dataclass
class World:
    sn: ServiceNowSim
    fd: FlashdutySim
    time: Callable[[], float]  # ServiceNow's simulated clock as Unix time: everyone's
    config: Any
    ledger: Ledger
    pacing: Pacing
    to: Any
    next_cycle: float = 0.0
    intervals: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sn.clock.sleep(seconds)

    def until(self, moment: float) -> None:
        self.sn.clock.sleep(moment - self.time())

    def cycle(self) -> Any:
        """The next cycle at its scheduled time (the effective interval after the last)."""
        self.until(self.next_cycle)
        started = self.time()
        report = wiring.cycle(
            self.config, self.ledger, wall=self.time, to=self.to, paced=self.pacing
        ).run(command="run")
        self.intervals.append(report.interval or INTERVAL)
        self.next_cycle = started + (report.interval or INTERVAL)
        return report


@contextmanager
def world(**overrides: Any) -> Iterator[World]:
    with tempfile.TemporaryDirectory() as tmp, ServiceNowSim() as sn, FlashdutySim() as fd:
        time = sn.clock.timestamp
        fd.clock = time
        fd.wall = time
        database = Path(tmp) / "fd-sync.db"
        document = base_document(sn, fd, database)
        document["sync"].update(poll_interval_seconds=INTERVAL, lookback_seconds=300)
        document["flashduty"]["max_openapi_requests_per_minute"] = 100  # the default
        for section, keys in overrides.items():
            document.setdefault(section, {}).update(keys)
        config = parse(document, path=Path(tmp) / "c.toml", env={})
        with Ledger(database, clock=lambda: datetime.fromtimestamp(time(), UTC)) as ledger:
            pacing = wiring.pacing(config, ledger)
            pacing.servicenow.clock = time
            pacing.openapi.limiter.clock = time
            pacing.openapi.limiter.sleep = sn.clock.sleep
            to = wiring.destinations(config, pacing_clock=time, pacing_sleep=sn.clock.sleep)
            yield World(sn, fd, time, config, ledger, pacing, to)


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def most_in_window(times: list[float], seconds: float, start: float, end: float) -> int:
    inside = sorted(t for t in times if start <= t < end)
    most, first = 0, 0
    for last, t in enumerate(inside):
        while inside[first] <= t - seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


# --- 1. ServiceNow: idle and busy hours -------------------------------------------------


def idle_hour(open_alerts: int, commands: bool = False) -> dict[str, float]:
    with world(commands={"enabled": commands}) as w:
        w.cycle()  # the baseline
        rows = [w.sn.create(short_description=f"idle {i}", urgency="2") for i in range(20)]
        for _ in range(3):
            w.cycle()
        for row in rows[open_alerts:]:  # the rest resolved: their alerts closed
            w.sn.resolve(row["sys_id"])
        for _ in range(3):
            w.cycle()
        w.sleep(700)  # past any read-to-end and deletion check the start-up did
        w.next_cycle = w.time()
        w.cycle()
        start = w.time()
        cycles = 0
        while w.next_cycle < start + 3600:
            w.cycle()
            cycles += 1
        return {
            "requests": most_in_window(w.sn.api_times, 3600, start, start + 3600),
            "cycles": cycles,
        }


def busy_hour(limit: int = 500) -> dict[str, float]:
    with world(servicenow={"max_requests_per_hour": limit}, commands={"enabled": False}) as w:
        w.sn.rate_limit_per_hour = limit
        w.cycle()
        rows = [w.sn.create(short_description=f"busy {i}", urgency="2") for i in range(20)]
        w.cycle()
        start = w.time()
        changes: list[tuple[str, float]] = []
        robin = itertools.cycle(rows)
        next_change = start
        while w.time() < start + 5400:
            while next_change < w.next_cycle:
                w.until(next_change)
                row = next(robin)
                w.sn.update(row["sys_id"], short_description=f"at {next_change:.0f}")
                changes.append((row["sys_id"], w.time()))
                next_change += 2
            w.cycle()
        arrivals: dict[str, list[float]] = {}
        for event in w.fd.events():
            arrivals.setdefault(event.key, []).append(event.at)
        latencies = [
            next((a - t for a in arrivals.get(key, []) if a >= t), float("inf"))
            for key, t in changes
            if t < start + 5400 - 120
        ]
        return {
            "most_in_hour": max(
                most_in_window(w.sn.api_times, 3600, s, s + 3600)
                for s in range(int(start), int(start) + 1801, 300)
            ),
            "rate_limited": w.sn.rate_limited,
            "freshness_p95": p95(latencies),
            "interval_median": statistics.median(w.intervals),
        }


# --- 2 and 3. OpenAPI budget at 10,000 tracked; freshness both ways -----------------------


def note_latencies(w: World, actions: list[tuple[str, str, float]]) -> Callable[[], None]:
    """After each cycle: the actions whose note has arrived, with when they were done."""
    done: dict[str, float] = {}

    def check() -> None:
        now = w.time()
        for sys_id, text, at in actions:
            if text in done:
                continue
            if any(text in j["value"] for j in w.sn.journal(sys_id, "work_notes")):
                done[text] = now - at

    check.done = done  # type: ignore[attr-defined]
    return check


def many_tracked(tracked: int, active: int, budget: int = 100) -> dict[str, float]:
    rng = random.Random(24)
    with world(
        flashduty={"max_openapi_requests_per_minute": 1000, "max_requests_per_minute": 1000}
    ) as w:
        w.cycle()
        rows = [w.sn.create(short_description=f"storm {i}", urgency="3") for i in range(tracked)]
        # The warm-up, at the account's whole 1000 a minute: every incident sent, linked and
        # its timeline read once (10,000 first reads take 100 minutes at 100 a minute),
        # then quiet for 20 minutes. Measured from then on, at the budget.
        settle_until = w.time() + 1500
        while w.time() < settle_until:
            w.cycle()
        w.pacing.openapi = OpenAPIBudget(budget, clock=w.time, sleep=w.sn.clock.sleep)
        w.config = replace(
            w.config,
            flashduty=replace(w.config.flashduty, max_openapi_requests_per_minute=budget),
        )
        ann = w.fd.add_person("Ann Lee", "ann@example.com")
        hot, cold = rows[:active], rows[active:]
        for row in hot:  # made active: a responder acknowledged each, and fd-sync saw it
            w.fd.ack(w.fd.incident_of(row["sys_id"]), ann)
        acked_until = w.time() + 2 * 300
        while w.time() < acked_until and not all(
            w.sn.journal(row["sys_id"], "work_notes") for row in hot
        ):
            w.cycle()
        start = w.time()
        limited_before = w.fd.openapi_limited
        actions: list[tuple[str, str, float]] = []
        quiet_actions: list[tuple[str, str, float]] = []
        serial = itertools.count()
        check = note_latencies(w, actions)
        check_quiet = note_latencies(w, quiet_actions)
        # Each active incident touched about every 2.5 minutes (so it stays active); 20
        # quiet ones once each.
        plan = sorted(
            [(start + rng.uniform(0, 600), "hot") for _ in range(200)]
            + [(start + rng.uniform(0, 600), "cold") for _ in range(20)]
        )
        end = start + 1200
        for moment, kind in plan:
            while w.next_cycle <= moment:
                w.cycle()
                check()
                check_quiet()
            w.until(moment)
            row = rng.choice(hot if kind == "hot" else cold)
            text = f"<action {next(serial)}>"
            w.fd.comment(w.fd.incident_of(row["sys_id"]), ann, text)
            (actions if kind == "hot" else quiet_actions).append((row["sys_id"], text, w.time()))
        while w.time() < end:
            w.cycle()
            check()
            check_quiet()
        hot_lat = list(check.done.values())  # type: ignore[attr-defined]
        cold_lat = list(check_quiet.done.values())  # type: ignore[attr-defined]
        missing = len(actions) + len(quiet_actions) - len(hot_lat) - len(cold_lat)
        return {
            "openapi_most_in_minute": max(
                most_in_window(w.fd.openapi_times, 60, s, s + 60)
                for s in range(int(start), int(end) - 60, 10)
            ),
            "openapi_limited": w.fd.openapi_limited - limited_before,
            "active_p95": p95(hot_lat),
            "quiet_p95": p95(cold_lat),
            "quiet_max": max(cold_lat) if cold_lat else float("nan"),
            "notes_missing": missing,
        }


def both_ways() -> dict[str, float]:
    """20 incidents; a ServiceNow change and a responder's comment, each every 2.3 s."""
    with world() as w:
        w.cycle()
        rows = [w.sn.create(short_description=f"both {i}", urgency="2") for i in range(20)]
        for _ in range(3):
            w.cycle()
        ann = w.fd.add_person("Ann Lee", "ann@example.com")
        start = w.time()
        changes: list[tuple[str, float]] = []
        actions: list[tuple[str, str, float]] = []
        check = note_latencies(w, actions)
        robin = itertools.cycle(rows)
        moment, serial = start, itertools.count()
        while moment < start + 600:
            while w.next_cycle <= moment:
                w.cycle()
                check()
            w.until(moment)
            row = next(robin)
            w.sn.update(row["sys_id"], short_description=f"at {moment:.1f}")
            changes.append((row["sys_id"], w.time()))
            text = f"<both {next(serial)}>"
            w.fd.comment(w.fd.incident_of(row["sys_id"]), ann, text)
            actions.append((row["sys_id"], text, w.time()))
            moment += 2.3
        for _ in range(3):
            w.cycle()
            check()
        arrivals: dict[str, list[float]] = {}
        for event in w.fd.events():
            arrivals.setdefault(event.key, []).append(event.at)
        to_flashduty = [
            next((a - t for a in arrivals.get(key, []) if a >= t), float("inf"))
            for key, t in changes
        ]
        return {
            "to_flashduty_p95": p95(to_flashduty),
            "to_servicenow_p95": p95(list(check.done.values())),  # type: ignore[attr-defined]
        }


# --- 4. start-up ---------------------------------------------------------------------------


def cpu_of(command: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def start_up(runs: int) -> dict[str, float]:
    python = sys.executable
    fd_sync = [python, "-m", "fd_sync"]
    env = {**os.environ, "FD_SYNC_LOG_FORMAT": "json"}
    with tempfile.TemporaryDirectory() as tmp, ServiceNowSim() as sn, FlashdutySim() as fd:
        document = base_document(sn, fd, Path(tmp) / "fd-sync.db")
        document.pop("writeback")
        path = Path(tmp) / "c.toml"
        path.write_text(to_toml(document))
        path.chmod(0o600)
        config = ["--config", str(path)]
        subprocess.run([*fd_sync, *config, "once"], check=True, capture_output=True, env=env)
        # status reads the ledger alone: its configuration names https URLs, as a real one
        # does (the simulators' http:// ones make every command log a warning first).
        secure = {**document, "servicenow": dict(document["servicenow"])}
        secure["servicenow"]["instance_url"] = "https://acme.service-now.com"
        secure["flashduty"] = {
            **document["flashduty"],
            "push_url": "https://api.flashcat.cloud/event/push/alert/standard?integration_key=k",
            "api_domain": "api.flashcat.cloud",
        }
        status_path = Path(tmp) / "status.toml"
        status_path.write_text(to_toml(secure))
        status_path.chmod(0o600)
        commands = {
            "bare import requests": [python, "-c", "import requests"],
            "fd-sync --help": [*fd_sync, "--help"],
            "fd-sync status": [*fd_sync, "--config", str(status_path), "status"],
            "fd-sync once (empty)": [*fd_sync, *config, "once"],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):  # interleaved: load moves every figure alike
            for name, command in commands.items():
                samples[name].append(cpu_of(command, env))
        return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def to_toml(document: dict[str, Any]) -> str:
    lines = []
    for section, keys in document.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in keys.items())
    return "\n".join(lines) + "\n"


# --- report --------------------------------------------------------------------------------


def median_of(runs: int, scenario: Callable[[], dict[str, float]]) -> dict[str, float]:
    results = [scenario() for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.budgets", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--tracked", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results-budgets.json"))
    args = parser.parse_args(argv)
    logs.configure("error")
    r = args.repeat
    idle = median_of(r, lambda: idle_hour(0))
    idle_open = median_of(r, lambda: idle_hour(20))
    busy = median_of(r, busy_hour)
    storm = median_of(r, lambda: many_tracked(args.tracked, 50))
    fresh = median_of(r, both_ways)
    boot = start_up(5 * r)
    base = boot["bare import requests"]
    rows = [
        ("1. idle ServiceNow requests/hour, 20 incidents, none open", idle["requests"], 360),
        ("1. idle ServiceNow requests/hour, 20 incidents open", idle_open["requests"], 360),
        ("1. busy, limit 500: most requests in a sliding hour", busy["most_in_hour"], 500),
        ("1. busy, limit 500: 429s", busy["rate_limited"], 0),
        ("1. busy, limit 500: change -> event p95 (s)", busy["freshness_p95"], float("inf")),
        ("2. OpenAPI requests in a sliding minute", storm["openapi_most_in_minute"], 100),
        ("2. OpenAPI 429s", storm["openapi_limited"], 0),
        ("2. active: action -> work note p95 (s)", storm["active_p95"], INTERVAL + 2),
        ("2. quiet: action -> work note p95 (s)", storm["quiet_p95"], 2 * 300),
        ("2. notes never written", storm["notes_missing"], 0),
        ("3. ServiceNow -> Flashduty p95 (s)", fresh["to_flashduty_p95"], 11),
        ("3. Flashduty -> ServiceNow p95 (s)", fresh["to_servicenow_p95"], 12),
    ]
    for name in ("fd-sync --help", "fd-sync status", "fd-sync once (empty)"):
        rows.append((f"4. start-up CPU {name} / bare import requests", boot[name] / base, 1.5))
    width = max(len(name) for name, _, _ in rows)
    print(f"{'figure':<{width}}  {'value':>9}  {'target':>7}  verdict")
    for name, value, target in rows:
        shown = "report" if target == float("inf") else f"<= {target:g}"
        mark = "" if target == float("inf") else verdict(value, target)
        print(f"{name:<{width}}  {value:>9.2f}  {shown:>7}  {mark}")
    print(
        f"   (start-up CPU, ms: bare {base:.0f}, --help {boot['fd-sync --help']:.0f}, status "
        f"{boot['fd-sync status']:.0f}, once {boot['fd-sync once (empty)']:.0f}; "
        f"idle cycles in the hour {idle['cycles']:.0f}; busy interval median "
        f"{busy['interval_median']:.1f} s; quiet max {storm['quiet_max']:.0f} s)"
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    figures = {"idle": idle, "idle_open": idle_open, "busy": busy, "storm": storm}
    figures |= {"both_ways": fresh, "start_up_ms": boot, "commit": commit, "repeat": r}
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
