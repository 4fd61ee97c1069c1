"""Storage faults: a read-only folder, a full disk, a lock, a corrupt or newer ledger.

Each ends with one line naming the file, exit 75 (temporary) or 78 (needs the
operator), and never a half-written or silently reset ledger. The disk faults use
real tmpfs mounts, which need root with CAP_SYS_ADMIN (CI runs as root).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from sqlite_utils import Database

from fd_sync.store.ledger import Ledger
from fd_sync.store.migrations import known_migrations, sqlite_migrations
from tests.helpers.simulated import open_incident


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root with CAP_SYS_ADMIN"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def integrity(database: Path) -> str:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_read_only_folder_is_a_configuration_problem(
    servicenow, write_config, run_fd_sync, database
):
    with tmpfs(database.parent, "1m"):
        config = str(write_config())
        assert run_fd_sync("--config", config, "once").code == 0
        remount(database.parent, "ro")
        open_incident(servicenow)
        result = run_fd_sync("--config", config, "once")
        assert result.code == 78, result.output
        line = result.stderr.strip().splitlines()[-1]
        assert str(database) in line or str(database.parent) in line
        assert "Traceback" not in result.output


def test_disk_full_mid_backfill_loses_nothing(
    servicenow, flashduty, write_config, run_fd_sync, database
):
    rows = [open_incident(servicenow, description="d" * 2000) for _ in range(400)]
    with tmpfs(database.parent, "400k"):
        config = str(write_config(servicenow={"page_size": 20}))
        full = run_fd_sync("--config", config, "once", "--since", "2026-11-01")
        assert full.code == 75, full.output
        assert "disk full" in full.stderr and str(database) in full.stderr
        assert integrity(database) == "ok"
        conn = sqlite3.connect(database)
        watermark = conn.execute("SELECT value FROM state WHERE key='watermark'").fetchone()[0]
        queued = {r[0] for r in conn.execute("SELECT sys_id FROM outbox")}
        conn.close()
        # Every committed page left its events: nothing at or before the watermark is lost.
        assert {r["sys_id"] for r in rows if r["sys_updated_on"] < watermark} <= queued
        remount(database.parent, "size=64m")  # the operator frees space
        again = run_fd_sync("--config", config, "once")
        assert again.code == 0, again.output
    assert flashduty.history() == {r["sys_id"]: ["create"] for r in rows}
    assert flashduty.duplicates() == 0


def test_a_database_locked_by_another_process(servicenow, write_config, run_fd_sync, database):
    config = str(write_config())
    assert run_fd_sync("--config", config, "once").code == 0
    blocker = sqlite3.connect(database)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        result = run_fd_sync("--config", config, "once")
    finally:
        blocker.rollback()
        blocker.close()
    assert result.code == 75
    assert "locked by another process" in result.stderr and str(database) in result.stderr


def test_a_corrupt_ledger_is_refused_and_kept(servicenow, write_config, run_fd_sync, database):
    config = str(write_config())
    for _ in range(50):
        open_incident(servicenow, description="x" * 500)
    assert run_fd_sync("--config", config, "once", "--since", "2026-11-01").code == 0
    Ledger(database).close()  # checkpoint the WAL into the main file
    data = bytearray(database.read_bytes())
    data[4096:12288] = b"\xde\xad\xbe\xef" * 2048  # scribble over pages 2 and 3
    database.write_bytes(bytes(data))
    result = run_fd_sync("--config", config, "once")
    assert result.code == 78, result.output
    assert str(database) in result.stderr and "move it aside" in result.stderr
    assert database.read_bytes() == bytes(data)  # never silently reset


def test_not_a_database_at_all(write_config, run_fd_sync, database):
    database.parent.mkdir(parents=True)
    database.write_text("this is my shopping list")
    result = run_fd_sync("--config", str(write_config()), "once")
    assert result.code == 78
    assert "not a usable fd-sync ledger" in result.stderr
    assert database.read_text() == "this is my shopping list"


def test_a_ledger_from_a_newer_fd_sync(servicenow, write_config, run_fd_sync, database):
    config = str(write_config())
    assert run_fd_sync("--config", config, "once").code == 0
    conn = sqlite3.connect(database)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('fd-sync', 'm999_next_year', '2027-11-01')"
    )
    conn.commit()
    conn.close()
    result = run_fd_sync("--config", config, "once")
    assert result.code == 78
    assert "newer fd-sync" in result.stderr and "m999_next_year" in result.stderr


SEED_V1 = """
INSERT INTO incidents (sys_id, number, updated_on, mod_count, state, alert_open, fingerprint,
  snapshot, changed_at) VALUES ('aaaa', 'INC0000001', '2026-11-01 08:00:00', 3, '2', 1, 'fp',
  '{"sys_id": "aaaa", "number": "INC0000001", "updated_on": "2026-11-01 08:00:00",
    "mod_count": 3, "state": "2"}', '2026-11-01T08:00:01+00:00');
