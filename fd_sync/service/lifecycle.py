"""What the daemon says of itself and how it judges itself: its record for `fd-sync
status`, the refusal of a second daemon on one SQLite ledger, the back-off after refused
credentials, and what a reload may not change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fd_sync.config import Config
from fd_sync.core.location import LedgerLocation
from fd_sync.errors import ConfigError
from fd_sync.store.lock import process_identity, still_running
from fd_sync.store.records import DaemonRecord, ProcessId, now_iso
from fd_sync.store.state import DAEMON, State

AUTH_BACKOFF_CAP = 1800.0


@dataclass
class AuthBackoff:
    """ServiceNow refused our credentials: fetch again only after a doubling pause."""

    failures: int = 0
    until: float = 0.0  # monotonic
    reason: str = ""

    def record(self, now: float, interval: float, reason: str) -> float:
        self.failures += 1
        pause = min(AUTH_BACKOFF_CAP, interval * 2**self.failures)
        self.until = now + pause
        self.reason = reason
        return pause

    def paused_until(self, now: float) -> str:
        """When fetching resumes, in UTC, for the record."""
        resume = datetime.now(UTC) + timedelta(seconds=self.until - now)
        return resume.isoformat(timespec="seconds")

    def clear(self) -> None:
        self.failures, self.until, self.reason = 0, 0.0, ""


def restart_needed(old: Config, new: Config) -> str | None:
    """The setting a reload may not change (the ledger and what it mirrors), or None."""
    if new.sync.database != old.sync.database:
        return "[sync] database"
    if new.servicenow.table != old.servicenow.table:
        return "[servicenow] table"
    if new.servicenow.instance_url != old.servicenow.instance_url:
        return "[servicenow] instance_url"
    return None


def daemon_record(
    *, started: bool, interval: int, status: str, shared: bool, paused: tuple[str, str] | None
) -> DaemonRecord:
    identity = process_identity() if started else {"pid": None}
    return DaemonRecord(
        pid=identity.get("pid"),
        running=started,
        poll_interval_seconds=interval,
        status=status,
        updated_at=now_iso(),
        host=ProcessId.current().host if shared else None,  # the pid alone names none there
        role="leader" if shared else "single",
        boot_id=identity.get("boot_id"),
        start_ticks=identity.get("start_ticks"),
        fetch_paused_until=paused[0] if paused else None,
        fetch_paused_because=paused[1] if paused else None,
    )


def refuse_a_second_daemon(records: State, database: LedgerLocation) -> None:
    """Two daemons on one SQLite ledger take turns at its lock, each recording itself over
    the other: `status` would show one of them. SQLite has no standby; say so."""
    other = DaemonRecord.from_json(records.get_json(DAEMON))
    if other is None or not other.running or other.pid == process_identity()["pid"]:
        return
    if still_running(other.to_json()):
        raise ConfigError(
            f"{database}: fd-sync run (pid {other.process}) already uses this ledger, and a "
            "SQLite ledger has one daemon: stop it first, or share a PostgreSQL ledger "
            "between two hosts (README, High availability)"
        )
