"""``python -m bench.writeback``: what the write-back costs per cycle, in requests.

For 1, 100 and 1,000 tracked incidents (alerts fd-sync opened, their Flashduty incidents
found): a quiet cycle (nobody did anything in Flashduty) and a busy one (a responder
commented on every incident), counting the OpenAPI requests to Flashduty and the GETs and
PATCHes to ServiceNow. The counts are deterministic; the simulators run in this process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fd_sync import logs, wiring
from fd_sync.config import parse
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim
from fd_sync.store.ledger import Ledger


class Wall:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def base_document(sn: ServiceNowSim, fd: FlashdutySim, database: Path) -> dict[str, Any]:
    """The configuration every request-cost benchmark starts from: both simulators, the
    write-back on."""
    return {
        "servicenow": {"instance_url": sn.url, "username": sn.username, "password": sn.password},
        "flashduty": {
            "push_url": fd.push_url_standard,
            "app_key": fd.app_key,
            "api_domain": fd.url,
            # The account's whole minute: these benchmarks count requests, not pace them.
            "max_openapi_requests_per_minute": 1000,
        },
        "sync": {"database": str(database)},
        "writeback": {"enabled": True},
    }


def cycle_counter(
    config: Any, ledger: Ledger, sn: ServiceNowSim, fd: FlashdutySim, wall: Wall
) -> Callable[[], dict[str, int]]:
    """A cycle one poll interval later, returning the requests it made, by kind."""

    def cycle() -> dict[str, int]:
        wall.now += 60  # one poll interval
        sn.clock.advance(60)
        before_fd, before_sn = len(fd.requests), len(sn.requests)
        wiring.cycle(config, ledger, wall=wall).run()
        fd_new, sn_new = fd.requests[before_fd:], sn.requests[before_sn:]
        return {
            "openapi": sum(1 for r in fd_new if not r.path.startswith("/event/")),
            "push": sum(1 for r in fd_new if r.path.startswith("/event/")),
            "servicenow_get": sum(1 for r in sn_new if r.method == "GET"),
            "servicenow_post": sum(1 for r in sn_new if r.method == "POST"),
            "servicenow_patch": sum(1 for r in sn_new if r.method == "PATCH"),
        }

    return cycle


def measure(n: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        ServiceNowSim() as sn,
        FlashdutySim() as fd,
    ):
        wall = Wall()
        fd.wall = wall
        database = Path(tmp) / "fd-sync.db"
        config = parse(base_document(sn, fd, database), path=Path(tmp) / "c.toml", env={})
        with Ledger(database) as ledger:
            cycle = cycle_counter(config, ledger, sn, fd, wall)
            cycle()  # the baseline
            rows = [sn.create(short_description=f"disk {i}", urgency="1") for i in range(n)]
            for _ in range(3):  # send the creates; find the incidents; settle the reads
                cycle()
            quiet = cycle()
            person = fd.add_person("Ann Lee", "ann@example.com")
            for row in rows:
                fd.comment(fd.incident_of(row["sys_id"]), person, "looking")
            busy = cycle()
            after = cycle()
    return {"tracked": n, "quiet": quiet, "busy": busy, "after": after}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.writeback", description=__doc__)
    parser.add_argument("--sizes", default="1,100,1000")
    args = parser.parse_args(argv)
    logs.configure("error")
    print(f"{'tracked':>8}  {'cycle':<6} {'OpenAPI':>8} {'push':>5} {'SN GET':>7} {'SN PATCH':>9}")
    for n in (int(s) for s in args.sizes.split(",")):
        result = measure(n)
        for name in ("quiet", "busy", "after"):
            c = result[name]
            print(
                f"{n:>8}  {name:<6} {c['openapi']:>8} {c['push']:>5} "
                f"{c['servicenow_get']:>7} {c['servicenow_patch']:>9}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
