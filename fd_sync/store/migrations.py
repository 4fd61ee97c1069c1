"""The ledger's schema, as numbered migrations (sqlite-utils' migration log).

A migration is never edited once released: a new column is a new migration,
and an older fd-sync refuses a ledger that has migrations it does not know.
"""

from __future__ import annotations

from pathlib import Path

from sqlite_utils import Database, Migrations

from fd_sync.errors import StorageUnusable

migrations = Migrations("fd-sync")


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE incidents (
            sys_id TEXT PRIMARY KEY,
            number TEXT NOT NULL,
            updated_on TEXT NOT NULL,
            mod_count INTEGER NOT NULL,
            state TEXT NOT NULL,
            alert_open INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            changed_at TEXT NOT NULL
        );
        CREATE INDEX incidents_open ON incidents (alert_open);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sys_id TEXT NOT NULL,
            number TEXT NOT NULL,
            kind TEXT NOT NULL,
            destination TEXT NOT NULL,
            event TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            run_id TEXT,
            created_at TEXT NOT NULL,
            last_attempt_at TEXT,
            finished_at TEXT,
            http_status INTEGER,
            error_code TEXT,
            error_message TEXT,
            request_id TEXT
        );
        CREATE INDEX outbox_status ON outbox (status, id);
        CREATE INDEX outbox_incident ON outbox (sys_id, status);
        CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            command TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT,
            exit_code INTEGER,
            message TEXT,
            stats TEXT
        );
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sys_id TEXT,
            reason TEXT NOT NULL,
            sample TEXT NOT NULL,
            seen_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_routing(db: Database) -> None:
    """Where each open alert lives (routes), and whether a dispatch pinned it there."""
    for statement in (
        "ALTER TABLE incidents ADD COLUMN destination TEXT",
        "ALTER TABLE incidents ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE incidents ADD COLUMN pin_extras TEXT",
        # Before routing every alert lived at the [flashduty] push_url.
        "UPDATE incidents SET destination = 'default' WHERE alert_open = 1",
    ):
        db.execute(statement)


@migrations()
def m003_writeback(db: Database) -> None:
    """Two-way sync: each alert's Flashduty incident and how far its timeline was written
    back (links), the writes owed to ServiceNow (writeback), and alerts a responder closed."""
    db.executescript(
        """
        ALTER TABLE incidents ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE links (
            sys_id TEXT PRIMARY KEY,
            number TEXT NOT NULL,
            alert_key TEXT,
            destination TEXT,
            sent_at TEXT NOT NULL,
            incident_id TEXT,
            progress TEXT,
            fd_updated_at INTEGER NOT NULL DEFAULT 0,
            read_at INTEGER NOT NULL DEFAULT 0,
            cursor TEXT,
            own_mod_count INTEGER,
            watching INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX links_watching ON links (watching, incident_id);
        CREATE TABLE writeback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sys_id TEXT NOT NULL,
            number TEXT NOT NULL,
            incident_id TEXT NOT NULL,
            note TEXT NOT NULL,
            intents TEXT NOT NULL,
            kinds TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            run_id TEXT,
            created_at TEXT NOT NULL,
            last_attempt_at TEXT,
            finished_at TEXT,
            http_status INTEGER,
            error_message TEXT
        );
        CREATE INDEX writeback_status ON writeback (status, id);
        """
    )


def known_migrations() -> list[str]:
    return [m.name for m in migrations._migrations]


def refuse_newer_schema(db: Database, path: Path) -> None:
    applied = {m.name for m in migrations.applied(db)}
    unknown = applied - set(known_migrations())
    if unknown:
        raise StorageUnusable(
            f"{path}: written by a newer fd-sync (schema {', '.join(sorted(unknown))}); "
            "upgrade fd-sync, or point [sync] database at another file"
        )
