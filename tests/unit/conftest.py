"""Unit tests are pure: a test here that opens a connection or starts a process fails."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError(
        "a unit test opened a socket or a process: it belongs in tests/integration "
        "(loopback HTTP, SQLite) or tests/system (subprocesses)"
    )


@pytest.fixture(autouse=True)
def _no_sockets_no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "bind", _refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse)
