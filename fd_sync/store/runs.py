"""Run history: one row per cycle or command, what `status` reports as the last run."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fd_sync.store.db import Database
from fd_sync.store.times import iso


@dataclass(frozen=True)
class LastRun:
    run_id: str
    command: str
    started_at: str
    finished_at: str | None
    outcome: str | None  # None while it runs (or when it died)
    exit_code: int | None
    message: str | None


class Runs:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def start(self, run_id: str, command: str) -> int:
        return self.db.insert(
            "INSERT INTO runs (run_id, command, started_at) VALUES (?, ?, ?)",
            [run_id, command, iso(self.clock())],
            "record the run",
        )

    def finish(
        self, row_id: int, *, outcome: str, exit_code: int, message: str, stats: dict[str, Any]
    ) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at = ?, outcome = ?, exit_code = ?, message = ?,"
            " stats = ? WHERE id = ?",
            [iso(self.clock()), outcome, exit_code, message[:1000], json.dumps(stats), row_id],
            "record the run",
        )

    def last(self) -> LastRun | None:
        row = self.db.one(
            "SELECT run_id, command, started_at, finished_at, outcome, exit_code, message "
            "FROM runs ORDER BY id DESC LIMIT 1"
        )
        return LastRun(*row) if row else None

    def last_success_at(self) -> str | None:
        finished: str | None = self.db.scalar(
            "SELECT finished_at FROM runs WHERE exit_code = 0 ORDER BY id DESC LIMIT 1"
        )
        return finished
