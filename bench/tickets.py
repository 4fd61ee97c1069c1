"""``python -m bench.tickets``: what tickets from Flashduty cost per cycle, in requests.

For 0, 10 and 500 tracked tickets (monitoring incidents in a watched channel, each with
its ServiceNow ticket opened and linked): a quiet cycle (nothing happened on either side)
and a busy one (a responder commented on every incident in Flashduty, and the desk
commented on every ticket in ServiceNow), counting the OpenAPI requests to Flashduty and
the GETs, POSTs and PATCHes to ServiceNow. The counts are deterministic; the simulators
run in this process. Commands are off, so the figures are the poll's and the tickets'.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from bench.writeback import Wall, base_document, cycle_counter
from fd_sync import logs
from fd_sync.config import parse
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim
from fd_sync.store.ledger import Ledger

WATCHED = 5550001


def measure(n: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        ServiceNowSim() as sn,
        FlashdutySim() as fd,
    ):
        wall = Wall()
        fd.wall = wall
        fd.add_channel("Prometheus", channel_id=WATCHED)
        database = Path(tmp) / "fd-sync.db"
        document = base_document(sn, fd, database)
        document.update(
            commands={"enabled": False},
            tickets={"enabled": True, "channel_ids": [WATCHED]},
        )
        config = parse(document, path=Path(tmp) / "c.toml", env={})
        with Ledger(database) as ledger:
            cycle = cycle_counter(config, ledger, sn, fd, wall)
            cycle()  # the first run: tickets only for incidents starting after it
            wall.now += 1
            ids = [fd.open_incident(f"disk {i}", channel_id=WATCHED) for i in range(n)]
            opening = cycle()
            for _ in range(3):  # link-backs; read the timelines; settle
                cycle()
            quiet = cycle()
            person = fd.add_person("Ann Lee", "ann@example.com")
            for incident_id in ids:
                fd.comment(incident_id, person, "looking")
            for sys_id in list(sn.created):
                sn.comment(sys_id, "the customer confirms", by="desk.agent")
            busy = cycle()
            after = cycle()
            assert len(sn.created) == n, "every incident has one ticket"
    return {"tracked": n, "opening": opening, "quiet": quiet, "busy": busy, "after": after}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tickets", description=__doc__)
    parser.add_argument("--sizes", default="0,10,500")
    args = parser.parse_args(argv)
    logs.configure("error")
    print(
        f"{'tickets':>8}  {'cycle':<8} {'OpenAPI':>8} {'SN GET':>7} {'SN POST':>8} {'SN PATCH':>9}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        result = measure(n)
        for name in ("opening", "quiet", "busy", "after"):
            c = result[name]
            print(
                f"{n:>8}  {name:<8} {c['openapi']:>8} {c['servicenow_get']:>7} "
                f"{c['servicenow_post']:>8} {c['servicenow_patch']:>9}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
