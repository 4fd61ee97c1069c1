"""The processes a ledger knows of: named records instead of dictionaries.

A process is named ``host:pid`` everywhere (the daemon's record, the leader's, a
standby's check-in, the session name PostgreSQL shows): :class:`ProcessId` is the one
place that spells it. Records are stored as JSON in the state table; a record written by
an older fd-sync (a missing field) reads with that field empty rather than failing.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

Record = TypeVar("Record")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int

    @classmethod
    def current(cls) -> ProcessId:
        return cls(socket.gethostname(), os.getpid())

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"


def _from_json(cls: type[Record], data: Any) -> Record | None:
    if not isinstance(data, dict):
        return None
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ProcessRecord:
    """A record of one fd-sync process on a shared ledger."""

    host: str = ""
    pid: int = 0
    since: str = ""

    @property
    def process(self) -> ProcessId:
        return ProcessId(self.host, self.pid)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls: type[Record], data: Any) -> Record | None:
        return _from_json(cls, data)


@dataclass(frozen=True)
class LeaderRecord(ProcessRecord):
    """Who leads a shared ledger, since when; ``stopped_at`` once it stepped down cleanly."""

    stopped_at: str | None = None


@dataclass(frozen=True)
class StandbyRecord(ProcessRecord):
    """A standby's check-in: since when it stands by, and when it last said so."""

    seen_at: str = ""


@dataclass(frozen=True)
class FailoverRecord:
    """The last takeover from a leader that died leading."""

    at: str = ""
    from_: str = ""  # the dead leader, host:pid
    to: str = ""  # the new one, host:pid
    leader_since: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "from": self.from_, "to": self.to, "leader_since": self.leader_since}

    @classmethod
    def from_json(cls, data: Any) -> FailoverRecord | None:
        if not isinstance(data, dict):
            return None
        return cls(
            str(data.get("at") or ""),
            str(data.get("from") or ""),
            str(data.get("to") or ""),
            data.get("leader_since"),
        )


@dataclass(frozen=True)
class DaemonRecord:
    """What the daemon last said of itself, for `fd-sync status`. ``boot_id`` and
    ``start_ticks`` tell its process apart from a later one reusing the pid."""

    pid: int | None = None
    running: bool = False
    poll_interval_seconds: int = 0
    status: str = ""
    updated_at: str = ""
    host: str | None = None  # on a shared ledger: the pid alone names no process elsewhere
    role: str | None = None  # "leader" or "single"
    boot_id: str | None = None
    start_ticks: int | None = None
    fetch_paused_until: str | None = None
    fetch_paused_because: str | None = None

    @property
    def process(self) -> str:
        """``host:pid`` where the host is known, else the pid."""
        if self.host:
            return str(ProcessId(self.host, self.pid or 0))
        return str(self.pid)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> DaemonRecord | None:
        return _from_json(cls, data)
