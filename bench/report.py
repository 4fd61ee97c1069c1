"""Judge the measurements against issues 6 and 14's targets; print the table, keep the JSON.

Every figure is shown with its target and whether it is met. Figures of
fd-sync are compared with baselines measured in the same invocation, so a
busy machine moves both sides of a ratio together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STARTUP_CPU_TARGET = 0.4  # seconds
MARGINAL_CPU_RATIO = 2.0  # x baseline A's (json) marginal CPU: the whole backfill
CLOSED_CPU_RATIO = 1.5  # x baseline A's marginal CPU: fetch -> decide -> ledger, all closed
DELIVERY_CPU_US = 150.0  # CPU per delivered event
WALL_RATIO = 1.25  # x baseline A's wall
RSS_TARGET_MB = 100.0
RSS_GROWTH = 0.20  # between the two backfill sizes
STEADY_REQUESTS = 2
STEADY_CPU_GROWTH = 0.20  # ledger of 100k vs 1k
DELIVERY_RATE = 500.0  # events per second


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    target: str
    met: bool | None  # None: shown for information

    def as_dict(self) -> dict[str, Any]:
        return {"figure": self.name, "value": self.value, "target": self.target, "met": self.met}


def _n(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def backfill_figures(backfill: dict[str, Any]) -> list[Figure]:
    empty = backfill["0"]
    sizes = sorted(int(n) for n in backfill if n != "0")
    out = [
        Figure(
            "start-up CPU (empty table)",
            f"fd-sync {_ms(empty['fd-sync']['cpu'])}; A {_ms(empty['raw']['cpu'])}, "
            f"PySNC {_ms(empty['pysnc']['cpu'])}",
            f"≤ {STARTUP_CPU_TARGET:g} s",
            empty["fd-sync"]["cpu"] <= STARTUP_CPU_TARGET,
        )
    ]
    for n in sizes:
        at = backfill[str(n)]
        clients = [c for c in ("raw", "raw-msgspec", "pysnc", "fd-sync") if c in at]
        marginal = {c: at[c]["cpu"] - empty[c]["cpu"] for c in clients}
        per = {c: marginal[c] / n * 1e6 for c in marginal}
        floor2 = (
            f", A with msgspec {marginal['raw-msgspec']:.2f} s ({per['raw-msgspec']:.1f})"
            if "raw-msgspec" in marginal
            else ""
        )
        out.append(
            Figure(
                f"backfill {_n(n)} (2% open): marginal CPU",
                f"fd-sync {marginal['fd-sync']:.2f} s ({per['fd-sync']:.1f} µs/inc, "
                f"{marginal['fd-sync'] / marginal['raw']:.1f} × A); "
                f"A {marginal['raw']:.2f} s ({per['raw']:.1f}){floor2}, "
                f"PySNC {marginal['pysnc']:.2f} s ({per['pysnc']:.1f})",
                f"≤ {MARGINAL_CPU_RATIO:g} × A = {MARGINAL_CPU_RATIO * marginal['raw']:.2f} s",
                marginal["fd-sync"] <= MARGINAL_CPU_RATIO * marginal["raw"],
            )
        )
        out.append(
            Figure(
                f"backfill {_n(n)}: wall",
                f"fd-sync {_ms(at['fd-sync']['wall'])}; A {_ms(at['raw']['wall'])}, "
                f"PySNC {_ms(at['pysnc']['wall'])}",
                f"≤ {WALL_RATIO:g} × A = {_ms(WALL_RATIO * at['raw']['wall'])}",
                at["fd-sync"]["wall"] <= WALL_RATIO * at["raw"]["wall"],
            )
        )
        out.append(
            Figure(
                f"backfill {_n(n)}: CPU vs PySNC",
                f"fd-sync {_ms(at['fd-sync']['cpu'])}; PySNC {_ms(at['pysnc']['cpu'])}",
                "below PySNC",
                at["fd-sync"]["cpu"] < at["pysnc"]["cpu"],
            )
        )
        out.append(
            Figure(
                f"backfill {_n(n)}: peak RSS",
                f"fd-sync {at['fd-sync']['rss_mb']:.0f} MB; A {at['raw']['rss_mb']:.0f} MB, "
                f"PySNC {at['pysnc']['rss_mb']:.0f} MB",
                f"≤ {RSS_TARGET_MB:g} MB and below PySNC",
                at["fd-sync"]["rss_mb"] <= RSS_TARGET_MB
                and at["fd-sync"]["rss_mb"] < at["pysnc"]["rss_mb"],
            )
        )
    if len(sizes) >= 2:
        small, large = backfill[str(sizes[0])], backfill[str(sizes[-1])]
        growth = large["fd-sync"]["rss_mb"] / small["fd-sync"]["rss_mb"] - 1
        out.append(
            Figure(
                f"peak RSS growth {_n(sizes[0])} → {_n(sizes[-1])}",
                f"fd-sync {growth:+.0%}; PySNC "
                f"{large['pysnc']['rss_mb'] / small['pysnc']['rss_mb'] - 1:+.0%}",
                f"≤ {RSS_GROWTH:.0%}",
                growth <= RSS_GROWTH,
            )
        )
    return out


def closed_figures(closed: dict[str, Any], empty: dict[str, Any]) -> list[Figure]:
    """Fetch -> decide -> ledger with nothing to send: every incident closed."""
    out = []
    for n_text, at in closed.items():
        n = int(n_text)
        marginal = {c: at[c]["cpu"] - empty[c]["cpu"] for c in at}
        ratio = marginal["fd-sync"] / marginal["raw"]
        out.append(
            Figure(
                f"backfill {_n(n)}, every incident closed: marginal CPU",
                f"fd-sync {marginal['fd-sync']:.2f} s ({marginal['fd-sync'] / n * 1e6:.1f} "
                f"µs/inc, {ratio:.2f} × A); A {marginal['raw']:.2f} s, A with msgspec "
                f"{marginal['raw-msgspec']:.2f} s "
                f"({marginal['fd-sync'] / marginal['raw-msgspec']:.2f} × it)",
                f"≤ {CLOSED_CPU_RATIO:g} × A = {CLOSED_CPU_RATIO * marginal['raw']:.2f} s",
                ratio <= CLOSED_CPU_RATIO,
            )
        )
    return out


def delivery_cpu_figure(delivery: dict[str, Any], startup_cpu: float) -> Figure:
    per = (delivery["process"]["cpu"] - startup_cpu) / delivery["events"] * 1e6
    return Figure(
        f"delivery: CPU per event ({delivery['events']} pending)",
        f"{per:.0f} µs (process CPU {delivery['process']['cpu']:.2f} s less start-up "
        f"{startup_cpu:.2f} s)",
        f"≤ {DELIVERY_CPU_US:g} µs",
        per <= DELIVERY_CPU_US,
    )


def steady_figures(steady: dict[str, Any]) -> list[Figure]:
    sizes = sorted(int(n) for n in steady)
    large = steady[str(sizes[-1])]
    out = [
        Figure(
            f"steady {_n(sizes[-1])}: ServiceNow requests, nothing changed",
            str(large["unchanged"]["servicenow_requests"]),
            f"≤ {STEADY_REQUESTS}",
            large["unchanged"]["servicenow_requests"] <= STEADY_REQUESTS,
        ),
        Figure(
            f"steady {_n(sizes[-1])}: requests, 20 changed",
            f"ServiceNow {large['changed']['servicenow_requests']}, "
            f"Flashduty {large['changed']['flashduty_requests']}",
            f"ServiceNow ≤ {STEADY_REQUESTS}, Flashduty = 20 (one per event)",
            large["changed"]["servicenow_requests"] <= STEADY_REQUESTS
            and large["changed"]["flashduty_requests"] == 20,
        ),
    ]
    if len(sizes) >= 2:
        small = steady[str(sizes[0])]
        ratio = large["changed"]["cpu"] / small["changed"]["cpu"]
        out.append(
            Figure(
                f"steady: cycle CPU, ledger {_n(sizes[-1])} vs {_n(sizes[0])}",
                f"{_ms(large['changed']['cpu'])} vs {_ms(small['changed']['cpu'])} "
                f"({ratio - 1:+.0%}); in-cycle wall "
                f"{_ms(large['changed']['cycle_seconds'])} vs "
                f"{_ms(small['changed']['cycle_seconds'])}",
                f"≤ {1 + STEADY_CPU_GROWTH:g} × the {_n(sizes[0])} cycle",
                ratio <= 1 + STEADY_CPU_GROWTH,
            )
        )
    return out


def delivery_figures(delivery: dict[str, Any]) -> list[Figure]:
    return [
        Figure(
            f"delivery: {delivery['events']} pending events",
            f"{delivery['events_per_second']:.0f} events/s",
            f"≥ {DELIVERY_RATE:g}/s",
            delivery["events_per_second"] >= DELIVERY_RATE,
        ),
        Figure(
            "delivery: per-incident order",
            "kept" if delivery["order_kept"] else "BROKEN",
            "create before update, every incident",
            delivery["order_kept"],
        ),
    ]


def freshness_figures(freshness: dict[str, Any]) -> list[Figure]:
    if "skipped" in freshness:
        return [
            Figure("freshness (change → event)", freshness["skipped"], "p95 ≤ interval + 1 s", None)
        ]
    limit = freshness["interval_seconds"] + 1
    return [
        Figure(
            f"freshness, poll every {freshness['interval_seconds']} s",
            f"median {freshness['median_seconds']:.2f} s, p95 {freshness['p95_seconds']:.2f} s "
            f"({freshness['arrived']}/{freshness['changes']} arrived)",
            f"p95 ≤ {limit} s",
            freshness["p95_seconds"] <= limit,
        )
    ]


def figures(results: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    if "backfill" in results:
        out += backfill_figures(results["backfill"])
    if "closed" in results and "backfill" in results:
        out += closed_figures(results["closed"], results["backfill"]["0"])
    if "steady" in results:
        out += steady_figures(results["steady"])
    if "delivery" in results:
        out += delivery_figures(results["delivery"])
        if "backfill" in results:
            startup = results["backfill"]["0"]["fd-sync"]["cpu"]
            out.append(delivery_cpu_figure(results["delivery"], startup))
    if "freshness" in results:
        out += freshness_figures(results["freshness"])
    return out


def table(rows: list[Figure]) -> str:
    """A Markdown table, readable on a terminal and pasteable into a README."""
    mark = {True: "met", False: "**missed**", None: "—"}
    lines = ["| figure | value | target | |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.value} | {r.target} | {mark[r.met]} |" for r in rows]
    return "\n".join(lines)


def clients_table(backfill: dict[str, Any]) -> str:
    """Every client's medians per table size: what the ratios above are made of."""
    names = {
        "raw": "A: requests loop (json)",
        "raw-msgspec": "A: requests loop (msgspec)",
        "pysnc": "B: PySNC",
        "fd-sync": "fd-sync once --since",
    }
    lines = [
        "| incidents | client | wall | CPU | peak RSS |",
        "|---:|---|---:|---:|---:|",
    ]
    for n in sorted(backfill, key=int):
        for client, label in names.items():
            if client not in backfill[n]:
                continue
            s = backfill[n][client]
            lines.append(
                f"| {int(n):,} | {label} | {s['wall']:.2f} s | {s['cpu']:.2f} s "
                f"| {s['rss_mb']:.0f} MB |"
            )
    return "\n".join(lines)
