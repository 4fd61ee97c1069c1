"""Which fd-sync process of a deployment runs cycles, and on which connection.

SQLite (one host): this process, always; each cycle takes the file lock and opens the
ledger, as before high availability existed. PostgreSQL: the process whose session
holds the deployment's leader lock (a session-level advisory lock). A standby keeps its
own session, tries the lock every ``poll_seconds`` and checks in; the leader runs every
cycle through the session that holds the lock, so losing the session is losing the
right to commit — and with the outbox's commit-before-send, the right to send.

Threads: the scheduler runs the cycle job and :meth:`Leadership.tick` in different
worker threads; ``self.busy`` keeps them off the one session at the same time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

from fd_sync import logs
from fd_sync.core.location import LedgerLocation, PostgresLedger
from fd_sync.errors import StorageError
from fd_sync.store import backends
from fd_sync.store.db import Database
from fd_sync.store.ledger import Ledger
from fd_sync.store.lock import DEFAULT_WAIT_SECONDS, RunLock
from fd_sync.store.records import LeaderRecord, ProcessId, StandbyRecord, now_iso
from fd_sync.store.state import STANDBY_CHECK_IN_SECONDS, State

if TYPE_CHECKING:  # psycopg is imported only for a PostgreSQL ledger
    from fd_sync.store.backends.postgres import PostgresDatabase


class Leadership:
    def __init__(
        self,
        location: LedgerLocation,
        *,
        failover_seconds: float,
        on_change: Callable[[bool, str], None] = lambda leader, why: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.shared = isinstance(location, PostgresLedger)
        self.failover_seconds = failover_seconds
        self.poll_seconds = min(1.0, failover_seconds / 10)
        self.on_change = on_change
        self.clock = clock
        self.log = logs.get("leadership")
        self.busy = threading.Lock()  # the session is used by one thread at a time
        self.session: PostgresDatabase | None = None
        self.leader = not self.shared
        self.since = now_iso()
        self.failovers = 0
        self.standing_by_since: str | None = None
        self.last_check_in = -STANDBY_CHECK_IN_SECONDS
        self.last_problem = ""

    # --- what the daemon asks -------------------------------------------------------------

    def tick(self) -> None:
        """Stand by (try the lock, check in) or, as leader, make sure the session lives."""
        if not self.shared or not self.busy.acquire(blocking=False):
            return  # a cycle is running on the session: it notices a loss itself
        try:
            if self.leader:
                self._heartbeat()
            else:
                self._try_to_lead()
        finally:
            self.busy.release()

    @contextlib.contextmanager
    def cycle_ledger(self) -> Iterator[Ledger | None]:
        """The ledger a cycle runs on, under the run lock; None while standing by."""
        if not isinstance(self.location, PostgresLedger):
            with RunLock(self.location), Ledger(self.location) as ledger:
                yield ledger
            return
        with self.busy:
            if not self.leader or self.session is None:
                yield None
                return
            session = self.session
            try:
                with session.run_lock(wait_seconds=DEFAULT_WAIT_SECONDS):
                    yield Ledger(session)
            except StorageError as exc:
                if session.lost:
                    self._step_down(str(exc))
                raise
            if session.lost:  # a cycle that reported the loss instead of raising it
                self._step_down("the session ended during the cycle")

    @contextlib.contextmanager
    def state(self) -> Iterator[State | None]:
        """The ledger's state table, for the daemon's status record (None: unreachable)."""
        if not self.shared:
            with Ledger(self.location) as ledger:
                yield ledger.state
            return
        with self.busy:
            yield State(self.session) if self.session is not None else None

    def describe(self) -> str:
        """The systemd status of a standby: who leads, and since when."""
        if self.leader:
            return "leader"
        leader = self._leader()
        if leader is not None and not leader.stopped_at:
            return f"standby (leader: {leader.process} since {leader.since})"
        if self.last_problem:
            return f"standby ({self.last_problem})"
        return "standby (no leader yet)"

    def stop(self) -> None:
        """A clean stop: say so, so that the next leader does not count a failover."""
        if not self.shared:
            return
        with self.busy:
            if self.session is None:
                return
            with contextlib.suppress(StorageError):
                ledger = Ledger(self.session)
                if self.leader:
                    ledger.record_leader_stopped(ProcessId.current(), now_iso())
                else:
                    ledger.check_out(ProcessId.current())
            self.session.close()
            self.session = None

    # --- standing by ----------------------------------------------------------------------

    def _connect(self) -> PostgresDatabase | None:
        if self.session is not None and not self.session.lost:
            return self.session
        if self.session is not None:
            self.session.close()
            self.session = None
        try:
            session = backends.connect(
                self.location,
                migrate=False,
                keepalive_seconds=self.failover_seconds,
                application="fd-sync standby",
            )
            self.session = cast("PostgresDatabase", session)
        except StorageError as exc:
            self._problem(f"ledger unreachable: {exc}")
            return None
        return self.session

    def _try_to_lead(self) -> None:
        session = self._connect()
        if session is None:
            return
        try:
            if not session.try_lock("leader"):
                self._check_in(session)
                if self.standing_by_since is None:
                    self.standing_by_since = now_iso()
                    self.on_change(False, self.describe())
                return
            self._take_over(session)
        except StorageError as exc:
            self._problem(str(exc))

    def _take_over(self, session: PostgresDatabase) -> None:
        started = self.clock()
        with session.run_lock(wait_seconds=self.failover_seconds):
            session.migrate()  # under the run lock: an older leader is gone by now
        session.forget_schema()  # whatever this session saw while standing by is stale
        me = ProcessId.current()
        since = now_iso()
        previous, failover = Ledger(session).record_leader(LeaderRecord(me.host, me.pid, since))
        if failover is not None:  # the previous leader died leading
            self.failovers += 1
        session.rename("fd-sync leader")
        self.leader = True
        self.since = since
        self.standing_by_since = None
        self.last_problem = ""
        self.log.info(
            "leader_elected",
            previous=str(previous.process) if previous else None,
            failover=failover is not None,
            seconds=round(self.clock() - started, 3),
        )
        self.on_change(True, "leader")

    def _check_in(self, session: Database) -> None:
        if self.clock() - self.last_check_in < STANDBY_CHECK_IN_SECONDS:
            return
        if not session.table_columns("state"):
            return  # the first leader is still creating the schema
        self.last_check_in = self.clock()
        me = ProcessId.current()
        Ledger(session).check_in(
            StandbyRecord(me.host, me.pid, self.standing_by_since or now_iso(), now_iso())
        )
        self.log.debug("standby_checked_in", leader=self.describe())

    # --- leading --------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        if self.session is None:
            self._step_down("no session")
            return
        try:
            self.session.scalar("SELECT 1", doing="keep the leader's session")
        except StorageError as exc:
            self._step_down(str(exc))

    def _step_down(self, why: str) -> None:
        """The session is gone, and the lock with it: act no more, stand by again."""
        if not self.leader:
            return
        self.leader = False
        self.log.error("leader_lost_session", error=why, next="standing by")
        if self.session is not None:
            self.session.close()
            self.session = None
        self._problem(f"lost the leader's session: {why}")
        self.standing_by_since = None
        self.on_change(False, self.describe())

    def _problem(self, why: str) -> None:
        if why != self.last_problem:
            self.log.warning("standby_problem", problem=why)
        self.last_problem = why

    def _leader(self) -> LeaderRecord | None:
        if self.session is None:
            return None
        try:
            return Ledger(self.session).leader()
        except StorageError:
            return None
