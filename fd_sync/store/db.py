"""The ledger's connection: open, migrate, translate SQLite's errors, run statements.

This is the one module that talks to SQLite (through sqlite-utils); the table
modules hand it SQL and parameters and get rows back, so a second backend
replaces this module, not the tables' callers. Every SQLite failure leaves as
a :class:`~fd_sync.errors.StorageError` that names the file and the fix: a
full disk or a lock is temporary (75), a corrupt file or a schema from a newer
fd-sync needs the operator (78). The ledger is never reset silently.

A :class:`Database` belongs to the thread that opened it (a sqlite3 rule).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database as SqliteUtilsDatabase

from fd_sync.errors import StorageError, StorageUnavailable, StorageUnusable
from fd_sync.store.migrations import migrations, refuse_newer_schema

MEMORY = ":memory:"
CHUNK = 500  # values per IN (...) query, far below SQLite's variable limit
Row = tuple[Any, ...]


class Database:
    """One SQLite ledger file in WAL mode, migrated on a writable open."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._columns: dict[tuple[str, str], bool] = {}
        with self.errors("open"):
            self._db = self._connect()
            if not readonly:
                self._prepare()
            else:
                self._check_readable()
        self._columns.clear()  # only what the schema is after the open counts

    @property
    def in_memory(self) -> bool:
        return str(self.path) == MEMORY

    def _connect(self) -> SqliteUtilsDatabase:
        if self.in_memory:
            return SqliteUtilsDatabase(memory=True, execute_plugins=False)
        if self.readonly:
            if not self.path.exists():
                raise StorageUnavailable(f"{self.path}: no ledger yet (fd-sync once creates it)")
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        else:
            _create_private(self.path)
            conn = sqlite3.connect(self.path, timeout=5)
        return SqliteUtilsDatabase(conn, execute_plugins=False)

    def _prepare(self) -> None:
        if self.in_memory:
            migrations.apply(self._db)
            return
        with self._db.ensure_autocommit_on():
            mode = self._db.execute("PRAGMA journal_mode=wal").fetchone()[0]
            if mode != "wal":
                raise StorageUnusable(
                    f"{self.path}: cannot switch to WAL journaling (got {mode}); "
                    "put the ledger on a local file system"
                )
            # NORMAL is durable against process crashes in WAL mode; only a power
            # loss can drop the last commits, which the next scan re-decides.
            self._db.execute("PRAGMA synchronous=NORMAL")
        refuse_newer_schema(self._db, self.path)
        migrations.apply(self._db)

    def _check_readable(self) -> None:
        refuse_newer_schema(self._db, self.path)
        if not self._db["outbox"].exists():
            raise StorageUnusable(
                f"{self.path}: not an fd-sync ledger (no outbox table); check [sync] database"
            )

    def has_column(self, table: str, column: str) -> bool:
        """Whether a migration is applied: a read-only open of an older ledger is not migrated.
        Asked once per column: the schema does not change after the open migrated it."""
        key = (table, column)
        if key not in self._columns:
            self._columns[key] = column in self._db[table].columns_dict
        return self._columns[key]

    @property
    def two_way(self) -> bool:
        """Whether m003 (the write-back's tables) is applied: a read-only open of an older
        ledger is not migrated, and has none of them."""
        return self.has_column("incidents", "held")

    # --- statements -------------------------------------------------------------------

    def rows(
        self, sql: str, params: Sequence[Any] = (), doing: str = "read the ledger"
    ) -> list[Row]:
        with self.errors(doing):  # sqlite3 rows are tuples already
            return list(self._db.execute(sql, list(params)))

    def one(
        self, sql: str, params: Sequence[Any] = (), doing: str = "read the ledger"
    ) -> Row | None:
        with self.errors(doing):
            row: Row | None = self._db.execute(sql, list(params)).fetchone()
        return row

    def scalar(self, sql: str, params: Sequence[Any] = (), doing: str = "read the ledger") -> Any:
        row = self.one(sql, params, doing)
        return row[0] if row else None

    def execute(self, sql: str, params: Sequence[Any] = (), doing: str = "write the ledger") -> int:
        """Run one change (committed at once outside a transaction); returns how many rows
        it changed."""
        with self.errors(doing):
            return int(self._db.execute(sql, list(params)).rowcount)

    def insert(self, sql: str, params: Sequence[Any] = (), doing: str = "write the ledger") -> int:
        """Run one INSERT; returns the new row's id."""
        with self.errors(doing):
            return int(self._db.execute(sql, list(params)).lastrowid or 0)

    def executemany(
        self, sql: str, rows: Iterable[Sequence[Any]], doing: str = "write the ledger"
    ) -> None:
        with self.errors(doing), self._db.atomic():
            self._db.conn.executemany(sql, rows)

    def rows_in(
        self, sql: str, values: Iterable[str], doing: str = "read the ledger"
    ) -> Iterator[Row]:
        """Run ``sql`` (with one ``IN ({marks})``) over ``values`` in chunks, each value once."""
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            yield from self.rows(sql.format(marks=",".join("?" * len(chunk))), chunk, doing)

    @contextlib.contextmanager
    def transaction(self, doing: str = "write the ledger") -> Iterator[None]:
        """All or nothing: a page, an outbox transition, a run record."""
        with self.errors(doing), self._db.atomic():
            yield

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    # --- errors -----------------------------------------------------------------------

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Translate SQLite's exceptions into one-line, actionable StorageErrors."""
        try:
            yield
        except StorageError:
            raise
        except sqlite3.DatabaseError as exc:
            raise storage_error(self.path, exc, doing) from None
        except PermissionError as exc:
            raise StorageUnusable(
                f"{self.path}: {exc.strerror} while trying to {doing}; "
                "the fd-sync user needs write access to the file and its folder"
            ) from None


