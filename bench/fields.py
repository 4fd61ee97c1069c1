"""``python -m bench.fields``: what field sync (issue 22) costs per cycle, in requests.

100 tracked incidents (alerts fd-sync opened, their Flashduty incidents found), measured
twice in the same run: with the field sync off (the baseline: write-back and commands as
configured by default) and on (``[writeback] assign = "assignee"``, ``severity = true``,
``[forward] work_notes = true``, ``assignment = true``). A quiet cycle (nothing happened),
and a busy one: on every incident a responder reassigns and changes the severity in
Flashduty, and the desk reassigns and writes a work note in ServiceNow. Deterministic; the
simulators run in this process.
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

FIELDS_ON = {
    "writeback": {"enabled": True, "assign": "assignee", "severity": True},
    "forward": {"work_notes": True, "assignment": True},
}


def measure(n: int, fields: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, ServiceNowSim() as sn, FlashdutySim() as fd:
        wall = Wall()
        fd.wall = wall
        database = Path(tmp) / "fd-sync.db"
        document = base_document(sn, fd, database)
        if fields:
            document.update(FIELDS_ON)
        config = parse(document, path=Path(tmp) / "c.toml", env={})
        people = [(f"Person {i}", f"p{i}@example.com") for i in range(3)]
        fd_ids = [fd.add_person(name, email) for name, email in people]
        sn_ids = [
            sn.add_user(name, user_name=f"p{i}", email=email)
            for i, (name, email) in enumerate(people)
        ]
        with Ledger(database) as ledger:
            cycle = cycle_counter(config, ledger, sn, fd, wall)
            cycle()
            rows = [sn.create(short_description=f"disk {i}", urgency="1") for i in range(n)]
            for _ in range(4):
                cycle()
            quiet = cycle()
            for i, row in enumerate(rows):
                incident_id = fd.incident_of(row["sys_id"])
                fd.assign(incident_id, fd_ids[0], [fd_ids[1]])
                fd.change_severity(incident_id, fd_ids[0], "Info")
                sn.update(row["sys_id"], assigned_to=sn_ids[2])
                sn.work_note(row["sys_id"], f"desk note {i}", by="p2")
            busy = cycle()
            after = cycle()
    return {"quiet": quiet, "busy": busy, "after": after}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fields", description=__doc__)
    parser.add_argument("--tracked", type=int, default=100)
    args = parser.parse_args(argv)
    logs.configure("error")
    header = ("fields", "cycle", "OpenAPI", "push", "SN GET", "SN PATCH")
    print("{:>6}  {:<6} {:>8} {:>5} {:>7} {:>9}".format(*header))
    results = {on: measure(args.tracked, on) for on in (False, True)}
    for on, result in results.items():
        for name in ("quiet", "busy", "after"):
            c = result[name]
            print(
                f"{'on' if on else 'off':>6}  {name:<6} {c['openapi']:>8} {c['push']:>5} "
                f"{c['servicenow_get']:>7} {c['servicenow_patch']:>9}"
            )
    for name in ("quiet", "busy", "after"):
        off, on = results[False][name], results[True][name]
        extra = {k: on[k] - off[k] for k in on}
        print(f"extra with field sync, {name} cycle at {args.tracked} incidents: {extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
