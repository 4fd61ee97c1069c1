"""The ledger: writable where it lives, of a schema this fd-sync knows, and who holds it.

SQLite: the folder writable, the file a known schema, the flock. PostgreSQL: the server
reached and logged into, a primary (not a replica), the schema there or the right to
create it, and which process leads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fd_sync.core.location import PostgresLedger
from fd_sync.errors import EX_CONFIG, LockBusy, StorageError
from fd_sync.ops.check.steps import Step, fail, ok
from fd_sync.store import backends
from fd_sync.store.backends.sqlite import write_problem
from fd_sync.store.ledger import Ledger
from fd_sync.store.lock import RunLock
from fd_sync.store.state import WATERMARK, State

if TYPE_CHECKING:
    from fd_sync.ops.check import Checker


def check(c: Checker) -> None:
    path = c.config.sync.database
    if isinstance(path, PostgresLedger):
        check_postgres(c, path)
        return
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


def check_postgres(c: Checker, location: PostgresLedger) -> None:
    try:
        db = backends.connect(location, readonly=True, allow_empty=True)
    except StorageError as exc:
        c.add(fail("ledger", "connect", str(exc), "see the message", exc.exit_code))
        return
    try:
        version = db.scalar("SHOW server_version")
        c.add(ok("ledger", "connect", f"{location.host}: PostgreSQL {version}, logged in"))
        if db.scalar("SELECT pg_is_in_recovery()"):
            why = f"{location}: is a read-only replica; point [sync] database at the primary"
            c.add(fail("ledger", "primary", why, "a real run would exit 78", EX_CONFIG))
            return
        if db.has_schema:
            watermark = State(db).get(WATERMARK)
            c.add(ok("ledger", "schema", f"a ledger this fd-sync reads (watermark {watermark})"))
        elif db.scalar("SELECT has_schema_privilege(current_schema(), 'CREATE')"):
            c.add(ok("ledger", "schema", "none yet; the first run creates it"))
        else:
            schema = db.scalar("SELECT current_schema()")
            why = (
                f"{location}: no ledger yet, and the role may not create one: "
                f"GRANT CREATE ON SCHEMA {schema} TO the fd-sync role"
            )
            c.add(fail("ledger", "schema", why, "a real run would exit 78", EX_CONFIG))
            return
        holder = db.lock_holder("leader") or db.lock_holder("run")
        if holder:
            c.add(Step("ledger", "lock", "warn", f"held by {holder} (expected with the daemon)"))
        else:
            c.add(ok("ledger", "lock", "free"))
    except StorageError as exc:
        c.add(fail("ledger", "read", str(exc), "see the message", exc.exit_code))
    finally:
        db.close()
