"""Fixtures: the loopback simulators, configuration files, ledgers and fd-sync runners
(built from :mod:`tests.helpers`, where everything that is not a fixture lives).

Tests talk to real HTTP servers on 127.0.0.1 and a real SQLite file. The
ServiceNow simulator's clock is frozen at a fixed instant and moved by the
tests, which is only possible because fd-sync takes its notion of time from
ServiceNow (``sys_updated_on`` and the ``Date`` header), never from the local
clock.
"""

from __future__ import annotations

import io
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fd_sync import logs
from fd_sync.config import Config, parse
from fd_sync.core.location import LedgerLocation
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim, SimClock
from fd_sync.store.ledger import Ledger
from tests import postgres
from tests.helpers.config import base_document, merge, to_toml
from tests.helpers.cycle import Harness, Sleeps
from tests.helpers.ledgers import BACKENDS
from tests.helpers.processes import NotifySocket, Result, child_env, fd_sync_command
from tests.helpers.simulated import START

OUTPUTS: list[str] = []  # every byte fd-sync printed in this session
# The simulators' credentials: no output of any fd-sync process may contain them.
SIMULATOR_SECRETS = (
    ServiceNowSim().password,
    ServiceNowSim().client_secret,
    FlashdutySim().token,
    FlashdutySim().integration_key,
    FlashdutySim().app_key,
)


@pytest.fixture(autouse=True)
def _logs_without_secrets() -> Iterator[io.StringIO]:
    """Every in-process log line, at every level, is kept and checked for secrets."""
    buffer = io.StringIO()
    logs.configure("debug", stream=buffer, json=True)
    yield buffer
    text = buffer.getvalue()
    OUTPUTS.append(text)
    for secret in SIMULATOR_SECRETS:
        assert secret not in text, "a secret reached fd-sync's log"


@pytest.fixture
def sn_clock() -> SimClock:
    return SimClock(START, ticking=False)


@pytest.fixture
def servicenow(sn_clock: SimClock) -> Iterator[ServiceNowSim]:
    with ServiceNowSim(clock=sn_clock) as sim:
        yield sim  # type: ignore[misc]


@dataclass
class TlsPair:
    """A test CA (its PEM file for [http] ca_bundle) and a server context it signed."""

    ca_file: Path
    server_context: ssl.SSLContext


@pytest.fixture
def tls(tmp_path: Path) -> TlsPair:
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsPair(ca_file, context)


@pytest.fixture
def flashduty() -> Iterator[FlashdutySim]:
    with FlashdutySim() as sim:
        yield sim  # type: ignore[misc]


@pytest.fixture(params=["servicenow", "standard"])
def push_format(request: pytest.FixtureRequest) -> str:
    return request.param


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``@pytest.mark.backends("sqlite", "postgres")`` (on a test, or a module's
    ``pytestmark``) runs a test that uses the ledger (the ``database`` fixture) once on
    each engine named."""
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is None or "database" not in metafunc.fixturenames:
        return
    unknown = set(marker.args) - set(BACKENDS)
    assert not unknown, f"@pytest.mark.backends: no such engine {sorted(unknown)}"
    metafunc.parametrize("database", marker.args, indirect=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    postgres.stop_shared_cluster()


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerLocation:
    """Where the test's ledger lives: a SQLite file, or a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "postgres":
        cluster = postgres.shared_cluster()
        return cluster.ledger(cluster.new_database())
    return tmp_path / "state" / "fd-sync.db"


@pytest.fixture
def pg_cluster() -> postgres.Cluster:
    return postgres.shared_cluster()


@pytest.fixture
def write_config(
    tmp_path: Path, servicenow: ServiceNowSim, flashduty: FlashdutySim, database: Path
) -> Callable[..., Path]:
    """Write a config for the simulators; keyword sections override keys (None removes)."""

    def write(push_format: str = "standard", name: str = "config.toml", **overrides: Any) -> Path:
        document = merge(base_document(servicenow, flashduty, database, push_format), overrides)
        path = tmp_path / name
        path.write_text(to_toml(document))
        path.chmod(0o600)
        return path

    return write


@pytest.fixture
def make_config(
    tmp_path: Path, servicenow: ServiceNowSim, flashduty: FlashdutySim, database: Path
) -> Callable[..., Config]:
    """A validated Config for in-process cycles."""

    def make(push_format: str = "standard", **overrides: Any) -> Config:
        document = merge(base_document(servicenow, flashduty, database, push_format), overrides)
        return parse(document, path=tmp_path / "config.toml", env={})

    return make


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def harness(make_config: Callable[..., Config], sleeps: Sleeps) -> Callable[..., Harness]:
    opened: list[Ledger] = []

    def build(push_format: str = "standard", **overrides: Any) -> Harness:
        config = make_config(push_format, **overrides)
        ledger = Ledger(config.sync.database)
        opened.append(ledger)
        return Harness(config, ledger, sleeps)

    yield build  # type: ignore[misc]
    for ledger in opened:
        ledger.close()


@pytest.fixture
def run_fd_sync() -> Callable[..., Result]:
    """Run the real command in a subprocess; its output is kept for the secrets check."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        done = subprocess.run(  # noqa: PLW1510 - tests check the exit code
            fd_sync_command(*args),
            capture_output=True,
            text=True,
            env=child_env(env),
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        OUTPUTS.append(output)
        for secret in SIMULATOR_SECRETS:
            assert secret not in output, "a secret reached fd-sync's output"
        return Result(done.returncode, done.stdout, done.stderr)

    return run


# --- the daemon under a systemd-like supervisor --------------------------------------------


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


@pytest.fixture
def daemon(notify, write_config):
    started: list[subprocess.Popen] = []

    def start(config: Path | None = None, env: dict[str, str] | None = None, **overrides):
        config = config or write_config(sync={"poll_interval_seconds": 1}, **overrides)
        proc = subprocess.Popen(
            fd_sync_command("--config", str(config), "run"),
            env=child_env({"NOTIFY_SOCKET": str(notify.path), **(env or {})}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


LEVELS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked with its level, the folder it lives in (see setup.cfg)."""
    for item in items:
        level = next((p for p in Path(str(item.path)).parts if p in LEVELS), None)
        if level is not None:
            item.add_marker(getattr(pytest.mark, level))
