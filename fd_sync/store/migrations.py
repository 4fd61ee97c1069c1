"""The ledger's schema, as numbered migrations, one list for both backends.

Each migration is a name and its statements in the SQL both SQLite and PostgreSQL
speak; the PostgreSQL backend rewrites the two types SQLite spells its own way
(:func:`fd_sync.store.backends.postgres.translate_ddl`). SQLite keeps its migration
log in sqlite-utils' ``_sqlite_migrations`` (ledgers made before PostgreSQL existed
stay as they are), PostgreSQL in ``fd_sync_migrations``.

A migration is never edited once released: a new column is a new migration,
and an older fd-sync refuses a ledger that has migrations it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database, Migrations

from fd_sync.errors import StorageUnusable

MIGRATION_SET = "fd-sync"


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]


STEPS = (
    Migration(
        "m001_initial",
        (
            """CREATE TABLE incidents (
                sys_id TEXT PRIMARY KEY,
                number TEXT NOT NULL,
                updated_on TEXT NOT NULL,
                mod_count INTEGER NOT NULL,
                state TEXT NOT NULL,
                alert_open INTEGER NOT NULL,
                fingerprint TEXT NOT NULL,
                snapshot TEXT NOT NULL,
                changed_at TEXT NOT NULL
            )""",
            "CREATE INDEX incidents_open ON incidents (alert_open)",
            """CREATE TABLE outbox (
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
            )""",
            "CREATE INDEX outbox_status ON outbox (status, id)",
            "CREATE INDEX outbox_incident ON outbox (sys_id, status)",
            "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT)",
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                run_id TEXT NOT NULL,
                command TEXT NOT NULL,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                outcome TEXT,
                exit_code INTEGER,
                message TEXT,
                stats TEXT
            )""",
            """CREATE TABLE quarantine (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                sys_id TEXT,
                reason TEXT NOT NULL,
                sample TEXT NOT NULL,
                seen_at TEXT NOT NULL
            )""",
        ),
    ),
    # Where each open alert lives (routes), and whether a dispatch pinned it there.
    Migration(
        "m002_routing",
        (
            "ALTER TABLE incidents ADD COLUMN destination TEXT",
            "ALTER TABLE incidents ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE incidents ADD COLUMN pin_extras TEXT",
            # Before routing every alert lived at the [flashduty] push_url.
            "UPDATE incidents SET destination = 'default' WHERE alert_open = 1",
        ),
    ),
    # Two-way sync: each alert's Flashduty incident and how far its timeline was written
    # back (links), the writes owed to ServiceNow (writeback), and alerts a responder closed.
    Migration(
        "m003_writeback",
        (
            "ALTER TABLE incidents ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
            """CREATE TABLE links (
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
            )""",
            "CREATE INDEX links_watching ON links (watching, incident_id)",
            """CREATE TABLE writeback (
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
            )""",
            "CREATE INDEX writeback_status ON writeback (status, id)",
        ),
    ),
    # Commands in work notes: each note (its sys_journal_field sys_id) acted on once.
    Migration(
        "m004_commands",
        (
            """CREATE TABLE commands (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                journal_id TEXT NOT NULL UNIQUE,
                sys_id TEXT NOT NULL,
                number TEXT NOT NULL,
                author TEXT NOT NULL,
                text TEXT NOT NULL,
                verb TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                run_id TEXT,
                created_at TEXT NOT NULL,
                last_attempt_at TEXT,
                finished_at TEXT,
                http_status INTEGER,
                error_message TEXT,
                answer TEXT
            )""",
            "CREATE INDEX commands_status ON commands (status, id)",
        ),
    ),
    # Tickets from Flashduty: each monitoring incident's ticket (tickets), the creates owed
    # to ServiceNow (ticket_creates), the writes owed to Flashduty's OpenAPI
    # (flashduty_writes), and which links are of tickets (origin).
    Migration(
        "m005_tickets",
        (
            """CREATE TABLE tickets (
                incident_id TEXT PRIMARY KEY,
                num TEXT NOT NULL,
                title TEXT NOT NULL,
                channel_id INTEGER NOT NULL,
                severity TEXT NOT NULL,
                start_time INTEGER NOT NULL,
                sys_id TEXT UNIQUE,
                number TEXT,
                state TEXT NOT NULL DEFAULT '',
                urgency TEXT NOT NULL DEFAULT '',
                mod_count INTEGER NOT NULL DEFAULT 0,
                last_comment TEXT NOT NULL DEFAULT '',
                assigned_to TEXT NOT NULL DEFAULT '',
                syncing INTEGER NOT NULL DEFAULT 1,
                found_at TEXT NOT NULL,
                opened_at TEXT
            )""",
            "CREATE INDEX tickets_start ON tickets (start_time)",
            """CREATE TABLE ticket_creates (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                incident_id TEXT NOT NULL,
                sys_id TEXT NOT NULL,
                number TEXT NOT NULL,
                fields TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                run_id TEXT,
                created_at TEXT NOT NULL,
                last_attempt_at TEXT,
                finished_at TEXT,
                http_status INTEGER,
                error_message TEXT
            )""",
            "CREATE INDEX ticket_creates_status ON ticket_creates (status, id)",
            """CREATE TABLE flashduty_writes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                incident_id TEXT NOT NULL,
                sys_id TEXT NOT NULL,
                number TEXT NOT NULL,
                kind TEXT NOT NULL,
                body TEXT NOT NULL,
                source TEXT UNIQUE,
                echo_seen INTEGER NOT NULL DEFAULT 0,
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
            )""",
            "CREATE INDEX flashduty_writes_status ON flashduty_writes (status, id)",
            "CREATE INDEX flashduty_writes_incident ON flashduty_writes (incident_id, echo_seen)",
            "ALTER TABLE links ADD COLUMN origin TEXT NOT NULL DEFAULT 'servicenow'",
        ),
    ),
    Migration(
        # The read cadence (issue 24): when list-by-ids last looked at the incident, which
        # is not a timeline read (read_at keeps its meaning for the settle rule).
        "m006_read_cadence",
        ("ALTER TABLE links ADD COLUMN checked_at INTEGER NOT NULL DEFAULT 0",),
    ),
)