def where_equal(**columns: Any) -> tuple[str, list[Any]]:
    """``WHERE a = ? AND b = ?`` for the columns given a value (None: any), and the values."""
    chosen = [(name, value) for name, value in columns.items() if value]
    if not chosen:
        return "", []
    return "WHERE " + " AND ".join(f"{name} = ?" for name, _ in chosen), [v for _, v in chosen]


def _create_private(path: Path) -> None:
    """The ledger holds incident texts: a new folder is 0700 and a new file 0600 (SQLite
    gives its -wal and -shm files the database file's mode). Existing ones are left as
    the operator made them."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageUnusable(
            f"{path.parent}: cannot create the ledger folder ({exc.strerror}); "
            "create it for the fd-sync user or set [sync] database"
        ) from None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass
    except OSError:
        pass  # not writable: sqlite3 reports it with the fix (see storage_error)


def write_problem(path: Path) -> str | None:
    """Why a run could not write this ledger (its folder, or the file), or None: a real
    probe (a temporary file created and removed), because permission bits do not say what
    a read-only mount or an ACL does."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # a run creates the missing folders below the first one there
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".fd-sync-probe-"):
            pass
    except OSError as exc:
        return (
            f"{folder}: cannot write there ({exc.strerror}); the fd-sync user needs write "
            "access to the ledger's folder, or set [sync] database"
        )
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path}: not writable by this user; fix its owner or mode"
    return None


def storage_error(path: Path, exc: sqlite3.DatabaseError, doing: str) -> StorageError:
    text = str(exc)
    lowered = text.lower()
    if "disk is full" in lowered or "database or disk is full" in lowered:
        return StorageUnavailable(
            f"{path}: disk full while trying to {doing}; free space on its file system "
            "(nothing was lost: the last page is rolled back and will be re-read)"
        )
    if "locked" in lowered or "busy" in lowered:
        return StorageUnavailable(
            f"{path}: database is locked by another process while trying to {doing}; "
            "retry when it is done"
        )
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        return StorageUnusable(
            f"{path}: cannot write ({text}); the fd-sync user needs write access "
            "to the file and its folder"
        )
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return StorageUnusable(
            f"{path}: not a usable fd-sync ledger ({text}); move it aside and "
            "restore a backup, or start a new ledger with fd-sync once --since"
        )
    if isinstance(exc, sqlite3.OperationalError) and "i/o" in lowered:
        return StorageUnavailable(
            f"{path}: I/O error while trying to {doing} ({text}); check the disk"
        )
    return StorageUnavailable(f"{path}: SQLite error while trying to {doing}: {text}")
