"""The four measurements of issue 6: backfill, steady cycle, delivery, freshness.

Each returns plain data (medians and counts) for :mod:`bench.report`. The
simulators run in their own processes (:mod:`bench.processes`); every client
run is a fresh process, with a fresh ledger where the scenario needs one.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.processes import PYTHON, ROOT, Run, Simulator, Summary, check, child_env, measure

CLIENTS = ("raw", "raw-msgspec", "pysnc", "fd-sync")  # A (json, msgspec), B, fd-sync
CLOSED_CLIENTS = ("raw", "raw-msgspec", "fd-sync")
PAGE_SIZE = 1000
OPEN_RATIO = 0.02
EMPTY_SINCE = "2026-01-01 00:00:00"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Bench:
    """What every scenario shares: the repeat count, a scratch folder, the receiver."""

    repeat: int
    workdir: Path
    flashduty: Simulator
    notes: list[str] = field(default_factory=list)

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


def write_config(
    path: Path,
    servicenow: dict[str, Any],
    push_url: str,
    database: Path | str,
    *,
    flashduty: dict[str, Any] | None = None,
    sync: dict[str, Any] | None = None,
) -> Path:
    """An fd-sync configuration for the simulators (the format of config.example.toml)."""
    sections: dict[str, dict[str, Any]] = {
        "servicenow": {
            "instance_url": servicenow["url"],
            "username": servicenow["username"],
            "password": servicenow["password"],
            "page_size": PAGE_SIZE,
        },
        "flashduty": {"push_url": push_url, **(flashduty or {})},
        "sync": {"database": str(database), **(sync or {})},
    }
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            text = f'"{value}"' if isinstance(value, str) else str(value).lower()
            lines.append(f"{key} = {text}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def fd_sync(config: Path, *args: str, paced: bool = True) -> list[str]:
    """The fd-sync command line; unpaced runs lift Flashduty's 1000/min (benchmark only)."""
    entry = ["-m", "fd_sync"] if paced else [str(ROOT / "bench/clients/fd_sync_unpaced.py")]
    return [PYTHON, *entry, "--config", str(config), *args]


def baseline(kind: str, servicenow: dict[str, Any], since: str) -> list[str]:
    script = {"raw": "raw_fetch.py", "raw-msgspec": "raw_fetch.py", "pysnc": "pysnc_fetch.py"}
    decoder = ["--decoder", "msgspec"] if kind == "raw-msgspec" else []
    return [
        PYTHON,
        str(ROOT / "bench/clients" / script[kind]),
        *decoder,
        "--url",
        servicenow["url"],
        "--username",
        servicenow["username"],
        "--password",
        servicenow["password"],
        "--since",
        since,
        "--page-size",
        str(PAGE_SIZE),
    ]


