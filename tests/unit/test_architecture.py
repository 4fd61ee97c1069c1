"""The layout is the architecture: the import rule holds and every package says what it is for.

`make lint` runs lint-imports too; running the contracts here as well means a
broken layer fails the test suite that developers run most (make test-fast).
"""

from __future__ import annotations

import ast
import configparser
import importlib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

import fd_sync

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(fd_sync.__file__).parent
CONTRACTS = ROOT / ".importlinter"
PACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def test_the_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(CONTRACTS), no_cache=True, no_logo=True) == 0


def test_every_package_is_a_layer_of_the_contract():
    contracts = configparser.ConfigParser()
    contracts.read(CONTRACTS)
    layers = contracts["importlinter:contract:layers"]["layers"]
    named = {p.strip().removeprefix("fd_sync.") for line in layers.split() for p in line.split("|")}
    assert set(PACKAGES) - {"simulators"} <= named, "a package outside the layers contract"


def test_core_may_not_do_io():
    contracts = configparser.ConfigParser()
    contracts.read(CONTRACTS)
    pure = contracts["importlinter:contract:pure-core"]
    assert pure["source_modules"].split() == ["fd_sync.core"]
    forbidden = set(pure["forbidden_modules"].split())
    assert {"requests", "sqlite3", "socket", "os", "time", "fd_sync.logs"} <= forbidden


@pytest.mark.parametrize("name", PACKAGES)
def test_every_package_says_what_it_is_for(name):
    module = importlib.import_module(f"fd_sync.{name}")
    assert module.__doc__ and len(module.__doc__.strip()) > 30


def test_no_module_outgrows_a_reading():
    """~400 lines: past that a module holds more than one concern (simulators aside: each
    is one remote's whole documented protocol)."""
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if "simulators" not in p.parts and (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_the_ledger_is_reached_only_through_the_store():
    """sqlite3 and sqlite-utils belong to fd_sync.store: a second backend replaces it alone."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "store" in path.parts or "simulators" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in SQLITE]
    assert offenders == []


SQLITE = {"sqlite3", "sqlite_utils"}


def _transaction_calls(path: Path) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "transaction"
    ]


# The Ledger's steps, the connection's own machinery, and the ledger copy (one transaction
# over a second database) are the only places that open transactions.
COMMITTERS = {
    "store/ledger.py",
    "store/writeback_steps.py",
    "store/records.py",
    "store/remote_state.py",
    "store/commands.py",
    "store/ticket_steps.py",
    "store/db.py",
    "store/copy.py",
}


def test_only_the_ledger_commits():
    """Who commits is never a per-method convention: table objects and every module outside
    the store call a named Ledger step, whose docstring states its crash argument."""
    offenders = {
        f"{rel}:{line}"
        for path in PACKAGE.rglob("*.py")
        if "simulators" not in path.parts
        and (rel := str(path.relative_to(PACKAGE))) not in COMMITTERS
        and not rel.startswith("store/backends/")
        for line in _transaction_calls(path)
    }
    assert offenders == set()


def test_every_queue_shares_one_lifecycle():
    """Each queue implements its two primitives (columns, decode); pending, attempted,
    delivered, dead, retry, drop and purge are written once, in DurableQueue."""
    from fd_sync.store.commands import CommandQueue
    from fd_sync.store.outbox import Outbox
    from fd_sync.store.queue import DurableQueue
    from fd_sync.store.writeback import WritebackQueue

    shared = {"pending", "items", "get", "mark_attempt", "mark_delivered", "mark_failed"}
    shared |= {"retry_dead", "drop", "purge_finished", "counts", "cancel"}
    for queue in (Outbox, WritebackQueue, CommandQueue):
        assert issubclass(queue, DurableQueue)
        assert not shared & set(vars(queue)), f"{queue.__name__} rewrites the lifecycle"
        assert {"columns", "decode"} <= set(vars(queue))
