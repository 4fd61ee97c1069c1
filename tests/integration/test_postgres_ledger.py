"""What only a PostgreSQL ledger has: its failures, its locks, its fencing, its secrets.

Every test runs against a real server (tests/postgres.py); nothing is mocked.
"""

from __future__ import annotations

import pytest

from fd_sync.core.location import PostgresLedger, split_postgres_url
from fd_sync.errors import LockBusy, StorageError
from fd_sync.store import backends
from fd_sync.store.backends.postgres import SessionLost
from fd_sync.store.ledger import Ledger
from tests import postgres


def test_an_unreachable_server_is_temporary_and_named(pg_cluster):
    closed = PostgresLedger(f"postgresql://fdsync@127.0.0.1:{postgres.free_port()}/x")
    with pytest.raises(StorageError) as info:
        Ledger(closed)
    assert info.value.exit_code == 75
    assert "cannot reach the ledger's server at 127.0.0.1:" in str(info.value)


def test_a_wrong_password_is_configuration_with_libpqs_words_and_no_secret(pg_cluster):
    wrong = PostgresLedger(pg_cluster.url(pg_cluster.new_database()), password="not-it-0123")
    with pytest.raises(StorageError) as info:
        Ledger(wrong)
    text = str(info.value)
    assert info.value.exit_code == 78
    assert 'password authentication failed for user "fdsync"' in text
    assert "not-it-0123" not in text and "FD_SYNC_DATABASE_PASSWORD" in text


def test_a_database_the_role_may_not_create_the_schema_in_names_the_grant(pg_cluster):
    foreign = pg_cluster.new_database(owner="postgres")  # public: no CREATE for fdsync
    with pytest.raises(StorageError) as info:
        Ledger(pg_cluster.ledger(foreign))
    assert info.value.exit_code == 78
    assert "GRANT CREATE ON SCHEMA public" in str(info.value)
    assert pg_cluster.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'outbox'", foreign) == [
        (0,)
    ]


