"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, a server on
a loopback port (and a Unix socket in that folder), stopped at the end.

initdb and postgres refuse to run as root, so under root (CI) both run as ``nobody``.
Durability is switched off (fsync, full-page writes): the cluster dies with the test run,
and CREATE DATABASE per test stays cheap. The ledger's role ``fdsync`` logs in with a
password over TCP, as on a real jump host; the tests' superuser uses the socket.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fd_sync.core.location import PostgresLedger

ROLE = "fdsync"
PASSWORD = "pg-test-secret-3141"
_names = itertools.count(1)


def bin_dir() -> Path | None:
    """Debian's layout (/usr/lib/postgresql/<major>/bin), else the PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _major(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def free_port() -> int:
    """A loopback port nobody listens on (for servers the tests start, and closed ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    bindir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fd-sync-pg-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_owner(self) -> dict[str, Any]:
        return {"user": "nobody", "group": _nogroup()} if os.geteuid() == 0 else {}

    def init(self) -> None:
        self.root.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody", _nogroup())
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, cwd=self.root, **self._as_owner(),
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "full_page_writes = off\nsynchronous_commit = off\nmax_connections = 300\n"
                "shared_buffers = 64MB\n"
            )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data)],
            stdout=subprocess.DEVNULL, stderr=(self.root / "server.log").open("ab"),
            cwd=self.root, start_new_session=True, **self._as_owner(),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self._accepting():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {self.log_tail()}")
            time.sleep(0.05)

    def _accepting(self) -> bool:
        done = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", str(self.root), "-p", str(self.port), "-q"],
            check=False,
        )
        return done.returncode == 0

    def stop(self, how: signal.Signals = signal.SIGINT) -> None:
        """SIGINT: PostgreSQL's fast shutdown (sessions ended, work rolled back)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(how)
        self.process.wait(timeout=60)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def replica(self) -> Cluster:
        """A streaming replica of this cluster (pg_basebackup -R), started: read-only, in
        recovery, as a Patroni or managed standby is."""
        copy = Cluster(self.bindir)
        copy.root.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(copy.root, "nobody", _nogroup())
        subprocess.run(
            [str(self.bindir / "pg_basebackup"), "-h", str(self.root), "-p", str(self.port),
             "-U", "postgres", "-D", str(copy.data), "-R", "--no-sync", "--checkpoint=fast"],
            check=True, capture_output=True, cwd=copy.root, **self._as_owner(),
        )  # fmt: skip
        with (copy.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {copy.port}\nunix_socket_directories = '{copy.root}'\n")
        copy.start()
        return copy

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text()[-2000:]
        return ""

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as the superuser, over the Unix socket."""
        import psycopg

        with psycopg.connect(
            host=str(self.root), port=self.port, user="postgres", dbname=database,
            autocommit=True,
        ) as conn:  # fmt: skip
            cursor = conn.execute(statement)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def create_role(self) -> None:
        self.sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")

    def new_database(self, owner: str = ROLE) -> str:
        name = f"ledger_{os.getpid()}_{next(_names)}"
        self.sql(f"CREATE DATABASE {name} OWNER {owner}")
        return name

    def url(self, database: str, user: str = ROLE) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def ledger(self, database: str, password: str | None = PASSWORD) -> PostgresLedger:
        return PostgresLedger(self.url(database), password=password)

    def terminate(self, application_like: str, database: str) -> int:
        """pg_terminate_backend on the sessions whose application name matches."""
        rows = self.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND application_name LIKE '{application_like}'"
        )
        return int(rows[0][0])


def _nogroup() -> str:
    import grp

    for name in ("nogroup", "nobody"):
        with contextlib.suppress(KeyError):
            grp.getgrnam(name)
            return name
    return "65534"


def start_cluster() -> Cluster | None:
    """A running cluster with the ledger role, or None where PostgreSQL is not installed."""
    bindir = bin_dir()
    if bindir is None:
        return None
    cluster = Cluster(bindir)
    cluster.init()
    cluster.start()
    cluster.create_role()
    return cluster


class _Shared:
    cluster: Cluster | None = None


_schemas = itertools.count(1)


def shared_cluster() -> Cluster:
    """This test process's cluster, started on first use (each xdist worker has its own).
    Without PostgreSQL installed the test is skipped, except in CI, where .ci/run installs
    it and its absence is a failure."""
    if _Shared.cluster is None:
        import pytest

        cluster = start_cluster()
        if cluster is None:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is not installed: .ci/run installs it from Debian")
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql, or .ci/run)")
        _Shared.cluster = cluster
    return _Shared.cluster


def stop_shared_cluster() -> None:
    if _Shared.cluster is not None:
        _Shared.cluster.destroy()
        _Shared.cluster = None


def fresh_schema(cluster: Cluster) -> PostgresLedger:
    """An empty ledger in a schema of its own (cheaper than a database per example)."""
    name = f"ledger_{os.getpid()}_{next(_schemas)}"
    database = "schemas"
    if not cluster.sql("SELECT 1 FROM pg_database WHERE datname = 'schemas'"):
        cluster.sql(f"CREATE DATABASE schemas OWNER {ROLE}")
    cluster.sql(f"CREATE SCHEMA {name} AUTHORIZATION {ROLE}", database)
    url = f"{cluster.url(database)}?options=-csearch_path%3D{name}"
    return PostgresLedger(url, password=PASSWORD)
