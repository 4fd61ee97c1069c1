"""A PostgreSQL ledger's expected failures, as an operator meets them: one line on stderr
naming the ledger and the fix, the documented exit code, no secret, no traceback."""

from __future__ import annotations

import textwrap

from tests import postgres


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("fd-sync:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_unreachable_server_exits_75_naming_the_host(write_config, run_fd_sync):
    port = postgres.free_port()
    config = write_config(
        sync={"database": f"postgresql://fdsync@127.0.0.1:{port}/fd", "database_password": "pw-777"}
    )
    result = run_fd_sync("--config", str(config), "once")
    assert result.code == 75
    assert f"127.0.0.1:{port}" in one_line(result) and "pw-777" not in result.output


def test_wrong_password_exits_78_with_libpqs_message_and_no_secret(
    write_config, run_fd_sync, pg_cluster
):
    url = pg_cluster.url(pg_cluster.new_database())
    config = write_config(sync={"database": url, "database_password": "wrong-pw-4242"})
    result = run_fd_sync("--config", str(config), "status")
    assert result.code == 78
    assert "password authentication failed" in one_line(result)
    assert "wrong-pw-4242" not in result.output


def test_a_password_written_into_the_url_is_used_warned_about_and_never_shown(
    write_config, run_fd_sync, pg_cluster
):
    name = pg_cluster.new_database()
    url = f"postgresql://fdsync:{postgres.PASSWORD}@127.0.0.1:{pg_cluster.port}/{name}"
    config = write_config(sync={"database": url})
    assert run_fd_sync("--config", str(config), "once").code == 0
    result = run_fd_sync("--config", str(config), "status")
    assert result.code == 0 and postgres.PASSWORD not in result.output
    assert f"fdsync@127.0.0.1:{pg_cluster.port}/{name}" in result.stdout
    assert "carries a password" in result.stderr


def test_without_psycopg_a_postgresql_ledger_is_a_configuration_error(
    write_config, run_fd_sync, tmp_path
):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import sys

            class Hide:
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] == "psycopg":
                        raise ModuleNotFoundError(name)

            sys.meta_path.insert(0, Hide())
            """
        )
    )
    config = write_config(sync={"database": "postgresql://fdsync@127.0.0.1:5432/fd"})
    result = run_fd_sync("--config", str(config), "once", env={"PYTHONPATH": str(hide)})
    assert result.code == 78
    assert "pip install 'fd-sync[postgres]'" in one_line(result)


def test_check_reads_a_postgresql_ledger_without_touching_it(
    servicenow, flashduty, write_config, run_fd_sync, pg_cluster
):
    name = pg_cluster.new_database()
    sync = {"database": pg_cluster.url(name), "database_password": postgres.PASSWORD}
    config = write_config(sync=sync)
    first = run_fd_sync("--config", str(config), "check")
    assert first.code == 0, first.output
    assert "ledger" in first.stdout and "PostgreSQL 1" in first.stdout  # its server version
    assert "none yet; the first run creates it" in first.stdout
    assert pg_cluster.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", name) == [
        (0,)
    ]
    assert run_fd_sync("--config", str(config), "once").code == 0
    second = run_fd_sync("--config", str(config), "check")
    assert "a ledger this fd-sync reads (watermark 20" in second.stdout


def test_check_fails_a_database_the_role_cannot_create_the_ledger_in(
    servicenow, flashduty, write_config, run_fd_sync, pg_cluster
):
    name = pg_cluster.new_database(owner="postgres")
    sync = {"database": pg_cluster.url(name), "database_password": postgres.PASSWORD}
    result = run_fd_sync("--config", str(write_config(sync=sync)), "check")
    assert result.code == 78
    assert "GRANT CREATE ON SCHEMA public TO the fd-sync role" in result.stdout


def test_check_and_once_refuse_a_replica_by_name(
    servicenow, flashduty, write_config, run_fd_sync, pg_cluster
):
    name = pg_cluster.new_database()
    primary = write_config(
        name="primary.toml",
        sync={"database": pg_cluster.url(name), "database_password": postgres.PASSWORD},
    )
    assert run_fd_sync("--config", str(primary), "once").code == 0
    replica = pg_cluster.replica()
    try:
        sync = {"database": replica.url(name), "database_password": postgres.PASSWORD}
        config = write_config(name="replica.toml", sync=sync)
        checked = run_fd_sync("--config", str(config), "check")
        assert checked.code == 78 and "is a read-only replica" in checked.stdout
        once = run_fd_sync("--config", str(config), "once")
        assert once.code == 78 and "read-only replica" in one_line(once)
        # status reads what it can, and says it is a replica (issue 23, item 8)
        status = run_fd_sync("--config", str(config), "status")
        assert status.code == 0, status.output
        assert "read-only replica" in status.stdout and "no fd-sync process" not in status.stdout
    finally:
        replica.destroy()
