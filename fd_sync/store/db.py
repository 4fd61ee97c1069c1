"""The ledger's connection, as the table modules see it: statements in, rows out.

The table modules hand a :class:`Database` SQL (``?`` placeholders, the subset SQLite
and PostgreSQL share) and parameters, and get tuples back; everything the two engines
do differently — placeholders, ``RETURNING``, DDL types, the migration log, the run
lock, error messages — lives in :mod:`fd_sync.store.backends`, one module per engine.
Every engine failure leaves as a :class:`~fd_sync.errors.StorageError` naming the
ledger and the fix: temporary (75) or needing the operator (78). Never a silent reset.

A Database belongs to one thread at a time (a sqlite3 rule, and one PostgreSQL session
cannot interleave two transactions).
"""

from __future__ import annotations

import abc
import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from fd_sync.core.location import LedgerLocation
from fd_sync.store.migrations import known_migrations, refuse_newer_schema

CHUNK = 500  # values per IN (...) query, far below either engine's parameter limit
Row = tuple[Any, ...]
JSON = json.JSONEncoder(ensure_ascii=False)  # for JSON columns: built once, not per dumps


class Database(abc.ABC):
    """One ledger connection. ``where`` names it in messages (a path, or a URL without
    its password)."""

    backend: ClassVar[str]

    def __init__(self, location: LedgerLocation, *, readonly: bool) -> None:
        self.location = location
        self.readonly = readonly
        self.where = str(location)
        self._columns: dict[str, frozenset[str]] = {}

    # --- statements: each backend ---------------------------------------------------------

    @abc.abstractmethod
    def rows(
        self, sql: str, params: Sequence[Any] = (), doing: str = "read the ledger"
    ) -> list[Row]: ...

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = (), doing: str = "write the ledger") -> int:
        """Run one change (committed at once outside a transaction); how many rows changed."""

    @abc.abstractmethod
    def insert(self, sql: str, params: Sequence[Any] = (), doing: str = "write the ledger") -> int:
        """Run one INSERT into a table with an ``id`` column; returns the new row's id."""

    @abc.abstractmethod
    def executemany(
        self, sql: str, rows: Iterable[Sequence[Any]], doing: str = "write the ledger"
    ) -> None: ...

    @abc.abstractmethod
    def transaction(
        self, doing: str = "write the ledger"
    ) -> contextlib.AbstractContextManager[None]:
        """All or nothing: a page, an outbox transition, a run record (nests)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def table_columns(self, table: str) -> frozenset[str]:
        """The table's columns; empty when there is no such table."""

    # --- schema: each backend -------------------------------------------------------------

    @abc.abstractmethod
    def applied_migrations(self) -> list[str]: ...

    @abc.abstractmethod
    def migrate(self) -> None:
        """Apply the migrations this ledger lacks (the caller holds the run lock)."""

    @abc.abstractmethod
    def run_lock(self, wait_seconds: float) -> contextlib.AbstractContextManager[None]:
        """Be the one process that changes incidents and the outbox, or raise LockBusy
        after ``wait_seconds``. On PostgreSQL the lock belongs to this very session."""

    def after_copy(self, table: str) -> None:
        """Rows went in with their ids: the engine's next id must follow them (SQLite's
        AUTOINCREMENT follows by itself)."""
        return

    def lock_holder(self, purpose: str) -> str | None:
        """Who holds the ``run`` or ``leader`` lock, where the engine can tell."""
        return None

    # --- shared -----------------------------------------------------------------------------

    def one(
        self, sql: str, params: Sequence[Any] = (), doing: str = "read the ledger"
    ) -> Row | None:
        found = self.rows(sql, params, doing)
        return found[0] if found else None

    def scalar(self, sql: str, params: Sequence[Any] = (), doing: str = "read the ledger") -> Any:
        row = self.one(sql, params, doing)
        return row[0] if row else None

    def rows_in(
        self, sql: str, values: Iterable[str], doing: str = "read the ledger"
    ) -> Iterator[Row]:
        """Run ``sql`` (with one ``IN ({marks})``) over ``values`` in chunks, each value once."""
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            yield from self.rows(sql.format(marks=",".join("?" * len(chunk))), chunk, doing)

    def has_column(self, table: str, column: str) -> bool:
        """Whether a migration is applied: a read-only open of an older ledger is not
        migrated. Asked once per table: the schema does not change after the open."""
        if table not in self._columns:
            self._columns[table] = self.table_columns(table)
        return column in self._columns[table]

    @property
    def has_writeback_tables(self) -> bool:
        """Whether m003 (the write-back's tables) is applied."""
        return self.has_column("incidents", "held")

    @property
    def has_schema(self) -> bool:
        return self.has_column("outbox", "id")

    def check_schema(self) -> None:
        """Refuse a ledger from a newer fd-sync, whatever this open means to do."""
        refuse_newer_schema(self.applied_migrations(), self.where)

    def pending_migrations(self) -> list[str]:
        applied = set(self.applied_migrations())
        return [name for name in known_migrations() if name not in applied]

    def forget_schema(self) -> None:
        """Columns are cached per open; a migration changes them."""
        self._columns.clear()


def where_equal(**columns: Any) -> tuple[str, list[Any]]:
    """``WHERE a = ? AND b = ?`` for the columns given a value (None: any), and the values."""
    chosen = [(name, value) for name, value in columns.items() if value]
    if not chosen:
        return "", []
    return "WHERE " + " AND ".join(f"{name} = ?" for name, _ in chosen), [v for _, v in chosen]
