"""The SQLite backend: one file in WAL mode, through the standard library's sqlite3
(autocommit at the driver; a transaction is an explicit BEGIN, nested ones savepoints,
as sqlite-utils' ``atomic``); sqlite-utils applies the migrations, imported only when one
is pending, since importing it costs more CPU than a whole ``status`` otherwise does.

A full disk or a lock is temporary (75); a corrupt file or a schema from a newer fd-sync
needs the operator (78). The run lock is an ``flock`` beside the file
(:mod:`fd_sync.store.lock`), taken before the file is opened for writing.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fd_sync.errors import StorageError, StorageUnavailable, StorageUnusable
from fd_sync.store.db import Database, Row
from fd_sync.store.lock import RunLock
from fd_sync.store.migrations import MIGRATION_SET, MIGRATIONS_TABLE, sqlite_migrations

MEMORY = ":memory:"
_SAVEPOINTS = itertools.count(1)  # names of nested transactions, unique in the process


class SqliteDatabase(Database):
    """One SQLite ledger file in WAL mode, migrated on a writable open."""

    backend = "sqlite"

    def __init__(self, path: Path, *, readonly: bool = False, migrate: bool = True) -> None:
        super().__init__(Path(path), readonly=readonly)
        self.path = Path(path)
        with self.errors("open"):
            self._db = self._connect()
            if not readonly:
                self._prepare(migrate)
            else:
                self._check_readable()
        self.forget_schema()  # only what the schema is after the open counts

    @property
    def in_memory(self) -> bool:
        return str(self.path) == MEMORY

    def _connect(self) -> sqlite3.Connection:
        if self.in_memory:
            conn = sqlite3.connect(MEMORY, isolation_level=None)
        elif self.readonly:
            if not self.path.exists():
                raise StorageUnavailable(f"{self.path}: no ledger yet (fd-sync once creates it)")
            # Reading a WAL ledger needs its -shm file beside it: on a read-only mount (or
            # folder) there is none to create, and nobody can write there either, so the
            # file is read as it stands (immutable): what `status` shows of a ledger copied
            # or mounted read-only. Elsewhere, a plain read-only open sees every commit.
            immutable = "&immutable=1" if not os.access(self.path.parent, os.W_OK) else ""
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro{immutable}", uri=True, timeout=5, isolation_level=None
            )
        else:
            _create_private(self.path)
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        conn.execute("PRAGMA recursive_triggers=on")  # as sqlite-utils opened it before
        return conn

    def _prepare(self, migrate: bool) -> None:
        if not self.in_memory:
            mode = self._db.execute("PRAGMA journal_mode=wal").fetchone()[0]
            if mode != "wal":
                raise StorageUnusable(
                    f"{self.path}: cannot switch to WAL journaling (got {mode}); "
                    "put the ledger on a local file system"
                )
            # NORMAL is durable against process crashes in WAL mode; only a power
            # loss can drop the last commits, which the next scan re-decides.
            self._db.execute("PRAGMA synchronous=NORMAL")
        self.check_schema()
        if migrate or self.in_memory:
            self.migrate()

    def _table_exists(self, table: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
        ).fetchone()
        return row is not None

    def _check_readable(self) -> None:
        self.check_schema()
        if not self._table_exists("outbox"):
            raise StorageUnusable(
                f"{self.path}: not an fd-sync ledger (no outbox table); check [sync] database"
            )

    def applied_migrations(self) -> list[str]:
        with self.errors("read the schema"):
            if not self._table_exists(MIGRATIONS_TABLE):
                return []
            rows = self._db.execute(
                f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY rowid",
                [MIGRATION_SET],
            )
            return [row[0] for row in rows]

    def migrate(self) -> None:
        if not self.pending_migrations():
            return
        with self.errors("upgrade the ledger's schema"):
            from sqlite_utils import Database as SqliteUtilsDatabase

            sqlite_migrations().apply(SqliteUtilsDatabase(self._db, execute_plugins=False))
        self.forget_schema()

    @contextlib.contextmanager
    def run_lock(self, wait_seconds: float) -> Iterator[None]:
        with RunLock(self.path, wait_seconds=wait_seconds):
            yield

    def table_columns(self, table: str) -> frozenset[str]:
        with self.errors("read the schema"):
            return frozenset(row[1] for row in self._db.execute(f"PRAGMA table_info([{table}])"))

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

    def execute(self, sql: str, params: Sequence[Any] = (), doing: str = "write the ledger") -> int:
        with self.errors(doing):
            return int(self._db.execute(sql, list(params)).rowcount)

    def insert(self, sql: str, params: Sequence[Any] = (), doing: str = "write the ledger") -> int:
        with self.errors(doing):
            return int(self._db.execute(sql, list(params)).lastrowid or 0)

    def executemany(
        self, sql: str, rows: Iterable[Sequence[Any]], doing: str = "write the ledger"
    ) -> None:
        with self.errors(doing), self._atomic():
            self._db.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self, doing: str = "write the ledger") -> Iterator[None]:
        with self.errors(doing), self._atomic():
            yield

    @contextlib.contextmanager
    def _atomic(self) -> Iterator[None]:
        """All or nothing: BEGIN ... COMMIT, or a savepoint inside a transaction."""
        conn = self._db
        if conn.in_transaction:
            savepoint = f"fd_sync_{next(_SAVEPOINTS)}"
            conn.execute(f"SAVEPOINT {savepoint}")
            try:
                yield
            except BaseException:
                if conn.in_transaction:  # an error can have ended the transaction already
                    conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                    conn.execute(f"RELEASE SAVEPOINT {savepoint}")
                raise
            conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            return
        conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

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
    import tempfile  # here: shutil, bz2 and lzma are not for every open of the ledger

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