def test_a_read_only_database_is_refused_and_named(pg_cluster):
    name = pg_cluster.new_database()
    with Ledger(pg_cluster.ledger(name)):
        pass
    pg_cluster.sql(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    with Ledger(pg_cluster.ledger(name)) as ledger, pytest.raises(StorageError) as info:
        ledger.state.set("watermark", "x")
    assert info.value.exit_code == 78 and "read-only" in str(info.value)


def test_the_run_lock_is_per_deployment_and_belongs_to_the_session(pg_cluster):
    one, two = postgres.fresh_schema(pg_cluster), postgres.fresh_schema(pg_cluster)
    with Ledger.for_writing(one, wait_seconds=0):
        with pytest.raises(LockBusy) as busy, Ledger.for_writing(one, wait_seconds=0):
            pass
        assert "fd-sync" in str(busy.value) and busy.value.exit_code == 75
        with Ledger.for_writing(two, wait_seconds=0):  # another deployment: no wait
            pass
    with Ledger.for_writing(one, wait_seconds=0):  # released at the end
        pass


def test_migrations_wait_for_the_run_lock(pg_cluster):
    location = pg_cluster.ledger(pg_cluster.new_database())
    holder = backends.connect(location, migrate=False)
    try:
        with holder.run_lock(wait_seconds=0):
            with pytest.raises(LockBusy):
                Ledger.for_writing(location, wait_seconds=0).__enter__()
            assert not holder.has_schema  # nobody migrated under the holder's feet
            holder.migrate()  # the holder may
        holder.forget_schema()
        assert holder.has_schema
    finally:
        holder.close()


def test_a_terminated_session_commits_nothing_more_and_frees_the_lock(pg_cluster):
    name = pg_cluster.new_database()
    location = pg_cluster.ledger(name)
    with Ledger.for_writing(location, wait_seconds=0) as ledger:
        ledger.state.set("watermark", "before")
        assert pg_cluster.terminate("fd-sync %", name) == 1
        with pytest.raises(SessionLost) as lost:
            ledger.state.set("watermark", "after the loss")
        assert lost.value.exit_code == 75 and "lost the session" in str(lost.value)
        with Ledger.for_writing(location, wait_seconds=0) as other:  # the lock went with it
            assert other.state.get("watermark") == "before"


def test_a_password_in_the_url_is_taken_out_of_it():
    url, password = split_postgres_url("postgresql://fdsync:s3cr%40t@db:5433/fd?sslmode=require")
    assert password == "s3cr@t"
    assert url == "postgresql://fdsync@db:5433/fd?sslmode=require"
    url, password = split_postgres_url("postgresql://db/fd?password=p4ss-word&sslmode=require")
    assert password == "p4ss-word" and "p4ss" not in url
    assert str(PostgresLedger(url, password="p4ss-word")) == url
    assert "p4ss" not in repr(PostgresLedger(url, password="p4ss-word"))
    with pytest.raises(ValueError, match="names no database"):
        split_postgres_url("postgresql://db")


def test_the_session_carries_keepalives_derived_from_failover_seconds(pg_cluster):
    """The server ends a partitioned leader's session (and frees its lock) by these."""
    location = pg_cluster.ledger(pg_cluster.new_database())
    db = backends.connect(location, migrate=False, keepalive_seconds=30)
    try:
        shown = {
            name: db.scalar(f"SHOW {name}")
            for name in (
                "tcp_keepalives_idle",
                "tcp_keepalives_interval",
                "tcp_keepalives_count",
                "tcp_user_timeout",
            )
        }
    finally:
        db.close()
    assert shown == {
        "tcp_keepalives_idle": "6",
        "tcp_keepalives_interval": "3",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "15000",  # milliseconds
    }


def test_text_compares_byte_by_byte_as_in_sqlite_whatever_the_servers_locale(pg_cluster):
    """Keys, ISO times and bookmarks are compared as strings; en_US would sort 'B' < 'a'
    differently from the code (and from SQLite)."""
    name = f"icu_{pg_cluster.new_database()}"
    pg_cluster.sql(
        f"CREATE DATABASE {name} OWNER {postgres.ROLE} TEMPLATE template0"
        " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    )
    assert pg_cluster.sql("SELECT 'B' < 'a'", name) == [(False,)]  # the server's own order
    with Ledger(pg_cluster.ledger(name)) as ledger:
        for key in ("a", "B", "_", "standby:x"):
            ledger.state.set(key, "v")
        keys = [r[0] for r in ledger.db.rows("SELECT key FROM state ORDER BY key")]
        collations = ledger.db.rows(
            "SELECT DISTINCT collation_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND data_type = 'text'"
            " AND table_name <> 'fd_sync_migrations'"
        )
    assert keys == sorted(["a", "B", "_", "standby:x"])  # Python's order is the bytes'
    assert collations == [("C",)]


def test_a_streaming_replica_is_refused_by_name(pg_cluster):
    name = pg_cluster.new_database()
    with Ledger(pg_cluster.ledger(name)):
        pass  # the schema exists on the primary, and so on the replica
    replica = pg_cluster.replica()
    try:
        location = PostgresLedger(replica.url(name), password=postgres.PASSWORD)
        with pytest.raises(StorageError) as info:
            Ledger(location)
        assert info.value.exit_code == 78
        assert "is a read-only replica (in recovery)" in str(info.value)
        assert "point [sync] database at the primary" in str(info.value)
        with Ledger(location, readonly=True) as reading:  # status may read a replica
            assert reading.summary().incidents_tracked == 0
    finally:
        replica.destroy()


@pytest.mark.parametrize(
    ("url_tail", "said"),
    [
        ("/no_such_database", 'database "no_such_database" does not exist'),
        ("/postgres?sslmode=require", "server does not support SSL"),
    ],
)
def test_what_only_the_configuration_can_fix_is_78_with_libpqs_words(pg_cluster, url_tail, said):
    location = PostgresLedger(
        f"postgresql://fdsync@127.0.0.1:{pg_cluster.port}{url_tail}", password=postgres.PASSWORD
    )
    with pytest.raises(StorageError) as info:
        Ledger(location)
    assert info.value.exit_code == 78
    assert said in str(info.value) and "fix [sync] database" in str(info.value)
