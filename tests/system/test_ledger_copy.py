"""`fd-sync ledger copy`: SQLite -> PostgreSQL -> SQLite, every row and id kept, counts
verified; a non-empty target refused and left as it was."""

from __future__ import annotations

import signal

import pytest

from fd_sync.store.copy import counts
from fd_sync.store.ledger import Ledger
from tests import postgres
from tests.helpers.processes import is_status
from tests.helpers.simulated import open_incident


def test_a_ledger_travels_to_postgresql_and_back_with_everything(
    servicenow, flashduty, write_config, run_fd_sync, tmp_path, pg_cluster
):
    config = write_config()
    assert run_fd_sync("--config", str(config), "once").code == 0  # the baseline
    rows = [open_incident(servicenow) for _ in range(3)]
    flashduty.inject(status=400, path="/event/push/", times=10)  # one dead event, with errors
    assert run_fd_sync("--config", str(config), "once").code != 0
    sqlite_file = tmp_path / "state" / "fd-sync.db"
    with Ledger(sqlite_file, readonly=True) as original:
        before = counts(original.db)
        dead = [(e.id, e.status, e.http_status, e.error_message) for e in original.outbox.items()]
        watermark = original.summary().watermark
    assert before["outbox"] == 3 and before["runs"] == 2 and dead

    target = pg_cluster.ledger(pg_cluster.new_database())
    env = {"FD_SYNC_TARGET_DATABASE_PASSWORD": postgres.PASSWORD}
    copied = run_fd_sync("--config", str(config), "ledger", "copy", "--to", target.url, env=env)
    assert copied.code == 0, copied.output
    assert "counts verified" in copied.stdout and postgres.PASSWORD not in copied.output
    with Ledger(target, readonly=True) as moved:
        assert counts(moved.db) == before
        assert [
            (e.id, e.status, e.http_status, e.error_message) for e in moved.outbox.items()
        ] == dead
        assert moved.summary().watermark == watermark

    # A second copy into the now non-empty target is refused (64), and changes nothing.
    again = run_fd_sync("--config", str(config), "ledger", "copy", "--to", target.url, env=env)
    assert again.code == 64 and "not empty" in again.stderr
    with Ledger(target, readonly=True) as moved:
        assert counts(moved.db) == before

    # Back: PostgreSQL is now the configured ledger; its copy becomes a new SQLite file, and
    # the next id there follows the copied ones.
    on_postgres = write_config(
        name="pg.toml", sync={"database": target.url, "database_password": postgres.PASSWORD}
    )
    back = tmp_path / "back" / "fd-sync.db"
    returned = run_fd_sync("--config", str(on_postgres), "ledger", "copy", "--to", str(back))
    assert returned.code == 0, returned.output
    with Ledger(back) as home:
        assert counts(home.db) == before
        assert home.start_run("r-next", "once") == before["runs"] + 1  # ids move on
    del rows


def test_the_next_event_on_postgresql_gets_an_id_after_the_copied_ones(
    servicenow, flashduty, write_config, run_fd_sync, pg_cluster
):
    config = write_config()
    assert run_fd_sync("--config", str(config), "once").code == 0
    open_incident(servicenow)
    assert run_fd_sync("--config", str(config), "once").code == 0
    target = pg_cluster.ledger(pg_cluster.new_database())
    env = {"FD_SYNC_TARGET_DATABASE_PASSWORD": postgres.PASSWORD}
    assert (
        run_fd_sync("--config", str(config), "ledger", "copy", "--to", target.url, env=env).code
        == 0
    )
    on_postgres = write_config(
        name="pg.toml", sync={"database": target.url, "database_password": postgres.PASSWORD}
    )
    open_incident(servicenow)
    assert run_fd_sync("--config", str(on_postgres), "once").code == 0
    with Ledger(target, readonly=True) as moved:
        ids = [e.id for e in moved.outbox.items()]
    assert sorted(ids) == [1, 2] and len(flashduty.open_keys()) == 2


def test_a_copy_is_refused_while_a_daemon_uses_the_ledger(
    servicenow, flashduty, write_config, run_fd_sync, daemon, notify, tmp_path
):
    """A daemon that goes on after the copy leaves the copy behind: switching to it would
    send and write again what the first one already had (issue 23, item 2)."""
    config = write_config(sync={"poll_interval_seconds": 1})
    proc = daemon(config)
    notify.wait_for(is_status("last cycle"))
    target = tmp_path / "copy" / "fd-sync.db"
    refused = run_fd_sync("--config", str(config), "ledger", "copy", "--to", str(target))
    assert refused.code == 75, refused.output
    last = refused.stderr.strip().splitlines()[-1]  # one line, after the config's warnings
    assert f"pid {proc.pid}" in last and "stop it first" in last and not target.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    copied = run_fd_sync("--config", str(config), "ledger", "copy", "--to", str(target))
    assert copied.code == 0, copied.output


def test_a_copy_of_a_ledger_that_does_not_exist_is_refused(write_config, run_fd_sync, tmp_path):
    """Copying nothing, then switching as the output said, would throw the real ledger's
    state away (issue 23, item 7)."""
    config = write_config(sync={"database": str(tmp_path / "nowhere" / "fd-sync.db")})
    target = tmp_path / "copy.db"
    refused = run_fd_sync("--config", str(config), "ledger", "copy", "--to", str(target))
    assert refused.code == 64, refused.output
    assert "no ledger to copy" in refused.stderr and "Traceback" not in refused.output
    assert not target.exists() and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    "typo", ["postgresq://fdsync@db/fdsync", "sqlite:///tmp/x.db", "mysql://h/d"]
)
def test_a_url_that_is_not_postgresql_is_refused_not_taken_for_a_file(
    write_config, run_fd_sync, tmp_path, typo
):
    """A typo in the scheme made a local file named like the URL: in HA a second, private
    ledger and a second leader (issue 23, item 6)."""
    config = write_config()
    assert run_fd_sync("--config", str(config), "once").code == 0
    copy = run_fd_sync("--config", str(config), "ledger", "copy", "--to", typo)
    assert copy.code == 78, copy.output
    assert "postgresql://" in copy.stderr and "SQLite file path" in copy.stderr
    broken = write_config(name="typo.toml", sync={"database": typo})
    once = run_fd_sync("--config", str(broken), "once")
    assert once.code == 78 and "[sync] database" in once.stderr
    assert not any(p.name.startswith(typo.split(":")[0]) for p in tmp_path.rglob("*"))


def test_a_copy_onto_the_configured_ledger_is_named_as_such(
    servicenow, write_config, run_fd_sync, database
):
    """The same file by another spelling was reported as "another run holds the ledger"
    (issue 23, item 13)."""
    config = str(write_config())
    assert run_fd_sync("--config", config, "once").code == 0
    same = database.parent / ".." / database.parent.name / database.name
    refused = run_fd_sync("--config", config, "ledger", "copy", "--to", str(same))
    assert refused.code == 64, refused.output
    assert "is the configured ledger" in refused.stderr
