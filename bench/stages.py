"""Where a backfill's CPU goes, stage by stage: the profile behind the backfill figures.

Runs ``fd-sync once --since`` in this process (Flashduty pacing lifted, as in
the backfill runs) with a CPU-time meter around each stage of the cycle: the
ServiceNow request and JSON decoding, parsing rows into incidents, ledger
look-ups, reconciling, writing a page's rows and events, committing, and
delivering. Stages are timed with ``time.process_time`` per call (a few
hundred calls a run), so unlike a tracing profiler the meter hardly changes
what it measures. ``python -m bench.stages 100000`` prints the table alone.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.processes import Simulator
from bench.scenarios import OPEN_RATIO, write_config

# (stage, module, attribute): the functions whose CPU time is a stage's.
STAGES = (
    ("ServiceNow request + JSON decode", "fd_sync.servicenow.client", "ServiceNowClient.table_get"),
    ("parse rows into incidents", "fd_sync.sync.plan", "Planner._parse"),
    ("ledger look-ups", "fd_sync.store.ledger", "Ledger.entries"),
    ("reconcile", "fd_sync.sync.plan", "reconcile"),
    ("ledger write (rows, events)", "fd_sync.store.ledger", "Ledger._record"),
    ("page transaction (incl. write)", "fd_sync.store.ledger", "Ledger.record_page"),
    ("delivery (build, push, mark)", "fd_sync.sync.delivery", "Deliverer.drain"),
)


def _metered(spent: dict[str, float], stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[stage] += time.process_time() - started

    return wrapper


@contextlib.contextmanager
def metering() -> Iterator[dict[str, float]]:
    import importlib

    spent: dict[str, float] = defaultdict(float)
    undo: list[tuple[Any, str, Any]] = []
    for stage, module_name, attribute in STAGES:
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        undo.append((owner, name, original))
        setattr(owner, name, _metered(spent, stage, original))
    try:
        yield spent
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


def measure_stages(incidents: int, flashduty: Simulator) -> dict[str, Any]:
    """One in-process backfill of ``incidents``; CPU seconds per stage and in all."""
    import fd_sync.wiring
    from fd_sync.cli import main

    with (
        Simulator(
            "servicenow", "--incidents", str(incidents), "--open-ratio", str(OPEN_RATIO)
        ) as sn,
        tempfile.TemporaryDirectory(prefix="fd-sync-stages-") as tmp,
    ):
        config = write_config(
            Path(tmp) / "fd-sync.toml",
            sn.hello,
            flashduty.hello["push_url_standard"],
            Path(tmp) / "fd-sync.db",
        )
        flashduty.command("reset")
        lift = contextlib.ExitStack()
        original_limiter = fd_sync.wiring.flashduty.flashduty_limiter
        fd_sync.wiring.flashduty.flashduty_limiter = lambda per_minute, **_: None  # type: ignore[assignment]
        lift.callback(setattr, fd_sync.wiring.flashduty, "flashduty_limiter", original_limiter)
        argv = ["--config", str(config), "--log-level", "warning", "once"]
        argv += ["--since", sn.hello["oldest"].replace(" ", "T")]
        with lift, metering() as spent, contextlib.redirect_stdout(sys.stderr):
            started = time.process_time()
            try:
                main(argv)
            except SystemExit as exc:
                if exc.code:
                    raise RuntimeError(f"fd-sync once exited {exc.code}") from None
            total = time.process_time() - started
    stages = dict(spent)
    # The page transaction includes the write: keep the commit alone.
    stages["page transaction (incl. write)"] -= stages.get("ledger write (rows, events)", 0.0)
    commit = stages.pop("page transaction (incl. write)")
    stages["commit (SQLite WAL)"] = commit
    stages["other (paging, cursor, logs, loop)"] = total - sum(stages.values())
    return {"incidents": incidents, "cpu": total, "stages": stages}


def table(result: dict[str, Any]) -> str:
    n = result["incidents"]
    lines = [
        f"Where fd-sync once --since spends its CPU over {n:,} incidents (in-process):",
        "",
        "| stage | CPU | µs per incident | share |",
        "|---|---:|---:|---:|",
    ]
    for stage, seconds in result["stages"].items():
        lines.append(
            f"| {stage} | {seconds:.2f} s | {seconds / n * 1e6:.1f} "
            f"| {seconds / result['cpu']:.0%} |"
        )
    lines.append(f"| **all** | {result['cpu']:.2f} s | {result['cpu'] / n * 1e6:.1f} | 100% |")
    return "\n".join(lines)


def main() -> int:
    incidents = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with Simulator("flashduty") as flashduty:
        print(table(measure_stages(incidents, flashduty)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
