"""Progress of long work on a terminal: a backfill (``once --since``) or ``tickets
backfill`` says how far it is, on stderr, a line rewritten in place at most twice a
second. Off when stderr is not a terminal (cron, systemd, pipes) or with ``--quiet``; the
log lines are unchanged either way.

The estimate comes from the watermark's position between ``--since`` and ServiceNow's
clock: fd-sync asks with ``sysparm_no_count=true`` (a count costs the instance a full
query), so no ``X-Total-Count`` is there to count rows against.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import IO

from fd_sync.sync.report import CycleReport

EVERY_SECONDS = 0.5


def wanted(quiet: bool, stream: IO[str] = sys.stderr) -> bool:
    return not quiet and stream.isatty()


class BackfillProgress:
    """Called after each page and each event (the cycle's pulse); reads the live report."""

    def __init__(
        self,
        report: Callable[[], CycleReport | None],
        *,
        since: datetime,
        stream: IO[str] = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.report = report
        self.since = since
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.shown = 0.0
        self.pulses_after_fetch = 0

    def __call__(self) -> None:
        now = self.clock()
        if now - self.shown < EVERY_SECONDS:
            return
        self.shown = now
        report = self.report()
        if report is None:
            return
        self.stream.write("\r" + self.line(report, now) + "\033[K")
        self.stream.flush()

    def line(self, report: CycleReport, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        queued = sum(report.events[k] for k in ("create", "update", "resolve"))
        text = (
            f"backfill: {report.pages} page(s), {report.fetched:,} incident(s) read, "
            f"{queued:,} event(s) queued, {report.fetched / elapsed:,.0f} incidents/s"
        )
        watermark = report.watermark_seen
        if watermark:
            text += f", at {watermark} UTC"
            share = _share(self.since, watermark)
            if share is not None:
                text += f" ({share:.0%} of the range)"
        return text

    def done(self) -> None:
        self.stream.write("\r\033[K")
        self.stream.flush()


def _share(since: datetime, watermark: str) -> float | None:
    try:
        at = datetime.fromisoformat(watermark).replace(tzinfo=since.tzinfo)
    except ValueError:
        return None
    total = (datetime.now(since.tzinfo) - since).total_seconds()
    return min(1.0, max(0.0, (at - since).total_seconds() / total)) if total > 0 else None
