"""``python -m bench`` (what ``make bench`` runs): measure, print the table, write the JSON.

Options pick scenarios and sizes for development; the published table comes
from the defaults. See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import postgres, report, scenarios, stages
from bench.processes import BusyMeter, Simulator, machine_load

RESULTS = Path(__file__).resolve().parent / "results.json"
ALL = ("backfill", "steady", "delivery", "freshness", "postgres")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--sizes", default="10000,100000", help="backfill table sizes")
    parser.add_argument("--steady-sizes", default="1000,100000", help="steady-cycle ledgers")
    parser.add_argument("--only", default=",".join(ALL), help="scenarios, comma-separated")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s]
    unknown = set(chosen) - set(ALL)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    started = time.monotonic()
    load_before = machine_load()
    meter = BusyMeter()
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="fd-sync-bench-") as tmp,
        Simulator("flashduty") as flashduty,
    ):
        bench = scenarios.Bench(args.repeat, Path(tmp), flashduty)
        if "backfill" in chosen:
            sizes = [int(n) for n in args.sizes.split(",")]
            results["backfill"] = scenarios.backfill(bench, sizes)
            results["closed"] = scenarios.backfill_closed(bench, max(sizes))
        if "backfill" in chosen:
            scenarios.log(f"stages: where a {max(sizes):,}-incident backfill spends its CPU")
            results["stages"] = stages.measure_stages(max(sizes), flashduty)
        if "steady" in chosen:
            results["steady"] = scenarios.steady(
                bench, [int(n) for n in args.steady_sizes.split(",")]
            )
        if "delivery" in chosen:
            results["delivery"] = scenarios.delivery(bench)
        if "postgres" in chosen:
            largest = max(int(n) for n in args.sizes.split(","))
            results["postgres"] = postgres.measure_postgres(bench, largest)
        if "freshness" in chosen:
            if scenarios.daemon_available():
                results["freshness"] = scenarios.freshness(bench)
            else:
                results["freshness"] = {
                    "skipped": "not measured: no `fd-sync run` in this checkout"
                }

    rows = report.figures(results)
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench" if argv is None and sys.argv[1:] == [] else " ".join(sys.argv),
        "commit": _commit(),
        "seconds": round(time.monotonic() - started, 1),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": machine_load(),
            "busy_share_during_run": round(meter.busy(), 3),
        },
        "settings": {
            "repeat": args.repeat,
            "page_size": scenarios.PAGE_SIZE,
            "open_ratio": scenarios.OPEN_RATIO,
        },
        "results": results,
        "targets": [r.as_dict() for r in rows],
    }
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    tmp_out.replace(args.out)

    if rows:
        print(report.table(rows))
    if "backfill" in results:
        print()
        print(report.clients_table(results["backfill"]))
        print()
        print(stages.table(results["stages"]))
    if "postgres" in results:
        print()
        print(postgres.table(results["postgres"]))
    machine = document["machine"]
    print(
        f"\n{machine['cpus']} CPUs, load {load_before['load1']:.2f} before and "
        f"{machine['load_after']['load1']:.2f} after; all cores "
        f"{machine['busy_share_during_run']:.0%} busy during the run "
        f"({document['seconds']:.0f} s); medians of {args.repeat} run(s). Wrote {args.out}."
    )
    return 0


def _commit() -> str:
    """The checkout measured, with a + when it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], check=False).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
