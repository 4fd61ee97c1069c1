"""Pacing: both APIs' budgets, and the poll interval they allow. One for the process.

The daemon keeps one :class:`Pacing` for its life and hands it to every cycle; ``once``
makes one per run. The ServiceNow budget's last hour is kept in the ledger (state key
``api_budgets``) so that the next ``once``, or the next leader, counts it too, and
``status`` reads it from there.

The interval: the configured ``poll_interval_seconds``, stretched when the ServiceNow
budget cannot pay for a cycle that often (:meth:`RequestBudget.interval`, from the mean
cost of recent cycles). The log says so once when the stretch begins and once when it
ends, not every cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fd_sync import logs
from fd_sync.core.cadence import Selection, Watch
from fd_sync.core.watermark import parse_sn_time
from fd_sync.flashduty.budget import OpenAPIBudget
from fd_sync.servicenow.budget import RequestBudget
from fd_sync.store.links import Activity

SMOOTHING = 0.3  # weight of the newest cycle in the mean cost a cycle


class Pacing:
    def __init__(
        self,
        *,
        poll_interval: float,
        servicenow_per_hour: int,
        openapi_per_minute: int,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.configured = float(poll_interval)
        self.interval = float(poll_interval)  # the effective one: what the next wait is
        self.servicenow = RequestBudget(servicenow_per_hour, clock=wall)
        self.openapi = OpenAPIBudget(openapi_per_minute, clock=clock, sleep=sleep)
        self.cost: float | None = None  # mean ServiceNow requests a cycle
        self.stretched = ""  # why the interval is longer than configured; "" when it is not
        self.selection: Selection | None = None  # the last cycle's read cadence
        self.log = logs.get("pacing")

    def after_cycle(self, servicenow_requests: int) -> float:
        """Learn the cycle's cost; the interval until the next cycle."""
        if self.cost is None:
            self.cost = float(servicenow_requests)
        else:
            self.cost += SMOOTHING * (servicenow_requests - self.cost)
        interval, why = self.servicenow.interval(self.configured, self.cost)
        if why and not self.stretched:
            self.log.warning(
                "pacing_stretched",
                interval_seconds=round(interval, 1),
                configured_seconds=self.configured,
                reason=why,
            )
        elif not why and self.stretched:
            self.log.info("pacing_ended", interval_seconds=self.configured)
        self.stretched, self.interval = why, interval
        return interval

    def to_json(self) -> dict[str, Any]:
        """What `status` and the metrics show, and the ServiceNow hour kept for the next run."""
        selection = self.selection
        return {
            "servicenow": self.servicenow.to_json(),
            "openapi": self.openapi.to_json(self.servicenow.clock()),
            "interval": round(self.interval, 1),
            "configured": self.configured,
            "stretched": self.stretched,
            "cadence": None
            if selection is None
            else {
                "active": selection.active,
                "quiet": selection.quiet,
                "deferred": selection.deferred,
                "slowest": round(selection.slowest),
                "oldest_read": selection.oldest_read,
            },
        }


def _epoch(text: str | None) -> int:
    if not text:
        return 0
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(moment.timestamp())
        return int(parse_sn_time(text).timestamp())
    except ValueError:
        return 0


def watch_of(activity: Activity) -> Watch:
    """The cadence's view of a watched incident: its newest change on either side."""
    changed = max(
        activity.fd_updated_at,
        _epoch(activity.servicenow_updated_on),
        _epoch(activity.sent_at),
    )
    return Watch(
        key=activity.sys_id,
        changed_at=changed,
        read_at=activity.read_at,
        closed=activity.progress == "Closed",
        owed=activity.owed,
    )
