"""One durable queue: items owed to a remote, each attempted, delivered, refused or given up.

Every direction fd-sync writes in has one: events owed to Flashduty (:mod:`.outbox`),
writes owed to ServiceNow incidents (:mod:`.writeback`). They share this lifecycle,
written once here; each queue implements two primitives, the columns it reads and the
row type it decodes them into, and may narrow what a retry or a drop takes along.

Lifecycle: ``pending`` -> attempted (``attempts`` + 1) -> ``delivered``, ``dead`` (refused
for good, kept until an operator acts) or ``pending`` again (a temporary failure);
``pending`` -> ``cancelled`` (no longer true); ``pending``/``dead`` -> ``dropped`` (an
operator gave up); ``dead`` -> ``pending`` (an operator's retry). Finished items
(delivered, cancelled, dropped) are forgotten after ``[sync] history_days`` (``explain``
tells an incident's story from them), in bounded batches; dead ones stay.

Transactions: a queue never commits. Every method runs inside a step of the
:class:`~fd_sync.store.ledger.Ledger`, which names the step and states its crash argument
(the attempt is committed before the send, the delivered mark after the answer: a crash
between the two repeats that one item, once, and loses nothing).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from fd_sync.store.db import Database, Row, where_equal
from fd_sync.store.times import iso

HISTORY = timedelta(days=30)  # finished items kept for `explain`: [sync] history_days
PURGE_BATCH = 1000  # rows one purge statement deletes: a long history never locks for long


class QueueStatus(StrEnum):
    PENDING = "pending"  # owed to the remote (maybe attempted already)
    DELIVERED = "delivered"  # the remote acknowledged it
    DEAD = "dead"  # refused for good: kept, with the remote's words, until an operator acts
    CANCELLED = "cancelled"  # never attempted, and no longer true
    DROPPED = "dropped"  # an operator gave up on it (fd-sync outbox drop)


PENDING, DELIVERED, DEAD = QueueStatus.PENDING, QueueStatus.DELIVERED, QueueStatus.DEAD
CANCELLED, DROPPED = QueueStatus.CANCELLED, QueueStatus.DROPPED
FINISHED = (DELIVERED, CANCELLED, DROPPED)  # forgotten after RETENTION
ACTIONABLE = (PENDING, DEAD)  # what an operator may drop


class QueuedItem(Protocol):
    """What every queue's row type has: enough for `outbox list` and the lifecycle."""

    @property
    def id(self) -> int: ...
    @property
    def sys_id(self) -> str: ...
    @property
    def number(self) -> str: ...
    @property
    def status(self) -> QueueStatus: ...
    @property
    def attempts(self) -> int: ...
    @property
    def created_at(self) -> str: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def label(self) -> str: ...