INSERT INTO outbox (sys_id, number, kind, destination, event, status, created_at) VALUES
  ('aaaa', 'INC0000001', 'create', 'default',
   '{"sys_id": "aaaa", "number": "INC0000001", "updated_on": "2026-11-01 08:00:00",
     "mod_count": 3, "state": "2"}', 'pending', '2026-11-01T08:00:01+00:00');
INSERT INTO state (key, value) VALUES ('watermark', '2026-11-01 08:00:00');
"""


@pytest.mark.parametrize("applied", range(1, len(known_migrations()) + 1))
def test_upgrade_from_every_earlier_schema(tmp_path, applied):
    """A ledger written by any earlier version opens, upgrades, and keeps its rows."""
    path = tmp_path / "old.db"
    db = Database(path)
    names = known_migrations()
    stop = names[applied] if applied < len(names) else None
    sqlite_migrations().apply(db, stop_before=stop)
    db.executescript(SEED_V1)  # rows as the first schema wrote them
    db.close()
    with Ledger(path) as ledger:
        applied_now = [r[0] for r in ledger.db.rows("SELECT name FROM _sqlite_migrations")]
        assert applied_now == names
        entries = ledger.entries(["aaaa"])
        assert entries["aaaa"].alert_open and entries["aaaa"].mod_count == 3
        (event,) = ledger.outbox.pending()
        assert event.number == "INC0000001" and event.kind.value == "create"
        assert ledger.state.get("watermark") == "2026-11-01 08:00:00"


def test_check_and_dry_run_see_a_read_only_ledger_folder(
    servicenow, write_config, run_fd_sync, database
):
    """Both used to pass, and the real once then exited 78."""
    with tmpfs(database.parent, "1m"):
        config = str(write_config())
        assert run_fd_sync("--config", config, "once").code == 0
        remount(database.parent, "ro")
        check = run_fd_sync("--config", config, "check")
        assert check.code == 78
        assert any(
            line.startswith("fail  ledger") and str(database.parent) in line
            for line in check.stdout.splitlines()
        )
        dry = run_fd_sync("--config", config, "once", "--dry-run")
        assert dry.code == 78
        # On a read-only mount even reading a WAL ledger needs its -shm file, so the dry
        # run stops at the open; on a folder the user may not write, it reads, then says.
        assert str(database.parent) in dry.stderr.strip().splitlines()[-1]
        assert run_fd_sync("--config", config, "once").code == 78  # as both said


def test_check_reports_the_ledger_and_its_lock(servicenow, write_config, run_fd_sync):
    config = str(write_config())
    fresh = run_fd_sync("--config", config, "check")
    assert "ok    ledger     schema" in fresh.stdout and "none yet" in fresh.stdout
    assert run_fd_sync("--config", config, "once").code == 0
    again = run_fd_sync("--config", config, "check")
    assert "a ledger this fd-sync reads (watermark" in again.stdout
    assert "ok    ledger     lock        free" in again.stdout


def test_a_dry_run_says_when_the_real_run_could_not_write(
    servicenow, write_config, run_fd_sync, tmp_path
):
    """A ledger path below a plain file: readable (no ledger yet), never writable."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    config = str(write_config(sync={"database": str(blocker / "fd-sync.db")}))
    dry = run_fd_sync("--config", config, "once", "--dry-run")
    assert dry.code == 78
    assert dry.stderr.strip().splitlines()[-1].startswith("fd-sync: a real run would fail:")
    assert run_fd_sync("--config", config, "once").code == 78


def test_status_reads_a_ledger_on_a_read_only_mount(
    servicenow, write_config, run_fd_sync, database
):
    """status refused a ledger it could only read (issue 23, item 13): a copied or
    read-only mounted ledger is read as it stands."""
    with tmpfs(database.parent, "1m"):
        config = str(write_config())
        assert run_fd_sync("--config", config, "once").code == 0
        open_incident(servicenow)
        assert run_fd_sync("--config", config, "once").code == 0
        remount(database.parent, "ro")
        status = run_fd_sync("--config", config, "status", "--json")
        assert status.code == 0, status.output
        found = json.loads(status.stdout)
        assert found["incidents_tracked"] == 1 and found["outbox"]["delivered"] == 1
