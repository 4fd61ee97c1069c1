"""Incidents in the ServiceNow simulator, each one second after the previous change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fd_sync.simulators.servicenow import ServiceNowSim

START = datetime(2026, 11, 1, 8, 0, 0, tzinfo=UTC)  # the simulated ServiceNow's clock starts here


def open_incident(sim: ServiceNowSim, **fields: Any) -> dict[str, str]:
    """Create an incident one second after the previous change (distinct timestamps)."""
    sim.clock.advance(1)
    fields.setdefault("short_description", "Database latency above 2 s")
    fields.setdefault("urgency", "1")
    return sim.create(**fields)


def change(sim: ServiceNowSim, sys_id: str, **fields: Any) -> dict[str, str]:
    sim.clock.advance(1)
    return sim.update(sys_id, **fields)
