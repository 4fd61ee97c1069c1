"""The ServiceNow hourly budget's arithmetic, shared by the pacing and the configuration's
warning. Pure."""

from __future__ import annotations

import math

RESERVE_SHARE = 0.1  # of the hourly limit, kept for writes
MIN_RESERVE = 5


def reserve_of(limit: int) -> int:
    """Requests of an hourly ``limit`` kept for writes (0: no limit, no reserve)."""
    return max(MIN_RESERVE, math.ceil(limit * RESERVE_SHARE)) if limit else 0


def stretch_warning(limit: int, poll_interval: int, requests_per_idle_cycle: int) -> str | None:
    """Why ``limit`` cannot pay for idle cycles every ``poll_interval`` (None when it can)."""
    if not limit:
        return None
    hourly = math.ceil(3600 / poll_interval) * requests_per_idle_cycle
    usable = limit - reserve_of(limit)
    if hourly <= usable:
        return None
    every = math.ceil(3600 * requests_per_idle_cycle / max(usable, 1))
    return (
        f"[servicenow] max_requests_per_hour = {limit} cannot pay for a cycle every "
        f"{poll_interval} s ({hourly} requests an hour when idle, {usable} usable after the "
        f"reserve for writes): fd-sync will poll every {every} s or more; raise the limit or "
        "[sync] poll_interval_seconds"
    )
