"""The ledger file: schema, atomic pages, refusing files it must not touch."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fd_sync.core.decide import Decision, reconcile
from fd_sync.core.incident import Incident
from fd_sync.errors import StorageError
from fd_sync.store.ledger import Ledger
from fd_sync.store.migrations import known_migrations, sqlite_migrations
from fd_sync.store.outbox import Acknowledged
from fd_sync.store.queue import Failure

pytestmark = pytest.mark.backends("sqlite", "postgres")  # every test on both engines


def incident(n: int, state: str = "1") -> Incident:
    return Incident(
        sys_id=f"{n:032x}",
        number=f"INC{n:07d}",
        updated_on="2026-11-01 08:00:00",
        mod_count=1,
        state=state,
        short_description=f"incident {n}",
    )


APPLIED = "SELECT name FROM _sqlite_migrations ORDER BY id"


@pytest.fixture
def sqlite_file(tmp_path):
    """For what only a SQLite file has: WAL, file modes, a foreign file, older ledgers."""
    return tmp_path / "state" / "fd-sync.db"


def migration_log(ledger: Ledger) -> str:
    return "_sqlite_migrations" if ledger.db.backend == "sqlite" else "fd_sync_migrations"


def test_a_new_ledger_is_migrated_once(database):
    with Ledger(database) as ledger:
        assert ledger.db.applied_migrations() == known_migrations()
    with Ledger(database) as ledger:  # opening again applies nothing twice
        assert ledger.db.applied_migrations() == known_migrations()


def record(ledger: Ledger, decisions: list[Decision]) -> None:
    ledger.record_page(decisions, extras={}, quarantined=(), watermark="w", run_id="r")


def test_a_new_sqlite_ledger_is_wal(sqlite_file):
    with Ledger(sqlite_file) as ledger:
        assert ledger.db.scalar("PRAGMA journal_mode") == "wal"


def test_a_page_is_all_or_nothing(database, monkeypatch):
    with Ledger(database) as ledger:
        decisions = reconcile([incident(1), incident(2)], {})

        def crash(*args: object) -> None:
            raise RuntimeError("crash between the rows and the commit")

        monkeypatch.setattr(ledger.quarantine, "keep", crash)
        with pytest.raises(RuntimeError):
            ledger.record_page(
                decisions,
                extras={},
                quarantined=[("abc", "bad", "{}")],
                watermark="2026-11-01 08:00:00",
                run_id="r1",
            )
        summary = ledger.summary()
        assert summary.incidents_tracked == 0
        assert summary.outbox.pending == 0
        assert summary.watermark is None


def test_entries_know_whether_an_alert_was_sent(database):
    with Ledger(database) as ledger:
        record(ledger, reconcile([incident(1), incident(2)], {}))
        first, _ = ledger.outbox.pending()
        ledger.attempt(first, acknowledging=None)
        entries = ledger.entries([incident(1).sys_id, incident(2).sys_id])
        assert entries[incident(1).sys_id].alert_reached is True  # tried: maybe at Flashduty
        assert entries[incident(2).sys_id].alert_reached is False


def test_a_newer_schema_is_refused_not_migrated(database):
    with Ledger(database) as ledger:
        ledger.db.execute(
            f"INSERT INTO {migration_log(ledger)} (migration_set, name, applied_at) "
            "VALUES ('fd-sync', 'm999_from_the_future', '2030-01-01')"
        )
    for readonly in (False, True):
        with pytest.raises(StorageError) as info:
            Ledger(database, readonly=readonly)
        assert "newer fd-sync" in str(info.value) and str(database) in str(info.value)
        assert info.value.exit_code == 78


def test_a_file_that_is_not_a_database_is_refused_and_kept(sqlite_file):
    database = sqlite_file
    database.parent.mkdir(parents=True)
    database.write_bytes(b"this is a text file, not SQLite " * 100)
    with pytest.raises(StorageError) as info:
        Ledger(database)
    assert "not a usable fd-sync ledger" in str(info.value)
    assert info.value.exit_code == 78
    assert database.read_bytes().startswith(b"this is a text file")  # never silently reset


def test_a_missing_ledger_is_reported_by_readonly_opens(database):
    with pytest.raises(StorageError, match="no ledger yet") as info:
        Ledger(database, readonly=True)
    assert info.value.exit_code == 75
    if isinstance(database, Path):
        assert not database.exists()
    else:  # a read-only open creates nothing either: the next open is still empty
        with pytest.raises(StorageError, match="no ledger yet"):
            Ledger(database, readonly=True)


def test_a_locked_database_is_temporary(sqlite_file):
    database = sqlite_file
    with Ledger(database):
        pass
    blocker = sqlite3.connect(database, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        ledger = Ledger(database)
        ledger.db.execute("PRAGMA busy_timeout = 100")
        with pytest.raises(StorageError) as info, ledger.transaction():
            ledger.state.set("watermark", "x")
        assert "locked" in str(info.value) and info.value.exit_code == 75
        ledger.close()
    finally:
        blocker.rollback()
        blocker.close()


def test_finished_events_are_purged_after_retention_but_dead_ones_stay(database):
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    with Ledger(database, clock=lambda: now[0]) as ledger:
        record(ledger, reconcile([incident(1), incident(2)], {}))
        delivered, dead = ledger.outbox.pending()
        ledger.record_acknowledged(Acknowledged(delivered, 200, "x", None))
        refused = Failure(400, "no", error_code="InvalidParameter", request_id="y")
        ledger.record_failure(ledger.outbox, [dead.id], dead=True, failure=refused)
        now[0] += timedelta(days=31)
        assert ledger.purge_finished() == 1
        assert [e.status for e in ledger.outbox.items()] == ["dead"]
        assert ledger.outbox.items()[0].request_id == "y"


def test_history_is_purged_in_bounded_batches_after_history_days(database):
    """explain tells the story from finished items: they stay [sync] history_days, then go
    a thousand at a time, one transaction each, so a long history never holds a long lock."""
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    with Ledger(database, clock=lambda: now[0]) as ledger:
        record(ledger, reconcile([incident(i) for i in range(1, 2501)], {}))
        with ledger.transaction():  # all delivered long ago
            ledger.db.execute("UPDATE outbox SET status = 'delivered', finished_at = ?", ["x"])
            ledger.db.execute("UPDATE outbox SET finished_at = '2026-09-01T00:00:00+00:00'")
        assert ledger.purge_finished(timedelta(days=90), batches=10) == 0  # still history
        assert ledger.purge_finished(timedelta(days=30), batches=1) == 1000  # one batch
        assert ledger.purge_finished(timedelta(days=30)) == 1500
        assert ledger.outbox.items() == []


def test_quarantine_keeps_one_copy_of_a_row_seen_again(database):
    with Ledger(database) as ledger:
        for _ in range(3):
            ledger.quarantine.keep("abc", "sys_updated_on missing", '{"sys_id": "abc"}')
        assert ledger.summary().quarantined == 1


def m001_ledger(database, inc):
    """A ledger as fd-sync wrote it before routing: one open alert, its create queued."""
    from sqlite_utils import Database

    database.parent.mkdir(parents=True)
    old = Database(database)
    sqlite_migrations().apply(old, stop_before="m002_routing")
    old.execute(
        "INSERT INTO incidents VALUES (?, ?, ?, 1, '1', 1, ?, ?, '2026-11-01T08:00:00+00:00')",
        [inc.sys_id, inc.number, inc.updated_on, inc.fingerprint(), json.dumps(inc.to_dict())],
    )
    old.execute(
        "INSERT INTO outbox (sys_id, number, kind, destination, event, status, created_at)"
        " VALUES (?, ?, 'create', 'default', ?, 'pending', '2026-11-01T08:00:00+00:00')",
        [inc.sys_id, inc.number, json.dumps(inc.to_dict())],
    )
    old.conn.commit()
    old.close()


def test_an_older_ledger_opened_read_only_is_read_without_migrating(sqlite_file):
    database = sqlite_file
    inc = incident(1)
    m001_ledger(database, inc)
    with Ledger(database, readonly=True) as ledger:  # what once --dry-run and explain open
        entry = ledger.entries([inc.sys_id])[inc.sys_id]
        assert entry.alert_at == "default" and not entry.pinned
        assert ledger.incidents.pins([inc.sys_id]) == {}
        assert "m002_routing" not in {r[0] for r in ledger.db.rows(APPLIED)}


def test_a_ledger_from_before_routing_upgrades_in_place(sqlite_file):
    """m001 ledgers: open alerts lived at the [flashduty] push_url, queued events had no
    route extras; both must keep working after the upgrade."""
    database = sqlite_file
    from fd_sync.core.decide import Kind, decide

    inc = incident(1)
    m001_ledger(database, inc)
    with Ledger(database) as ledger:
        assert [r[0] for r in ledger.db.rows(APPLIED)] == (known_migrations())
        entry = ledger.entries([inc.sys_id])[inc.sys_id]
        assert entry.alert_at == "default" and entry.pinned is False
        (queued,) = ledger.outbox.pending()
        assert queued.extras.severity is None and queued.incident == inc
        ledger.record_acknowledged(Acknowledged(queued, 200, "r", None))
        entry = ledger.entries([inc.sys_id])[inc.sys_id]
        # A reassignment after the upgrade moves the alert from where it was.
        later = Incident(**{**inc.to_dict(), "updated_on": "2026-11-01 08:00:05", "mod_count": 2})
        moved = decide(later, entry, target="route:network")
        assert moved is not None
        assert [(e.kind, e.destination) for e in moved.events] == [
            (Kind.RESOLVE, "default"),
            (Kind.CREATE, "route:network"),
        ]


def test_a_new_ledger_and_its_folder_are_private(tmp_path):
    """The ledger holds incident texts: folder 0700, file (and its WAL) 0600."""
    path = tmp_path / "new" / "state" / "fd-sync.db"
    with Ledger(path) as ledger, ledger.transaction():
        ledger.state.set("watermark", "2026-11-01 08:00:00")
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_mode & 0o777 == 0o600
