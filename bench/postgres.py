"""``make bench``'s PostgreSQL figures: the backfill and the steady cycle with the ledger
in PostgreSQL, beside the same runs on SQLite, interleaved in one run (issue 13).

The ratio PostgreSQL / SQLite is the figure: fd-sync's own CPU (what the jump host
pays), the wall time (what the operator waits), and the server's CPU (what the database
host pays: the postmaster, its background workers and the sessions that ended, read from
/proc). The server is a throwaway cluster (tests/postgres.py) on this machine, over
loopback TCP with a password, fsync off: network latency to a real server is not in it.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench.processes import Run, Simulator, check, measure
from bench.scenarios import CHANGES, OPEN_RATIO, Bench, _cycle_seconds, fd_sync, log, write_config
from tests import postgres

ENGINES = ("sqlite", "postgres")


def server_cpu(cluster: postgres.Cluster) -> float:
    """CPU seconds the cluster has used so far: the postmaster, its live children, and
    the children it has reaped (the sessions of finished fd-sync runs)."""
    assert cluster.process is not None
    root = cluster.process.pid
    tick = 100.0  # USER_HZ on Linux
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == root:
            total += sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
        elif ppid == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure_postgres(bench: Bench, n: int) -> dict[str, Any]:
    cluster = postgres.start_cluster()
    if cluster is None:
        return {"skipped": "PostgreSQL is not installed (apt-get install postgresql)"}
    try:
        return _measure(bench, n, cluster)
    finally:
        cluster.destroy()


def _measure(bench: Bench, n: int, cluster: postgres.Cluster) -> dict[str, Any]:
    log(f"postgres: {n:,} incidents, SQLite and PostgreSQL ledgers interleaved")
    backfill: dict[str, list[tuple[Run, float]]] = {e: [] for e in ENGINES}
    quiet: dict[str, list[tuple[Run, float]]] = {e: [] for e in ENGINES}
    busy: dict[str, list[tuple[Run, float]]] = {e: [] for e in ENGINES}
    with Simulator("servicenow", "--incidents", str(n), "--open-ratio", str(OPEN_RATIO)) as sn:
        since = sn.hello["oldest"].replace(" ", "T")
        for attempt in range(bench.repeat):
            configs = {}
            for engine in ENGINES:
                configs[engine] = _config(bench, sn, cluster, engine)
                bench.flashduty.command("reset")
                argv = fd_sync(configs[engine], "once", "--since", since, paced=False)
                backfill[engine].append(_timed(cluster, argv, "backfill"))
            for engine in ENGINES:
                quiet[engine].append(_timed(cluster, fd_sync(configs[engine], "once"), "steady"))
            sn.command("change", **CHANGES)  # the same 20 changes reach both ledgers
            for engine in ENGINES:
                busy[engine].append(_timed(cluster, fd_sync(configs[engine], "once"), "steady"))
            log(
                f"postgres run {attempt + 1}/{bench.repeat}: backfill "
                + ", ".join(f"{e} {backfill[e][-1][0].wall:.2f}s" for e in ENGINES)
            )
    return {
        "incidents": n,
        "backfill": {e: _summary(backfill[e]) for e in ENGINES},
        "steady_unchanged": {e: _summary(quiet[e]) for e in ENGINES},
        "steady_20_changes": {e: _summary(busy[e]) for e in ENGINES},
    }


def _config(bench: Bench, sn: Simulator, cluster: postgres.Cluster, engine: str) -> Path:
    folder = bench.folder(f"postgres-{engine}")
    push_url = bench.flashduty.hello["push_url_standard"]
    if engine == "sqlite":
        return write_config(folder / "fd-sync.toml", sn.hello, push_url, folder / "fd-sync.db")
    return write_config(
        folder / "fd-sync.toml",
        sn.hello,
        push_url,
        cluster.url(cluster.new_database()),
        sync={"database_password": postgres.PASSWORD},
    )


def _timed(cluster: postgres.Cluster, argv: list[str], what: str) -> tuple[Run, float]:
    before = server_cpu(cluster)
    run = check(measure(argv), what)
    return run, server_cpu(cluster) - before


def _summary(runs: list[tuple[Run, float]]) -> dict[str, float]:
    return {
        "wall": round(statistics.median(r.wall for r, _ in runs), 4),
        "cpu": round(statistics.median(r.cpu for r, _ in runs), 4),
        "server_cpu": round(statistics.median(s for _, s in runs), 4),
        "cycle_seconds": round(statistics.median(_cycle_seconds(r.stderr) for r, _ in runs), 4),
        "runs": len(runs),
    }


def table(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"PostgreSQL ledger: {result['skipped']}"
    rows = [
        f"PostgreSQL ledger beside SQLite, {result['incidents']:,} incidents (medians; "
        "ratio: PostgreSQL's cycle / SQLite's)",
        "",
        "| step | SQLite cycle | SQLite CPU | PostgreSQL cycle | PostgreSQL CPU "
        "| server CPU | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("backfill", "backfill (once --since)"),
        ("steady_unchanged", "steady, nothing changed"),
        ("steady_20_changes", "steady, 20 changes"),
    ):
        lite, pg = result[key]["sqlite"], result[key]["postgres"]
        rows.append(
            f"| {label} | {lite['cycle_seconds']:.3f} s | {lite['cpu']:.2f} s "
            f"| {pg['cycle_seconds']:.3f} s | {pg['cpu']:.2f} s | {pg['server_cpu']:.2f} s "
            f"| {pg['cycle_seconds'] / lite['cycle_seconds']:.2f} × |"
        )
    return "\n".join(rows)