def closed_port_url() -> str:
    """A push URL nothing listens on: Flashduty 'down' while the outbox fills."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/event/push/alert/standard?integration_key=down"


# --- 1. backfill --------------------------------------------------------------------------


def backfill(bench: Bench, sizes: list[int]) -> dict[str, Any]:
    """Each client over an empty table and N incidents; fd-sync with a fresh ledger."""
    results: dict[str, Any] = {}
    for n in [0, *sizes]:
        log(f"backfill: seeding {n} incidents")
        with Simulator("servicenow", "--incidents", str(n), "--open-ratio", str(OPEN_RATIO)) as sn:
            hello = sn.hello
            since = hello["oldest"] if n else EMPTY_SINCE
            runs: dict[str, list[Run]] = {c: [] for c in CLIENTS}
            for attempt in range(bench.repeat):
                for client in CLIENTS:
                    runs[client].append(_backfill_once(bench, client, hello, since, n))
                log(
                    f"backfill N={n} run {attempt + 1}/{bench.repeat}: "
                    + ", ".join(
                        f"{c} {runs[c][-1].cpu:.2f}s cpu {runs[c][-1].rss_mb:.0f}MB"
                        for c in CLIENTS
                    )
                )
        results[str(n)] = {c: Summary.of(runs[c]).as_dict() for c in CLIENTS}
        results[str(n)]["open"] = hello["open"]
    return results


def backfill_closed(bench: Bench, n: int) -> dict[str, Any]:
    """Fetch -> decide -> ledger alone: N incidents, every one closed, so nothing is sent."""
    log(f"backfill, every incident closed: seeding {n} incidents")
    with Simulator("servicenow", "--incidents", str(n), "--open-ratio", "0") as sn:
        hello = sn.hello
        runs: dict[str, list[Run]] = {c: [] for c in CLOSED_CLIENTS}
        for attempt in range(bench.repeat):
            for client in CLOSED_CLIENTS:
                runs[client].append(_backfill_once(bench, client, hello, hello["oldest"], n))
            log(
                f"closed N={n} run {attempt + 1}/{bench.repeat}: "
                + ", ".join(f"{c} {runs[c][-1].cpu:.2f}s cpu" for c in CLOSED_CLIENTS)
            )
    return {str(n): {c: Summary.of(runs[c]).as_dict() for c in CLOSED_CLIENTS}}


def _backfill_once(bench: Bench, client: str, hello: dict[str, Any], since: str, n: int) -> Run:
    if client != "fd-sync":
        run = check(measure(baseline(client, hello, since)), client)
        rows = int(run.stdout.strip().splitlines()[-1].split(":")[1].strip(" }"))
        if rows != n:
            raise RuntimeError(f"{client} read {rows} rows, expected {n}")
        return run
    folder = bench.folder("backfill")
    config = write_config(
        folder / "fd-sync.toml",
        hello,
        bench.flashduty.hello["push_url_standard"],
        folder / "fd-sync.db",
    )
    bench.flashduty.command("reset")
    run = check(
        measure(fd_sync(config, "once", "--since", since.replace(" ", "T"), paced=False)),
        "fd-sync once --since",
    )
    if f"read {n} incident(s)" not in run.stdout:
        raise RuntimeError(f"fd-sync did not read {n} incidents: {run.stdout}")
    received = bench.flashduty.command("stats")["received"]
    if received != hello["open"]:
        raise RuntimeError(f"Flashduty received {received} events, expected {hello['open']}")
    return run


# --- 2. steady cycle ----------------------------------------------------------------------

CHANGES = {"update": 10, "resolve": 5, "reopen": 5}  # 20 changed incidents, 20 events


def steady(bench: Bench, ledger_sizes: list[int]) -> dict[str, Any]:
    """A cycle over a ledger of N incidents: with 20 changes, and with none.

    Every ledger size has its own simulator and ledger, and their cycles run
    interleaved, so machine load falls on all sizes alike.
    """
    with contextlib.ExitStack() as stack:
        setups = []
        for n in ledger_sizes:
            log(f"steady: backfilling a ledger of {n}")
            sn = stack.enter_context(
                Simulator("servicenow", "--incidents", str(n), "--open-ratio", str(OPEN_RATIO))
            )
            folder = bench.folder(f"steady-{n}")
            config = write_config(
                folder / "fd-sync.toml",
                sn.hello,
                bench.flashduty.hello["push_url_standard"],
                folder / "fd-sync.db",
            )
            since = sn.hello["oldest"].replace(" ", "T")
            check(measure(fd_sync(config, "once", "--since", since, paced=False)), "backfill")
            setups.append((n, sn, config))
        changed: dict[int, list[dict[str, Any]]] = {n: [] for n in ledger_sizes}
        unchanged: dict[int, list[dict[str, Any]]] = {n: [] for n in ledger_sizes}
        for _ in range(bench.repeat):
            for n, sn, config in setups:
                sn.command("change", **CHANGES)
                changed[n].append(_counted_cycle(bench, sn, config))
        for _ in range(bench.repeat):
            for n, sn, config in setups:
                unchanged[n].append(_counted_cycle(bench, sn, config))
    return {
        str(n): {
            "changed": _steady_summary(changed[n]),
            "unchanged": _steady_summary(unchanged[n]),
        }
        for n in ledger_sizes
    }


def _counted_cycle(bench: Bench, sn: Simulator, config: Path) -> dict[str, Any]:
    sn_before = sn.command("stats")["table_requests"]
    fd_before = bench.flashduty.command("stats")["requests"]
    run = check(measure(fd_sync(config, "once")), "fd-sync once")
    return {
        "run": run,
        "cycle_seconds": _cycle_seconds(run.stderr),
        "servicenow_requests": sn.command("stats")["table_requests"] - sn_before,
        "flashduty_requests": bench.flashduty.command("stats")["requests"] - fd_before,
    }


def _cycle_seconds(log_lines: str) -> float:
    """The cycle's own duration, from its ``cycle_finished`` log line (imports excluded)."""
    for line in reversed(log_lines.splitlines()):
        if '"cycle_finished"' in line:
            return float(json.loads(line)["seconds"])
    raise RuntimeError("fd-sync logged no cycle_finished line")


def _steady_summary(cycles: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **Summary.of([c["run"] for c in cycles]).as_dict(),
        "cycle_seconds": statistics.median(c["cycle_seconds"] for c in cycles),
        "servicenow_requests": max(c["servicenow_requests"] for c in cycles),
        "flashduty_requests": max(c["flashduty_requests"] for c in cycles),
    }


# --- 3. delivery --------------------------------------------------------------------------

DELIVERY_CREATES = 4000
DELIVERY_UPDATES = 1000  # of the same incidents: 1,000 create-then-update pairs to keep in order


