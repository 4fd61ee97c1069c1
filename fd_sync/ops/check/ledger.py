"""The ledger: its folder writable, the file an fd-sync ledger of a known schema, the lock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fd_sync.errors import EX_CONFIG, LockBusy, StorageError
from fd_sync.ops.check.steps import Step, fail, ok
from fd_sync.store.db import write_problem
from fd_sync.store.ledger import Ledger
from fd_sync.store.lock import RunLock
from fd_sync.store.state import WATERMARK

if TYPE_CHECKING:
    from fd_sync.ops.check import Checker


def check(c: Checker) -> None:
    path = c.config.sync.database
    problem = write_problem(path)
    if problem:
        c.add(fail("ledger", "write", problem, "a real run would exit 78", EX_CONFIG))
        return
    c.add(ok("ledger", "write", f"{path.parent} is writable"))
    if path.exists():
        try:
            with Ledger(path, readonly=True) as ledger:
                watermark = ledger.state.get(WATERMARK)
        except StorageError as exc:
            c.add(fail("ledger", "schema", str(exc), "see the message", exc.exit_code))
            return
        c.add(
            ok("ledger", "schema", f"{path}: a ledger this fd-sync reads (watermark {watermark})")
        )
    else:
        c.add(ok("ledger", "schema", f"{path}: none yet; the first run creates it"))
    try:
        with RunLock(path, wait_seconds=0):
            pass
    except LockBusy:
        c.add(
            Step("ledger", "lock", "warn", "held by a running fd-sync (expected with the daemon)")
        )
        return
    except StorageError as exc:
        c.add(fail("ledger", "lock", str(exc), "see the message", exc.exit_code))
        return
    c.add(ok("ledger", "lock", "free"))
