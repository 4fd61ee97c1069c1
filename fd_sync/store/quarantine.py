"""Rows ServiceNow sent that cannot be synced, kept for the operator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fd_sync.store.db import Database
from fd_sync.store.times import iso


class Quarantine:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def keep(self, sys_id: str | None, reason: str, sample: str) -> None:
        """Keep a bad row; the same row re-read later is kept once."""
        self.db.execute(
            "INSERT INTO quarantine (sys_id, reason, sample, seen_at) SELECT ?, ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM quarantine WHERE sample = ?)",
            [sys_id, reason[:500], sample[:2000], iso(self.clock()), sample[:2000]],
            "write the quarantine",
        )

    def count(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM quarantine"))
