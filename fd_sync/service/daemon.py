"""``fd-sync run``: the cycle of ``once`` on a schedule, as a systemd service.

Concurrency contract: cycles run one at a time in APScheduler's worker thread
(``max_instances=1``, ``coalesce=True``: a slow cycle delays the next instead of
stacking them). Signal handlers run in the main thread and only set events or
swap in a validated configuration, which the next cycle picks up. The watchdog
thread only reads the time of the last progress. The run lock is taken per
cycle, not for the daemon's life, so an ``fd-sync once`` started by hand or by
cron runs between two cycles instead of being refused for as long as the
daemon lives; neither can double-send.

Failures: a cycle that fails (ServiceNow or Flashduty down) is logged and the
next interval tries again; the daemon itself exits only for a bad
configuration at start (78) or a stop signal (0). ServiceNow 401/403 pause
fetching with a doubling back-off up to 30 minutes, so repeated bad logins
never lock the integration account; the outbox keeps draining meanwhile.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler

from fd_sync import config as config_module
from fd_sync import logs, wiring
from fd_sync.config import Config
from fd_sync.config.sections import METRICS_PACKAGE_MISSING
from fd_sync.core.feed import Person
from fd_sync.errors import (
    AccessDenied,
    ConfigError,
    FdSyncError,
    LockBusy,
    StorageError,
    StorageUnavailable,
)
from fd_sync.http.transport import interruptible_sleep
from fd_sync.service.leadership import Leadership
from fd_sync.service.lifecycle import (
    AuthBackoff,
    daemon_record,
    refuse_a_second_daemon,
    restart_needed,
)
from fd_sync.service.sdnotify import Notifier
from fd_sync.service.watchdog import Watchdog
from fd_sync.store import backends
from fd_sync.store.state import DAEMON
from fd_sync.sync.pacing import Pacing
from fd_sync.sync.report import CycleReport

STOP_GRACE_SECONDS = 25.0  # systemd's default stop timeout is 90 s; the issue promises 30


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        config_path: str | None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.log = logs.get("daemon")
        self.people: dict[int, Person] = {}  # Flashduty's names, for the write-back's notes
        self.pacing: Pacing | None = None  # both APIs' budgets, for the life of the daemon
        self.stop_event = threading.Event()
        self.watchdog = Watchdog(
            self.notifier, config.sync.stall_seconds, stop=self.stop_event, clock=clock
        )
        self.pending_config: Config | None = None
        self.backoff = AuthBackoff()
        self.last_status = "starting"
        self.scheduler = BlockingScheduler(timezone=UTC)
        self.metrics: Any = None
        self.leadership = Leadership(
            config.sync.database,
            failover_seconds=config.sync.failover_seconds,
            on_change=self._on_leadership,
        )
        # Open once now, so that READY=1 means the ledger is usable (SQLite: migrated too;
        # PostgreSQL migrates only under the run lock, once this process leads). A SQLite
        # cycle then opens its own connection in the scheduler's thread: sqlite3
        # connections belong to the thread that made them.
        try:
            backends.connect(config.sync.database, migrate=not self.leadership.shared).close()
        except StorageUnavailable as exc:
            if not self.leadership.shared:
                raise
            # A shared ledger's server may be down while this host boots: stand by until
            # it answers (a refused login or a missing privilege still stops us: 78).
            self.log.warning("ledger_unreachable_at_start", error=str(exc), next="standing by")

    # --- lifecycle ----------------------------------------------------------------------

    def run(self) -> int:
        self._refuse_a_second_daemon()
        self._start_metrics()
        self._install_signal_handlers()
        self._schedule(first_run=datetime.now(UTC))
        interval = self.config.sync.poll_interval_seconds
        if self.leadership.shared:
            if self.metrics is not None:
                self.metrics.leadership(False, 0)
            self.leadership.tick()  # leader or standby before READY=1 says which
            self.scheduler.add_job(
                self.leadership.tick,
                "interval",
                seconds=self.leadership.poll_seconds,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                id="leadership",
            )
        self._write_state(started=True)
        if self.leadership.leader:
            self.notifier.ready(f"polling every {interval} s; first cycle now")
        else:
            self.notifier.ready(self.leadership.describe())
        self.log.info(
            "daemon_started",
            pid=os.getpid(),
            poll_interval_seconds=interval,
            database=str(self.config.sync.database),
        )
        watchdog = self.watchdog.start()
        if not self.stop_event.is_set():  # a signal may have come during start-up
            self.scheduler.start()  # blocks until a stop signal shuts it down
        return self._finish(watchdog)

    def _refuse_a_second_daemon(self) -> None:
        if not self.leadership.shared:  # PostgreSQL: a second daemon stands by instead
            with self.leadership.state() as records:
                if records is not None:
                    refuse_a_second_daemon(records, self.config.sync.database)

    def _finish(self, watchdog: threading.Thread | None) -> int:
        self.notifier.stopping("stopping: finishing the cycle in progress")
        if not self.watchdog.idle.wait(STOP_GRACE_SECONDS):
            # Nothing is half-written: every ledger write is a transaction, and an event
            # marked attempted but not delivered is simply sent again next time.
            self.log.warning("daemon_abandoning_cycle", grace_seconds=STOP_GRACE_SECONDS)
            if not self.leadership.shared:  # a shared session is the stuck cycle's own
                self._write_state(started=False)  # a clean stop, not a crash
            logging.shutdown()
            os._exit(0)
        if watchdog is not None:
            watchdog.join(timeout=1)
        if self.metrics is not None:
            self.metrics.stop()
        self._write_state(started=False)
        self.leadership.stop()
        self.log.info("daemon_stopped")
        return 0

    def _schedule(self, first_run: datetime | None = None) -> None:
        interval = self.config.sync.poll_interval_seconds
        kwargs: dict[str, Any] = {}
        if first_run is not None:
            kwargs["next_run_time"] = first_run
        self.scheduler.add_job(
            self._cycle_job,
            "interval",
            seconds=interval,
            jitter=min(5.0, interval * 0.1),  # many daemons should not poll in lockstep
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id="cycle",
            replace_existing=True,
            **kwargs,
        )

    def _start_metrics(self) -> None:
        listen = self.config.metrics.listen
        if listen is None:
            return
        try:
            from fd_sync.service.metrics import Metrics
        except ImportError:
            raise ConfigError(
                f"{self.config.path}: [metrics] listen: {METRICS_PACKAGE_MISSING}"
            ) from None

        self.metrics = Metrics(poll_interval=self.config.sync.poll_interval_seconds)
        self.metrics.start(*listen)
        self.log.info("metrics_listening", host=listen[0], port=self.metrics.port)

    # --- signals ------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_event.is_set():
            return
        self.log.info("daemon_stopping", signal=signal.Signals(signum).name)
        self.stop_event.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.notifier.reloading()
        try:
            new = config_module.load(self.config_path)
        except ConfigError as exc:
            # Keep polling with the configuration that works.
            self.log.error(
                "config_reload_failed", error=str(exc), keeping="the previous configuration"
            )
            self.notifier.ready(f"reload failed, still running the previous configuration: {exc}")
            return
        moved = restart_needed(self.config, new)
        if moved:
            # A reload that moved the ledger would start a fresh baseline there and abandon
            # every open alert of this one: only a restart may change where the state is.
            why = (
                f"{moved} changed: restart fd-sync to use it; "
                "still running the previous configuration"
            )
            self.log.error("config_reload_refused", reason=why)
            self.notifier.ready(f"reload refused: {why}")
            return
        self.pending_config = new
        if new.sync.poll_interval_seconds != self.config.sync.poll_interval_seconds:
            self.scheduler.reschedule_job(
                "cycle",
                trigger="interval",
                seconds=new.sync.poll_interval_seconds,
                jitter=min(5.0, new.sync.poll_interval_seconds * 0.1),
            )
        self.log.info("config_reloaded", path=str(new.path), note="applies from the next cycle")
        self.notifier.ready(f"configuration reloaded; {self.last_status}")

    def _apply_pending_config(self) -> None:
        new, self.pending_config = self.pending_config, None
        if new is None:
            return
        self.config = new
        self.pacing = None  # new budgets; the ServiceNow hour is read back from the ledger
        self.backoff.clear()  # new credentials deserve a try

    # --- the cycle ----------------------------------------------------------------------

    def _cycle_job(self) -> None:
        if self.stop_event.is_set():
            return
        self.watchdog.cycle_started()
        try:
            self._apply_pending_config()
            ran = self._run_cycle()
            if ran is None:
                return  # standing by: the leader runs the cycles
            # Before the cycle counts as finished: a stop waits for that, then records
            # itself, and a "running" record written after it would read as a crash.
            self._after_cycle(*ran)
        except LockBusy as exc:
            self.log.info("cycle_skipped", reason=str(exc))
            return
        except StorageError as exc:
            self._set_status(f"ledger problem: {exc}")
            self.log.error("cycle_failed", error=str(exc), exit_code=exc.exit_code)
            return
        except Exception:
            # A bug: keep the daemon up (the next cycle may well work) but make it loud.
            self.log.exception("cycle_crashed")
            self._set_status("last cycle crashed; see the journal")
            return
        finally:
            self.watchdog.cycle_finished()

    def _run_cycle(self) -> tuple[CycleReport, bool] | None:
        config = self.config
        now = self.clock()
        fetch = now >= self.backoff.until
        if not fetch:
            self.log.info(
                "fetch_paused",
                reason=self.backoff.reason,
                resume_in_seconds=round(self.backoff.until - now),
            )
        sleep = interruptible_sleep(self.stop_event)
        with self.leadership.cycle_ledger() as ledger:
            if ledger is None:
                return None
            if self.pacing is None:
                self.pacing = wiring.pacing(config, ledger)
            cycle = wiring.cycle(
                config,
                ledger,
                sleep=sleep,
                should_stop=self.stop_event.is_set,
                progress=self.watchdog.progress,
                people=self.people,
                paced=self.pacing,
            )
            return cycle.run(command="run", fetch=fetch), fetch

    def _after_cycle(self, report: CycleReport, fetched: bool) -> None:
        if isinstance(report.error, AccessDenied):
            pause = self.backoff.record(
                self.clock(), self.config.sync.poll_interval_seconds, str(report.error)
            )
            self.log.warning("fetch_paused_after_access_denied", pause_seconds=pause)
        elif fetched and not isinstance(report.error, AccessDenied):
            self.backoff.clear()  # ServiceNow accepted us again
        if self.metrics is not None:
            self.metrics.observe(report, self.pacing)
        self._pace(report)
        when = datetime.now(UTC).strftime("%H:%M:%S")
        status = f"last cycle {when} {report.outcome}: {report.summary()}"
        if report.error is not None:
            status = f"last cycle {when} {report.outcome}: {report.error}"
        if self.backoff.failures:
            status += f"; fetching paused for {self.backoff.until - self.clock():.0f} s"
        self._set_status(status)
        self._write_state(started=True)

    def _pace(self, report: CycleReport) -> None:
        """A budget that cannot pay for a cycle every interval moves the next one later."""
        interval = report.interval
        if interval is None or interval <= self.config.sync.poll_interval_seconds:
            return
        wait = max(0.0, interval - report.seconds)
        if self.scheduler.running:
            self.scheduler.modify_job(
                "cycle", next_run_time=datetime.now(UTC) + timedelta(seconds=wait)
            )

    def _on_leadership(self, leader: bool, description: str) -> None:
        """Called from the leadership tick (or a cycle that lost the session)."""
        if self.metrics is not None:
            self.metrics.leadership(leader, self.leadership.failovers)
        if leader:
            self._set_status(f"leader since {self.leadership.since}; first cycle now")
            if self.scheduler.running:
                self.scheduler.modify_job("cycle", next_run_time=datetime.now(UTC))
        else:
            self._set_status(description)

    def _set_status(self, status: str) -> None:
        self.last_status = status
        self.notifier.status(status)

    def _write_state(self, *, started: bool) -> None:
        """What `fd-sync status` shows about the daemon, beyond the runs table."""
        if not self.leadership.leader:
            return  # the leader's record is the one status shows; standbys check in
        paused = self.backoff.paused_until(self.clock()) if self.backoff.failures else None
        record = daemon_record(
            started=started,
            interval=self.config.sync.poll_interval_seconds,
            status=self.last_status,
            shared=self.leadership.shared,
            paused=(paused, self.backoff.reason) if paused else None,
        )
        try:
            # Outside the run lock: a small state write, serialised by the engine itself.
            with self.leadership.state() as records:
                if records is not None:
                    records.set_json(DAEMON, record.to_json())
        except FdSyncError as exc:
            self.log.warning("daemon_state_not_saved", error=str(exc))


def run(config: Config, *, config_path: str | None) -> int:
    logs.route_stdlib_logging()
    return Daemon(config, config_path=config_path).run()
