"""One fd-sync at a time per ledger: an exclusive ``flock`` beside the database.

Two runs delivering from the same outbox would send events twice, so every
command that writes the ledger takes this lock first. The kernel releases it
when the process dies, even by SIGKILL: a crashed run never leaves a stale lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from fd_sync.errors import LockBusy, StorageUnusable

DEFAULT_WAIT_SECONDS = 10.0


class RunLock:
    def __init__(
        self,
        database: Path,
        *,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(f"{database}.lock")
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.sleep = sleep
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StorageUnusable(
                f"{self.path}: cannot create the run lock ({exc.strerror}); the fd-sync user "
                "needs write access to the ledger's folder"
            ) from None
        deadline = self.clock() + self.wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
                if self.clock() >= deadline:
                    os.close(fd)
                    raise LockBusy(
                        f"{self.path}: another fd-sync run holds the ledger (waited "
                        f"{self.wait_seconds:g} s); it will deliver the pending events, "
                        "try again when it is done"
                    ) from None
                self.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """What tells this process apart from a later one that reuses its pid: the boot and the
    process's start time (``/proc/<pid>/stat`` field 22). Recorded by the daemon."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "boot_id": _boot_id(), "start_ticks": _start_ticks(pid)}


def still_running(identity: dict[str, Any]) -> bool:
    """Whether the process a record names is alive and is the one that wrote it."""
    pid = identity.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if identity.get("boot_id") is None and identity.get("start_ticks") is None:
        return _exists(pid)  # recorded without /proc: the pid is all there is to check
    if identity.get("boot_id") != _boot_id():
        return False  # the host rebooted since
    ticks = _start_ticks(pid)
    return ticks is not None and ticks == identity.get("start_ticks")


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # no such process
    # The name in field 2 may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None
