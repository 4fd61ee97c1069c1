"""fd-sync as real subprocesses: the command line, its environment, its result, and the
datagram socket a systemd supervisor listens on."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


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


def is_status(text: str) -> Callable[[dict[str, str]], bool]:
    return lambda m: text in m.get("STATUS", "")
