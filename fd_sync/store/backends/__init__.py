"""The two engines a ledger can live in, behind :class:`fd_sync.store.db.Database`.

:func:`connect` picks one by the location: a path is SQLite, a ``postgresql://`` URL
is PostgreSQL (``psycopg`` is imported only then, so SQLite needs nothing new).
"""

from __future__ import annotations

from pathlib import Path

from fd_sync.core.location import PSYCOPG_MISSING, LedgerLocation, PostgresLedger
from fd_sync.errors import ConfigError
from fd_sync.store.db import Database
from fd_sync.store.lock import DEFAULT_WAIT_SECONDS


def connect(
    location: LedgerLocation,
    *,
    readonly: bool = False,
    migrate: bool = True,
    allow_empty: bool = False,
    keepalive_seconds: float | None = None,
    application: str = "fd-sync",
) -> Database:
    """Open a ledger. ``migrate``: apply missing migrations now (SQLite: always safe,
    since writers hold the file lock first; PostgreSQL: only under the run lock, so a
    newer fd-sync standing by never changes the schema under an older leader).
    ``allow_empty``: a read-only open of a PostgreSQL database without the schema yet."""
    if isinstance(location, PostgresLedger):
        try:
            from fd_sync.store.backends.postgres import PostgresDatabase
        except ImportError as exc:
            if "psycopg" not in str(exc):
                raise
            raise ConfigError(f"[sync] database: {PSYCOPG_MISSING}") from None
        db: Database = PostgresDatabase(
            location,
            readonly=readonly,
            allow_empty=allow_empty,
            keepalive_seconds=keepalive_seconds,
            application=application,
        )
        if migrate and not readonly and db.pending_migrations():
            with db.run_lock(wait_seconds=DEFAULT_WAIT_SECONDS):
                db.migrate()
        return db
    from fd_sync.store.backends.sqlite import SqliteDatabase

    return SqliteDatabase(Path(location), readonly=readonly, migrate=migrate)