# Every table the ledger holds, with its primary key: what `ledger copy` fills, counts and
# pages through (a keyset over anything less than unique would skip rows).
TABLES = {
    "incidents": "sys_id",
    "outbox": "id",
    "state": "key",
    "runs": "id",
    "quarantine": "id",
    "links": "sys_id",
    "writeback": "id",
    "commands": "id",
    "tickets": "incident_id",
    "ticket_creates": "id",
    "flashduty_writes": "id",
}

MIGRATIONS_TABLE = "_sqlite_migrations"  # sqlite-utils' log of the migrations applied
_SQLITE_MIGRATIONS: list[Migrations] = []


def sqlite_migrations() -> Migrations:
    """sqlite-utils' migration set of the ledger, built on first use: importing sqlite-utils
    costs about 70 ms of CPU, and only a run that has a migration to apply needs it (the
    backend reads the log itself to know)."""
    if not _SQLITE_MIGRATIONS:
        from sqlite_utils import Migrations

        migrations = Migrations(MIGRATION_SET)
        for step in STEPS:
            _register(migrations, step)
        _SQLITE_MIGRATIONS.append(migrations)
    return _SQLITE_MIGRATIONS[0]


def _register(migrations: Migrations, step: Migration) -> None:
    def run(db: Database) -> None:
        for statement in step.statements:
            db.execute(statement)

    migrations(name=step.name)(run)


def known_migrations() -> list[str]:
    return [step.name for step in STEPS]


def refuse_newer_schema(applied: Iterable[str], where: str) -> None:
    unknown = set(applied) - set(known_migrations())
    if unknown:
        raise StorageUnusable(
            f"{where}: written by a newer fd-sync (schema {', '.join(sorted(unknown))}); "
            "upgrade fd-sync, or point [sync] database at another ledger"
        )