Item = TypeVar("Item", bound=QueuedItem)


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed, as the remote said it."""

    http_status: int | None
    message: str
    error_code: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class QueueCounts:
    pending: int = 0
    blocked: int = 0  # pending behind a dead item of the same incident
    dead: int = 0
    delivered: int = 0
    cancelled: int = 0


@dataclass(frozen=True)
class DeadReason:
    http_status: int | None
    error_code: str | None
    destination: str
    events: int
    message: str | None = None  # one of the group's messages, as the remote worded it


def statuses_sql(statuses: Iterable[QueueStatus]) -> str:
    return ", ".join(f"'{s.value}'" for s in statuses)


class DurableQueue(abc.ABC, Generic[Item]):
    """The shared lifecycle over one table with the common columns (``id``, ``sys_id``,
    ``number``, ``status``, ``attempts``, ``created_at``, ``last_attempt_at``,
    ``finished_at``, ``http_status``, ``error_message``, ``run_id``)."""

    table: ClassVar[str]
    label_prefix: ClassVar[str]  # how `outbox list` tells the queues apart: "", "w"
    direction: ClassVar[str]  # "flashduty" or "servicenow": where its items go
    failure_columns: ClassVar[tuple[str, ...]] = ()  # of error_code, request_id: those it has
    dead_holds_incident: ClassVar[bool] = False  # later items of the incident wait behind

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    # --- the two primitives each queue implements ------------------------------------------

    @property
    @abc.abstractmethod
    def columns(self) -> str:
        """The SELECT list :meth:`decode` reads."""

    @abc.abstractmethod
    def decode(self, row: Row) -> Item:
        """One row, as its named type."""

    # --- shared ----------------------------------------------------------------------------

    @property
    def present(self) -> bool:
        """Whether this ledger has the table (a read-only open of an older one may not)."""
        return self.db.has_column(self.table, "id")

    def _select(self, where: str, params: Sequence[Any], doing: str) -> list[Item]:
        if not self.present:
            return []
        rows = self.db.rows(f"SELECT {self.columns} FROM {self.table} {where}", params, doing)
        return [self.decode(row) for row in rows]

    def pending(
        self, *, after_id: int = 0, limit: int = 500, sys_id: str | None = None
    ) -> list[Item]:
        """Pending items in queue order; only one incident's with ``sys_id``."""
        only, params = ("AND sys_id = ? ", [sys_id]) if sys_id else ("", [])
        return self._select(
            f"WHERE status = '{PENDING}' AND id > ? {only}ORDER BY id LIMIT ?",
            [after_id, *params, limit],
            f"read the {self.table} queue",
        )

    def get(self, item_id: int) -> Item | None:
        found = self._select("WHERE id = ?", [item_id], f"read the {self.table} queue")
        return found[0] if found else None

    def items(
        self, *, status: QueueStatus | None = None, limit: int = 100, sys_id: str | None = None
    ) -> list[Item]:
        """Items of any status, newest first."""
        where, params = where_equal(status=status, sys_id=sys_id)
        return self._select(
            f"{where} ORDER BY id DESC LIMIT ?", [*params, limit], f"read the {self.table} queue"
        )

    def pending_incidents(self) -> set[str]:
        """The incidents with something pending in this queue."""
        sql = f"SELECT DISTINCT sys_id FROM {self.table} WHERE status = '{PENDING}'"
        return {row[0] for row in self.db.rows(sql, (), f"read the {self.table} queue")}

    def dead_incidents(self) -> set[str]:
        sql = f"SELECT DISTINCT sys_id FROM {self.table} WHERE status = '{DEAD}'"
        return {row[0] for row in self.db.rows(sql, (), f"read the {self.table} queue")}

    def mark_attempt(self, ids: Sequence[int]) -> None:
        self.db.executemany(
            f"UPDATE {self.table} SET attempts = attempts + 1, last_attempt_at = ? WHERE id = ?",
            [(iso(self.clock()), i) for i in ids],
        )

    def mark_delivered(
        self, ids: Sequence[int], *, http_status: int, request_id: str | None = None
    ) -> None:
        extra = ", request_id = ?, error_code = NULL" if self.failure_columns else ""
        now = iso(self.clock())
        self.db.executemany(
            f"UPDATE {self.table} SET status = '{DELIVERED}', finished_at = ?, http_status = ?,"
            f" error_message = NULL{extra} WHERE id = ?",
            [(now, http_status, *([request_id] if extra else []), i) for i in ids],
        )

    def mark_failed(self, ids: Sequence[int], *, dead: bool, failure: Failure) -> None:
        """Why the attempt failed; a dead item stays until an operator acts."""
        named = {"error_code": failure.error_code, "request_id": failure.request_id}
        extra = tuple(named[c] for c in self.failure_columns)
        sets = "".join(f", {column} = ?" for column in self.failure_columns)
        now = iso(self.clock()) if dead else None
        status = (DEAD if dead else PENDING).value
        self.db.executemany(
            f"UPDATE {self.table} SET status = ?, finished_at = ?, http_status = ?,"
            f" error_message = ?{sets} WHERE id = ?",
            [(status, now, failure.http_status, failure.message[:1000], *extra, i) for i in ids],
        )

    def cancel(self, item_id: int) -> None:
        """An item that no longer needs sending (an update a later resolve supersedes)."""
        self.db.execute(
            f"UPDATE {self.table} SET status = '{CANCELLED}', finished_at = ? WHERE id = ? "
            f"AND status = '{PENDING}'",
            [iso(self.clock()), item_id],
        )

    def retry_dead(self, item_id: int | None = None) -> tuple[int, int]:
        """Dead items back to pending, keeping their error until resent: (requeued, cancelled
        instead, see :meth:`_moot_before_retry`)."""
        where, params = ("AND id = ?", [item_id]) if item_id is not None else ("", [])
        cancelled = self._moot_before_retry(where, params)
        requeued = self.db.execute(
            f"UPDATE {self.table} SET status = '{PENDING}', finished_at = NULL "
            f"WHERE status = '{DEAD}' {where}",
            params,
        )
        return requeued, cancelled

    def _moot_before_retry(self, where: str, params: Sequence[Any]) -> int:
        """Dead items a retry would make wrong to send: cancelled first. None by default."""
        return 0

    def drop(self, item: Item) -> int:
        """Give up on one item (or, where :meth:`_drops_what_follows`, on it and the
        incident's later ones); returns how many were dropped."""
        if self._drops_what_follows(item):
            scope, params = "sys_id = ? AND id >= ?", [item.sys_id, item.id]
        else:
            scope, params = "id = ?", [item.id]
        return self.db.execute(
            f"UPDATE {self.table} SET status = '{DROPPED}', finished_at = ? WHERE {scope} "
            f"AND status IN ({statuses_sql(ACTIONABLE)})",
            [iso(self.clock()), *params],
        )

    def _drops_what_follows(self, item: Item) -> bool:
        return False

    def purge_finished(self, older_than: timedelta = HISTORY) -> int:
        """Forget at most PURGE_BATCH items that finished before ``older_than`` ago; dead
        ones stay. Returns how many went (PURGE_BATCH: there may be more)."""
        if not self.present:
            return 0
        return self.db.execute(
            f"DELETE FROM {self.table} WHERE id IN (SELECT id FROM {self.table} WHERE status"
            f" IN ({statuses_sql(FINISHED)}) AND finished_at < ? ORDER BY id LIMIT ?)",
            [iso(self.clock() - older_than), PURGE_BATCH],
        )

    def counts(self) -> QueueCounts:
        """What a cycle reports and `status` shows: cheap aggregate queries."""
        if not self.present:
            return QueueCounts()
        doing = f"read the {self.table} queue"
        by_status: dict[str, int] = dict(
            self.db.rows(f"SELECT status, COUNT(*) FROM {self.table} GROUP BY status", (), doing)
        )
        blocked = 0
        if self.dead_holds_incident:
            blocked = int(
                self.db.scalar(
                    f"SELECT COUNT(*) FROM {self.table} WHERE status = '{PENDING}' AND sys_id IN "
                    f"(SELECT sys_id FROM {self.table} WHERE status = '{DEAD}')",
                    (),
                    doing,
                )
            )
        return QueueCounts(
            pending=by_status.get(PENDING, 0),
            blocked=blocked,
            dead=by_status.get(DEAD, 0),
            delivered=by_status.get(DELIVERED, 0),
            cancelled=by_status.get(CANCELLED, 0),
        )

    def oldest_dead(self) -> Item | None:
        found = self._select(
            f"WHERE status = '{DEAD}' ORDER BY id LIMIT 1", (), f"read the {self.table} queue"
        )
        return found[0] if found else None
