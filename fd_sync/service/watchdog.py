"""systemd's watchdog: fed while cycles make progress, starved when one hangs.

A cycle reports progress after each page and each event; a cycle quiet for longer than
``[sync] stall_seconds`` stops the pings, so systemd restarts the daemon (and the status
line says why). Between cycles the daemon is idle and always counts as healthy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from fd_sync import logs
from fd_sync.service.sdnotify import Notifier


class Watchdog:
    def __init__(
        self,
        notifier: Notifier,
        stall_seconds: float,
        *,
        stop: threading.Event,
        clock: Callable[[], float],
    ) -> None:
        self.notifier = notifier
        self.stall_seconds = stall_seconds
        self.stop = stop
        self.clock = clock
        self.idle = threading.Event()  # set between cycles
        self.idle.set()
        self.last_progress = clock()
        self.log = logs.get("daemon")

    def cycle_started(self) -> None:
        self.idle.clear()
        self.progress()

    def cycle_finished(self) -> None:
        self.idle.set()

    def progress(self) -> None:
        self.last_progress = self.clock()

    def stalled_for(self) -> float | None:
        """Seconds the running cycle has gone without progress, if past the stall limit."""
        if self.idle.is_set():
            return None
        quiet = self.clock() - self.last_progress
        return quiet if quiet > self.stall_seconds else None

    def start(self) -> threading.Thread | None:
        """Ping systemd every WATCHDOG_USEC/2 while healthy; None when systemd asks none."""
        interval = self.notifier.watchdog_interval
        if interval is None:
            return None

        def feed() -> None:
            reported = False
            while not self.stop.wait(interval):
                stalled = self.stalled_for()
                if stalled is None:
                    self.notifier.watchdog()
                    reported = False
                elif not reported:
                    # Starve the watchdog: systemd will restart us, and should know why.
                    self.log.error("cycle_stalled", quiet_seconds=round(stalled))
                    self.notifier.status(f"stalled: no progress for {stalled:.0f} s")
                    reported = True

        thread = threading.Thread(target=feed, name="watchdog", daemon=True)
        thread.start()
        return thread
