"""Run a simulator as its own process: ``python -m fd_sync.simulators servicenow|flashduty``.

The benchmarks measure a client's CPU time and memory as those of its process,
so the simulators it talks to must live in another one. The simulator prints
one JSON line (its URL and what a client needs to reach it), then serves until
its standard input closes; meanwhile each JSON line on standard input is a
command (change incidents, read counters) answered by one JSON line on
standard output. Closing stdin (or the driver dying) stops it.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim

TABLE = "/api/now/table/"
Command = Callable[[dict[str, Any]], dict[str, Any]]


class ServiceNowControl:
    """Commands for a seeded ServiceNow: change incidents now, count requests."""

    def __init__(self, sim: ServiceNowSim) -> None:
        self.sim = sim
        self.round = 0

    def commands(self) -> dict[str, Command]:
        return {"stats": self.stats, "reset": self.reset, "change": self.change}

    def stats(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "table_requests": len(self.sim.requests_to(TABLE)),
            "requests": len(self.sim.requests),
            "incidents": len(self.sim.tables["incident"]),
            "open": len(self.sim.open_sys_ids()),
        }

    def reset(self, _: dict[str, Any]) -> dict[str, Any]:
        with self.sim._lock:
            self.sim.requests.clear()
        return {}

    def change(self, args: dict[str, Any]) -> dict[str, Any]:
        """Update, resolve and reopen incidents now, as agents would in the UI.

        Deterministic: open and closed incidents are taken in number order,
        rotating by round, so repeated rounds touch different incidents.
        Answers the sys_ids changed and the monotonic time of the change.
        """
        self.round += 1
        by_number = sorted(self.sim.incidents(), key=lambda r: r["number"])
        open_rows = [r for r in by_number if r["state"] not in ("6", "7", "8")]
        closed_rows = [r for r in by_number if r["state"] in ("6", "7", "8")]
        updates, resolves, reopens = (int(args.get(k, 0)) for k in ("update", "resolve", "reopen"))
        chosen_open = _rotate(open_rows, self.round * (updates + resolves), updates + resolves)
        chosen_closed = _rotate(closed_rows, self.round * reopens, reopens)
        changed = []
        for row in chosen_open[:updates]:
            title = f"{row['short_description'].split(' [')[0]} [round {self.round}]"
            changed.append(self.sim.update(row["sys_id"], short_description=title)["sys_id"])
        for row in chosen_open[updates:]:
            changed.append(self.sim.update(row["sys_id"], state="6")["sys_id"])
        for row in chosen_closed:
            changed.append(self.sim.update(row["sys_id"], state="2")["sys_id"])
        return {"sys_ids": changed, "at": time.monotonic()}


def _rotate(rows: list[dict[str, str]], start: int, count: int) -> list[dict[str, str]]:
    if not rows or count <= 0:
        return []
    start %= len(rows)
    return (rows[start:] + rows[:start])[: min(count, len(rows))]


class FlashdutyControl:
    """Commands for the receiver: what arrived, when, and in which order per incident."""

    def __init__(self, sim: FlashdutySim) -> None:
        self.sim = sim

    def commands(self) -> dict[str, Command]:
        return {"stats": self.stats, "reset": self.reset, "arrivals": self.arrivals}

    def stats(self, _: dict[str, Any]) -> dict[str, Any]:
        events = self.sim.events()
        sequences = collections.Counter(
            ",".join(kinds) for kinds in self.sim.history(include_duplicates=True).values()
        )
        return {
            "received": len(events),
            "requests": len(self.sim.requests),
            "duplicates": sum(1 for e in events if e.duplicate),
            "rate_limited": self.sim.rate_limited,
            "violations": len(self.sim.violations),
            "first_at": events[0].at if events else None,
            "last_at": events[-1].at if events else None,
            "sequences": dict(sequences),
        }

    def reset(self, _: dict[str, Any]) -> dict[str, Any]:
        with self.sim._lock:
            self.sim.received.clear()
            self.sim.requests.clear()
            self.sim.open.clear()
            self.sim._last.clear()
            self.sim._last_kind.clear()
            self.sim.violations.clear()
            self.sim.rate_limited = 0
        return {}

    def arrivals(self, args: dict[str, Any]) -> dict[str, Any]:
        """The first arrival at or after ``after`` of an event for each of ``keys``."""
        wanted = set(args.get("keys", []))
        after = float(args.get("after", 0.0))
        found: dict[str, float] = {}
        for event in self.sim.events():
            if event.key in wanted and event.at >= after and event.key not in found:
                found[event.key] = event.at
        return {"arrivals": found}


def serve(commands: dict[str, Command]) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            answer = commands[request["cmd"]](request)
        except Exception as exc:  # a bad command must not kill the simulator
            answer = {"error": repr(exc)}
        print(json.dumps(answer), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fd_sync.simulators", description=__doc__)
    which = parser.add_subparsers(dest="which", required=True)
    sn = which.add_parser("servicenow", help="the Table API, seeded with incidents")
    sn.add_argument("--incidents", type=int, default=0, help="incidents to seed")
    sn.add_argument("--open-ratio", type=float, default=0.02, help="share of them open")
    sn.add_argument("--span-days", type=float, default=90.0, help="their changes spread over")
    sn.add_argument("--port", type=int, default=0, help="0 picks a free port")
    fd = which.add_parser("flashduty", help="the push receiver")
    fd.add_argument("--port", type=int, default=0, help="0 picks a free port")
    fd.add_argument("--rate-limit-per-minute", type=int, default=None, help="answer 429 beyond")
    args = parser.parse_args(argv)

    if args.which == "servicenow":
        from datetime import timedelta

        sim = ServiceNowSim(port=args.port)
        started = time.perf_counter()
        sim.seed(args.incidents, open_ratio=args.open_ratio, span=timedelta(days=args.span_days))
        oldest = sim._index[0][0] if sim._index else sim.clock.text()
        sim.start()
        hello: dict[str, Any] = {
            "url": sim.url,
            "username": sim.username,
            "password": sim.password,
            "incidents": args.incidents,
            "open": len(sim.open_sys_ids()),
            "oldest": oldest,
            "seed_seconds": round(time.perf_counter() - started, 3),
        }
        commands, stop = ServiceNowControl(sim).commands(), sim.stop
    else:
        receiver = FlashdutySim(port=args.port, rate_limit_per_minute=args.rate_limit_per_minute)
        receiver.start()
        hello = {
            "url": receiver.url,
            "push_url_standard": receiver.push_url_standard,
            "push_url_servicenow": receiver.push_url_servicenow,
        }
        commands, stop = FlashdutyControl(receiver).commands(), receiver.stop
    print(json.dumps(hello), flush=True)
    try:
        serve(commands)
    finally:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
