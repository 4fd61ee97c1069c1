"""The processes a ledger knows of: named records instead of dictionaries, and the Ledger's
steps that record who leads a shared ledger.

A process is named ``host:pid`` everywhere (the daemon's record, the leader's, a
standby's check-in, the session name PostgreSQL shows): :class:`ProcessId` is the one
place that spells it. Records are stored as JSON in the state table; a record written by
an older fd-sync (a missing field) reads with that field empty rather than failing.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fd_sync.store.state import LAST_FAILOVER, LEADER, STANDBY_PREFIX, State

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


class LeadershipSteps:
    """The Ledger's steps for high availability (PostgreSQL), mixed into it: each is one
    transaction, as every Ledger step."""

    state: State

    if TYPE_CHECKING:  # the Ledger's

        def transaction(self, doing: str = "") -> contextlib.AbstractContextManager[None]: ...

    def leader(self) -> LeaderRecord | None:
        return LeaderRecord.from_json(self.state.get_json(LEADER))

    def record_leader(self, me: LeaderRecord) -> tuple[LeaderRecord | None, FailoverRecord | None]:
        """Take the lead: this process's record, with the failover when the previous leader
        died leading (it left no ``stopped_at``); together, so `status` never shows a
        failover without its new leader. Returns (the previous leader, the failover)."""
        with self.transaction("record the new leader"):
            previous = self.leader()
            failover = None
            if previous is not None and previous.stopped_at is None:
                failover = FailoverRecord(
                    me.since, str(previous.process), str(me.process), previous.since or None
                )
                self.state.set_json(LAST_FAILOVER, failover.to_json())
            self.state.set_json(LEADER, me.to_json())
            self.state.set(STANDBY_PREFIX + str(me.process), None)
        return previous, failover

    def record_leader_stopped(self, me: ProcessId, at: str) -> None:
        """A clean stop of the leader: the next one counts no failover."""
        with self.transaction("record the leader's stop"):
            record = self.leader()
            if record is not None and record.process == me:
                self.state.set_json(LEADER, replace(record, stopped_at=at).to_json())

    def check_in(self, standby: StandbyRecord) -> None:
        with self.transaction("record a standby's check-in"):
            self.state.set_json(STANDBY_PREFIX + str(standby.process), standby.to_json())

    def check_out(self, me: ProcessId) -> None:
        with self.transaction("record a standby's stop"):
            self.state.set(STANDBY_PREFIX + str(me), None)
