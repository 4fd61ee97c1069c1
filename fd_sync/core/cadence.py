"""How often each tracked Flashduty incident is read: a cadence that follows its activity.

Reading every tracked incident every cycle costs one ``/incident/list-by-ids`` request per
100 incidents per cycle: 100 requests at 10,000 (an outage storm), most of the account's
1000 a minute, which every other tool using the key shares. Most of them are quiet. So:

- *active* (changed on either side in the last ``ACTIVE_SECONDS``, or owed a write or an
  event): read every cycle;
- *quiet*: read every quarter of the time it has been quiet, at least every cycle and at
  most every ``SLOWEST_SECONDS``;
- *closed* (watched for an hour after the close): every ``SLOWEST_SECONDS``.

Then the budget: at most ``capacity`` incidents a cycle (100 per request the cycle may
spend), active ones first, then the most overdue. A quiet incident a responder touches is
noticed at its next read, within its cadence (and its cadence is then one cycle again).
Pure: the caller brings the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ACTIVE_SECONDS = 600  # changed within this: read every cycle
SLOWEST_SECONDS = 300  # the longest a tracked incident goes unread
QUIET_DIVISOR = 4  # quiet for 20 minutes: read every 5


@dataclass(frozen=True)
class Watch:
    """What the ledger knows of one tracked incident (times in Unix seconds)."""

    key: str  # the ServiceNow sys_id
    changed_at: int  # the newest change seen on either side (or the alert's send)
    read_at: int  # its last read in Flashduty; 0: never
    closed: bool  # closed in Flashduty, watched for the rest of the hour
    owed: bool  # an event, a write-back or an OpenAPI write is pending for it


def cadence(watch: Watch, now: int, interval: float) -> float:
    """Seconds between two reads of this incident; ``interval`` (one cycle) at least."""
    if watch.owed:
        return interval
    if watch.closed:
        return float(max(interval, SLOWEST_SECONDS))
    quiet = now - watch.changed_at
    if quiet < ACTIVE_SECONDS:
        return interval
    return float(max(interval, min(SLOWEST_SECONDS, quiet / QUIET_DIVISOR)))


@dataclass(frozen=True)
class Selection:
    """The incidents to read this cycle, and what ``status`` says of the rest."""

    due: tuple[str, ...]
    active: int  # read every cycle
    quiet: int  # on a slower cadence (quiet or closed)
    deferred: int  # due, but past this cycle's share of the budget
    slowest: float  # the longest cadence in force, seconds
    oldest_read: int  # seconds since the least recently read incident was read


def choose(watches: Sequence[Watch], now: int, interval: float, capacity: int) -> Selection:
    """The incidents due for a read this cycle, active first, then the most overdue, at most
    ``capacity``. An active incident is due at every cycle, however soon it follows the
    last (``once`` by hand, a cycle after a stop); a quiet one half a cycle before its
    cadence ends, so a cadence of 300 s at a 10 s interval reads at the cycle nearest
    300 s, not the one after."""
    ranked: list[tuple[int, float, str]] = []
    active = quiet = 0
    slowest = 0.0
    oldest = 0
    for watch in watches:
        every = cadence(watch, now, interval)
        slowest = max(slowest, every)
        if every <= interval:
            active += 1
        else:
            quiet += 1
        age = now - watch.read_at if watch.read_at else 10**9
        oldest = max(oldest, min(age, 10**9))
        if every <= interval or age >= every - interval / 2:
            ranked.append((0 if every <= interval else 1, -age / every, watch.key))
    ranked.sort()
    due = tuple(key for _, _, key in ranked[: max(0, capacity)])
    return Selection(
        due=due,
        active=active,
        quiet=quiet,
        deferred=len(ranked) - len(due),
        slowest=slowest,
        oldest_read=oldest if watches else 0,
    )
