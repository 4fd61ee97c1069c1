"""ServiceNow's request budget: what fd-sync may still ask of the instance this hour.

Two limits apply, whichever is tighter: ``[servicenow] max_requests_per_hour`` (counted
here, in a sliding hour, and kept in the ledger between runs) and the instance's own
rate-limit rule, which it announces on every answer while one applies
(``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` after this request,
``X-RateLimit-Reset`` in epoch seconds; REFERENCE section 10). Past either, ServiceNow
answers 429 and other integrations have crashed on it; fd-sync never gets there:

- a read is refused (:class:`~fd_sync.errors.BudgetSpent`) once only the *reserve* is
  left, so the writes that carry people's work (write-backs, tickets, command answers)
  still have room; a write is refused only when nothing is left;
- :meth:`RequestBudget.interval` stretches the poll interval so that a cycle's usual cost
  fits the rate the budget allows, instead of spending the hour in its first minutes.

Concurrency contract: one budget per process, used by one cycle at a time (the daemon's
worker thread), so it takes no lock. The clock is injected: tests run an hour in a second.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fd_sync.core.budget import reserve_of
from fd_sync.errors import BudgetSpent

HOUR = 3600.0
HEADROOM = 0.9  # of the usable rate the pace plans for: cycles vary in cost


@dataclass(frozen=True)
class BudgetView:
    """What ``status`` and the metrics show: the tighter limit and what is left of it."""

    limit: int  # requests an hour; 0: no limit known
    remaining: int  # until the window frees
    reserve: int  # of ``remaining``, kept for writes
    source: str  # "max_requests_per_hour", "the instance's rate-limit rule" or ""
    resets_in: float  # seconds until the oldest request leaves the window (or Reset)

    def to_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "reserve": self.reserve,
            "source": self.source,
            "resets_in": round(self.resets_in),
        }


class RequestBudget:
    """Both limits; :meth:`spend` before each request, :meth:`observe` each answer."""

    def __init__(self, per_hour: int = 0, *, clock: Callable[[], float] = time.time) -> None:
        self.per_hour = per_hour  # 0: no limit of fd-sync's own
        self.clock = clock  # Unix time: the instance's Reset is an epoch
        self.sent: deque[float] = deque()  # this process's requests in the last hour
        self.instance: tuple[int, int, float] | None = None  # limit, remaining, reset
        self.refused = 0  # requests held back this process's life (reads, then writes)

    # --- before and after each request ----------------------------------------------

    def spend(self, *, write: bool, what: str) -> None:
        """Count one request, or raise BudgetSpent when it would overdraw a limit."""
        now = self.clock()
        view = self.view(now)
        floor = 0 if write else view.reserve
        if view.limit and view.remaining <= floor:
            self.refused += 1
            kept = " (the rest is kept for writes)" if not write and view.remaining else ""
            raise BudgetSpent(
                f"ServiceNow budget spent: {view.limit - view.remaining} of {view.limit} "
                f"requests this hour ({view.source}){kept}; {what} waits "
                f"{view.resets_in:.0f} s for the window to free; nothing is lost"
            )
        self.sent.append(now)
        if self.instance is not None:
            limit, remaining, reset = self.instance
            self.instance = (limit, remaining - 1, reset)  # until its answer says otherwise

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the instance's rate-limit headers, when it sent them (a rule applies)."""
        try:
            limit = int(headers["X-RateLimit-Limit"])
            remaining = int(headers["X-RateLimit-Remaining"])
            reset = float(headers["X-RateLimit-Reset"])
        except (KeyError, TypeError, ValueError):
            return
        # Reset is the instance's epoch: measured from its own Date, so a jump host whose
        # clock is off does not misjudge when the window frees.
        try:
            server_now = email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
        except (KeyError, TypeError, ValueError, IndexError):
            server_now = None
        if server_now is not None:
            reset = self.clock() + (reset - server_now)
        self.instance = (limit, max(0, remaining), reset)

    # --- what is left, and the pace it allows ---------------------------------------

    def view(self, now: float | None = None) -> BudgetView:
        now = self.clock() if now is None else now
        while self.sent and self.sent[0] <= now - HOUR:
            self.sent.popleft()
        views = []
        if self.per_hour:
            frees = self.sent[0] + HOUR - now if self.sent else 0.0
            left = max(0, self.per_hour - len(self.sent))
            views.append(
                BudgetView(
                    self.per_hour, left, reserve_of(self.per_hour), "max_requests_per_hour", frees
                )
            )
        if self.instance is not None:
            limit, remaining, reset = self.instance
            if reset > now:
                rule = "the instance's rate-limit rule"
                views.append(BudgetView(limit, remaining, reserve_of(limit), rule, reset - now))
            else:
                self.instance = None  # the rule's window has passed: a fresh one begins
        if not views:
            return BudgetView(0, 0, 0, "", 0.0)
        return min(views, key=lambda v: (v.remaining - v.reserve, -v.resets_in))

    def interval(self, configured: float, per_cycle: float) -> tuple[float, str]:
        """The poll interval that makes ``per_cycle`` requests fit the budget, and why it is
        longer than ``configured`` ("" when it is not)."""
        now = self.clock()
        view = self.view(now)
        if not view.limit or per_cycle <= 0:
            return configured, ""
        # The pace that spends what reads may use, evenly (with some headroom, as cycles
        # vary), until the window frees.
        if view.source == "max_requests_per_hour":
            usable, over = view.limit - view.reserve, HOUR
        else:
            usable, over = view.remaining - view.reserve, max(view.resets_in, 1.0)
        paced = per_cycle * over / max(usable * HEADROOM, 1.0)
        # And never sooner than the window leaves room for one more cycle's reads.
        short = math.ceil(per_cycle) - (view.remaining - view.reserve)
        if short > 0:
            paced = max(paced, self._frees_in(short, view, now))
        if paced <= configured:
            return configured, ""
        return paced, (
            f"{per_cycle:.1f} requests a cycle within {view.source} "
            f"({view.limit}/hour, {view.reserve} kept for writes)"
        )

    def _frees_in(self, count: int, view: BudgetView, now: float) -> float:
        """Seconds until ``count`` more requests fit the tighter window."""
        if view.source == "max_requests_per_hour" and len(self.sent) >= count:
            return max(0.0, self.sent[count - 1] + HOUR - now)
        return view.resets_in

    # --- kept in the ledger between runs ----------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The requests of the last hour, so that the next `once` (or the next leader)
        counts them too; whole seconds are enough."""
        now = self.clock()
        self.view(now)
        return {
            "sent": [int(t) for t in self.sent],
            "instance": list(self.instance) if self.instance else None,
            "view": self.view(now).to_json(),
        }

    def load(self, saved: Mapping[str, Any] | None) -> None:
        if not saved or self.sent or self.instance is not None:
            return
        now = self.clock()
        times = saved.get("sent")
        if isinstance(times, list):
            self.sent.extend(float(t) for t in sorted(times) if now - HOUR < float(t) <= now)
        rule = saved.get("instance")
        if self.instance is None and isinstance(rule, list) and len(rule) == 3:
            limit, remaining, reset = rule
            if float(reset) > now:  # the rule's window the last run saw is still open
                self.instance = (int(limit), int(remaining), float(reset))