def delivery(bench: Bench) -> dict[str, Any]:
    """Drain 5,000 pending events (4,000 creates, 1,000 updates behind them) at full speed."""
    log("delivery: filling the outbox while Flashduty is down")
    folder = bench.folder("delivery")
    database = folder / "fd-sync.db"
    with Simulator("servicenow", "--incidents", str(DELIVERY_CREATES), "--open-ratio", "1.0") as sn:
        down = write_config(
            folder / "down.toml",
            sn.hello,
            closed_port_url(),
            database,
            flashduty={"max_attempts": 1, "timeout_seconds": 2},
        )
        up = write_config(
            folder / "up.toml", sn.hello, bench.flashduty.hello["push_url_standard"], database
        )
        since = sn.hello["oldest"].replace(" ", "T")
        _expect_tempfail(measure(fd_sync(down, "once", "--since", since)))
        sn.command("change", update=DELIVERY_UPDATES)
        _expect_tempfail(measure(fd_sync(down, "once")))
        snapshot = folder / "pending.db"
        shutil.copyfile(database, snapshot)
        rates, runs, orders = [], [], []
        for attempt in range(bench.repeat):
            shutil.copyfile(snapshot, database)
            for suffix in ("-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            bench.flashduty.command("reset")
            run = check(measure(fd_sync(up, "once", paced=False)), "fd-sync once (delivery)")
            stats = bench.flashduty.command("stats")
            total = DELIVERY_CREATES + DELIVERY_UPDATES
            if stats["received"] != total:
                raise RuntimeError(f"Flashduty received {stats['received']} of {total} events")
            rate = (total - 1) / (stats["last_at"] - stats["first_at"])
            rates.append(rate)
            runs.append(run)
            orders.append(
                stats["sequences"]
                == {
                    "create": DELIVERY_CREATES - DELIVERY_UPDATES,
                    "create,update": DELIVERY_UPDATES,
                }
            )
            log(f"delivery run {attempt + 1}/{bench.repeat}: {rate:.0f} events/s")
    return {
        "events": DELIVERY_CREATES + DELIVERY_UPDATES,
        "events_per_second": statistics.median(rates),
        "events_per_second_runs": [round(r, 1) for r in rates],
        "order_kept": all(orders),
        "process": Summary.of(runs).as_dict(),
    }


def _expect_tempfail(run: Run) -> None:
    if run.code != 75:  # Flashduty unreachable: events stay pending
        raise RuntimeError(f"expected exit 75 with Flashduty down, got {run.code}: {run.stderr}")


# --- 4. freshness -------------------------------------------------------------------------

FRESHNESS_INTERVAL = 10
FRESHNESS_CHANGES = 50
STRIDE = 2.3  # seconds between changes


def daemon_available() -> bool:
    """Whether this checkout has ``fd-sync run`` (the daemon lands separately)."""
    done = measure([PYTHON, "-m", "fd_sync", "run", "--help"])
    return done.code == 0


def freshness(
    bench: Bench, *, changes: int = FRESHNESS_CHANGES, interval: int = FRESHNESS_INTERVAL
) -> dict[str, Any]:
    """Change incidents under a running daemon; time from each change to its event's arrival.

    One incident changes every ``STRIDE`` seconds, a step that does not divide
    the poll interval, so the changes sample every phase of the poll cycle
    instead of lining up with it; each is a different incident.
    """
    folder = bench.folder("freshness")
    with Simulator("servicenow", "--incidents", "1000", "--open-ratio", "0.2") as sn:
        config = write_config(
            folder / "fd-sync.toml",
            sn.hello,
            bench.flashduty.hello["push_url_standard"],
            folder / "fd-sync.db",
            sync={"poll_interval_seconds": interval},
        )
        since = sn.hello["oldest"].replace(" ", "T")
        check(measure(fd_sync(config, "once", "--since", since)), "backfill")
        daemon = subprocess.Popen(
            fd_sync(config, "run"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env(),
            cwd=ROOT,
        )
        made: list[tuple[str, float]] = []
        try:
            time.sleep(interval / 2)
            start = time.monotonic()
            for i in range(changes):
                time.sleep(max(0.0, start + i * STRIDE - time.monotonic()))
                change = sn.command("change", update=1)
                made.append((change["sys_ids"][0], change["at"]))
            deadline = time.monotonic() + 3 * interval + 5
            arrivals: dict[str, float] = {}
            while len(arrivals) < len(made) and time.monotonic() < deadline:
                time.sleep(0.5)
                for key, at in made:
                    if key not in arrivals:
                        found = bench.flashduty.command("arrivals", keys=[key], after=at)
                        arrivals.update(found["arrivals"])
        finally:
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    delays = sorted(arrivals.get(key, math.inf) - at for key, at in made)
    log(f"freshness: median {statistics.median(delays):.2f} s, max {delays[-1]:.2f} s")
    return {
        "interval_seconds": interval,
        "changes": changes,
        "arrived": sum(1 for d in delays if d != math.inf),
        "median_seconds": statistics.median(delays),
        "p95_seconds": delays[math.ceil(0.95 * len(delays)) - 1],
        "max_seconds": delays[-1],
    }


Scenario = Callable[..., dict[str, Any]]
