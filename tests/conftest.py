"""Shared fixtures: the loopback simulators, configuration files, and an fd-sync runner.

Tests talk to real HTTP servers on 127.0.0.1 and a real SQLite file. The
ServiceNow simulator's clock is frozen at a fixed instant and moved by the
tests, which is only possible because fd-sync takes its notion of time from
ServiceNow (``sys_updated_on`` and the ``Date`` header), never from the local
clock.
"""

from __future__ import annotations

import io
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fd_sync import logs, wiring
from fd_sync.config import Config, parse
from fd_sync.core.location import LedgerLocation, PostgresLedger
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim, SimClock
from fd_sync.store.ledger import Ledger
from tests import postgres

START = datetime(2026, 11, 1, 8, 0, 0, tzinfo=UTC)
OUTPUTS: list[str] = []  # every byte fd-sync printed in this session
# The simulators' credentials: no output of any fd-sync process may contain them.
SIMULATOR_SECRETS = (
    ServiceNowSim().password,
    ServiceNowSim().client_secret,
    FlashdutySim().token,
    FlashdutySim().integration_key,
    FlashdutySim().app_key,
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def to_toml(document: dict[str, Any]) -> str:
    lines: list[str] = []
    for section, values in document.items():
        if isinstance(values, list):  # array of tables
            for item in values:
                lines.append(f"[[{section}]]")
                lines.extend(f"{k} = {toml_value(v)}" for k, v in item.items())
                lines.append("")
            continue
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)


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


def base_document(
    servicenow: ServiceNowSim,
    flashduty: FlashdutySim,
    database: LedgerLocation,
    push_format: str,
) -> dict[str, Any]:
    push_url = (
        flashduty.push_url_servicenow
        if push_format == "servicenow"
        else flashduty.push_url_standard
    )
    return {
        "servicenow": {
            "instance_url": servicenow.url,
            "username": servicenow.username,
            "password": servicenow.password,
            "page_size": 50,
            "timeout_seconds": 5,
            "max_attempts": 3,
        },
        "flashduty": {"push_url": push_url, "timeout_seconds": 5, "max_attempts": 3},
        "sync": {"database": str(database), "lookback_seconds": 300, **_password(database)},
    }


def _password(database: LedgerLocation) -> dict[str, str]:
    if isinstance(database, PostgresLedger) and database.password:
        return {"database_password": database.password}
    return {}


def merge(document: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in document.items()}
    for section, values in overrides.items():
        if values is None:
            out.pop(section, None)
        elif isinstance(values, dict) and isinstance(out.get(section), dict):
            for key, value in values.items():
                if value is None:
                    out[section].pop(key, None)
                else:
                    out[section][key] = value
        else:
            out[section] = values
    return out


BOTH_BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module that sets ``BACKENDS = BOTH_BACKENDS`` runs each of its tests that use the
    ledger (the ``database`` fixture) once on SQLite and once on PostgreSQL."""
    backends = getattr(metafunc.module, "BACKENDS", None)
    if backends and "database" in metafunc.fixturenames:
        metafunc.parametrize("database", backends, indirect=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    postgres.stop_shared_cluster()


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerLocation:
    """Where the test's ledger lives: a SQLite file, or a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "postgres":
        cluster = postgres.shared_cluster()
        return cluster.ledger(cluster.new_database())
    return tmp_path / "state" / "fd-sync.db"


def machine_ledger(backend: str, folder: Path) -> LedgerLocation:
    """A new, empty ledger for one hypothesis example (no fixtures there)."""
    if backend == "postgres":
        return postgres.fresh_schema(postgres.shared_cluster())
    return folder / "fd-sync.db"


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


class Sleeps:
    """Records requested sleeps instead of sleeping: retries are checked, not waited for."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@dataclass
class Harness:
    """An in-process fd-sync: the real Cycle, ledger and HTTP clients, without the waits."""

    config: Config
    ledger: Ledger
    sleeps: Sleeps

    def cycle(self, **kwargs: Any) -> Any:
        return wiring.cycle(self.config, self.ledger, sleep=self.sleeps).run(**kwargs)


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


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def fd_sync_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fd_sync", *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FD_SYNC_")}
    # Debug level: the secrets check must hold at every level.
    env.update(
        {"PYTHONUNBUFFERED": "1", "FD_SYNC_LOG_FORMAT": "json", "FD_SYNC_LOG_LEVEL": "debug"}
    )
    env.update(extra or {})
    return env


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


def open_incident(sim: ServiceNowSim, **fields: Any) -> dict[str, str]:
    """Create an incident one second after the previous change (distinct timestamps)."""
    sim.clock.advance(1)
    fields.setdefault("short_description", "Database latency above 2 s")
    fields.setdefault("urgency", "1")
    return sim.create(**fields)


def change(sim: ServiceNowSim, sys_id: str, **fields: Any) -> dict[str, str]:
    sim.clock.advance(1)
    return sim.update(sys_id, **fields)


# --- the daemon under a systemd-like supervisor --------------------------------------------


class NotifySocket:
    """The datagram socket systemd listens on; messages are awaited, not polled for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict[str, str]] = []

    def next(self, timeout: float = 30) -> dict[str, str]:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536).decode()
        message = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        self.messages.append(message)
        return message

    def wait_for(self, predicate, timeout: float = 30) -> dict[str, str]:
        while True:
            message = self.next(timeout)
            if predicate(message):
                return message

    def close(self) -> None:
        self.sock.close()


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


def is_status(text: str) -> Callable[[dict[str, str]], bool]:
    return lambda m: text in m.get("STATUS", "")


LEVELS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked with its level, the folder it lives in (see setup.cfg)."""
    for item in items:
        level = next((p for p in Path(str(item.path)).parts if p in LEVELS), None)
        if level is not None:
            item.add_marker(getattr(pytest.mark, level))
