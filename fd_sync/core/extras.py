"""What a route or a dispatch adds to an incident's events (people, severity). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from fd_sync.core import routing
from fd_sync.core.incident import Incident
from fd_sync.core.payloads import Extras, Member
from fd_sync.core.routing import Route


def route_extras(
    incident: Incident, route: Route, severity_by: str, members: Sequence[Member]
) -> Extras:
    """What a route adds to an incident's create and update events. Pure."""
    return Extras(
        route=route.name,
        severity=routing.severity(incident, route, severity_by),
        labels=route.labels,
        rule_id=route.rule_id,
        personal_channels=route.personal_channels,
        notify_members=tuple(members),
        teams_id=route.teams_id,
    )


def with_severity(pin: Extras, incident: Incident, severity_by: str) -> Extras:
    """A dispatch's choices for a later event: its explicit severity, else the mapping's."""
    return replace(pin, severity=pin.severity or routing.severity(incident, None, severity_by))


def merge_members(*groups: Iterable[Member]) -> tuple[Member, ...]:
    """Members in the order given, each once."""
    out: dict[str, Member] = {}
    for group in groups:
        for member in group:
            out.setdefault(member.sys_id, member)
    return tuple(out.values())
