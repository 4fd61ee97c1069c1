"""Which Flashduty integration an incident goes to, and what its route adds. Pure: no I/O.

Routes are ``[[route]]`` tables tried in file order; the first whose every
match key matches wins, and incidents that match none take the default route
(the ``[flashduty]`` settings), or are skipped with ``[routing] default =
"skip"``. A match key compares case-insensitively against every form the
incident offers for that field: a reference by name or sys_id, a choice by
value (``1``), list label (``1 - Critical``) or name (``Critical``). Routing
runs locally on every changed incident, so that a reassignment can move an
open alert from one integration to another (see :mod:`fd_sync.core.decide`).

A route's push URL is a secret; the outbox and ledger name a destination
instead: ``default`` for ``[flashduty] push_url``, else ``route:<name>`` of
the first route with that URL. Every route name stays an alias of its
destination, so reordering routes that share a URL moves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from fd_sync.core.decide import DEFAULT_DESTINATION, LedgerEntry
from fd_sync.core.incident import LEVEL_NAMES, PRIORITY_NAMES, STATE_NAMES, Incident

PushFormat = Literal["servicenow", "standard"]  # the body a push URL expects
SEND, SKIP = "send", "skip"
DEFAULT_ROUTE = "default"
CHANNELS = ("sms", "voice", "teams", "email")  # fd-servicenow's personal_channels
SEVERITIES = ("Critical", "Warning", "Info")
# Flashduty's documented mapping for the ServiceNow integration: urgency High/Medium/Low.
SEVERITY_BY_URGENCY = {"1": "Critical", "2": "Warning", "3": "Info"}
SEVERITY_BY_PRIORITY = {"1": "Critical", "2": "Critical", "3": "Warning", "4": "Info", "5": "Info"}
DEFAULT_SEVERITY = "Warning"  # missing or unknown: page, but not as Critical

Offer = tuple[str, str]  # (a value the incident offers for a key, which form it is)


def _choice(names: Mapping[str, str], value: str) -> list[Offer]:
    offers = [(value, "value")]
    if value in names:
        offers += [(f"{value} - {names[value]}", "label"), (names[value], "name")]
    return offers


def _reference(name: str, sys_id: str) -> list[Offer]:
    return [(name, "name"), (sys_id, "sys_id")]


# Every match key and the forms an incident offers for it.
MATCH_KEYS: dict[str, Callable[[Incident], list[Offer]]] = {
    "number": lambda i: [(i.number, "value")],
    "state": lambda i: _choice(STATE_NAMES, i.state),
    "urgency": lambda i: _choice(LEVEL_NAMES, i.urgency),
    "impact": lambda i: _choice(LEVEL_NAMES, i.impact),
    "priority": lambda i: _choice(PRIORITY_NAMES, i.priority),
    "category": lambda i: [(i.category, "value")],
    "assignment_group": lambda i: _reference(i.assignment_group, i.assignment_group_id),
    "assigned_to": lambda i: _reference(i.assigned_to, i.assigned_to_id),
    "cmdb_ci": lambda i: _reference(i.cmdb_ci, i.cmdb_ci_id),
    "company": lambda i: _reference(i.company, i.company_id),
}


def destination_name(route_name: str) -> str:
    return f"route:{route_name}"


@dataclass(frozen=True)
class Route:
    """One ``[[route]]`` table, validated by :mod:`fd_sync.config`."""

    name: str
    match: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, accepted values), all must match
    skip: bool = False
    destination: str = DEFAULT_DESTINATION
    rule_id: str = ""
    personal_channels: tuple[str, ...] = ()
    notify_members: tuple[str, ...] = ()  # ServiceNow users by email or user_name
    notify_group_members: bool = False
    severity: str | None = None  # None: from [routing] severity_by
    labels: tuple[tuple[str, str], ...] = ()
    teams_id: str = ""
    channel_id: int | None = None


@dataclass(frozen=True)
class RouteDestination:
    """A push URL other than ``[flashduty] push_url``, under the name the outbox stores."""

    name: str
    push_url: str = field(repr=False)
    push_format: PushFormat


@dataclass(frozen=True)
class Routing:
    routes: tuple[Route, ...] = ()
    default: Route = Route(DEFAULT_ROUTE)
    severity_by: str = "urgency"
    destinations: tuple[RouteDestination, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)  # route:<name> -> shared name


@dataclass(frozen=True)
class Match:
    """The route an incident takes, and why: what ``fd-sync explain`` prints."""

    route: Route
    reasons: tuple[str, ...]  # the match keys that matched, and how
    passed_over: tuple[tuple[str, str], ...]  # earlier routes and the key that failed each

    @property
    def target(self) -> str | None:
        """The destination name, or None when the incident is not sent."""
        return None if self.route.skip else self.route.destination


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def offers(incident: Incident, key: str) -> list[Offer]:
    """The values an incident offers for a match key; extra fields by their raw value."""
    if key in MATCH_KEYS:
        found = MATCH_KEYS[key](incident)
    else:
        found = [(incident.extra.get(key, ""), "value")]
    return [(value, form) for value, form in found if value]


def _check(incident: Incident, route: Route) -> tuple[list[str], str | None]:
    """The reasons a route matches, or the first key that fails it."""
    reasons: list[str] = []
    for key, accepted in route.match:
        wanted = {_normal(v) for v in accepted}
        offered = offers(incident, key)
        hit = next(((v, form) for v, form in offered if _normal(v) in wanted), None)
        if hit is None:
            shown = offered[0][0] if offered else "empty"
            return reasons, f"{key} is {shown!r}, not one of {', '.join(map(repr, accepted))}"
        reasons.append(f"{key} = {hit[0]!r} ({hit[1]})")
    return reasons, None


def route(incident: Incident, routing: Routing) -> Match:
    """The first route whose every match key matches; else the default route."""
    passed_over: list[tuple[str, str]] = []
    for candidate in routing.routes:
        reasons, failed = _check(incident, candidate)
        if failed is None:
            # Every key matched (a route without match keys takes everything).
            return Match(candidate, tuple(reasons) or ("no match keys",), tuple(passed_over))
        passed_over.append((candidate.name, failed))
    # No route matched: the [flashduty] settings, or skip with [routing] default = "skip".
    return Match(routing.default, ("no route matched",), tuple(passed_over))


def severity(incident: Incident, route: Route | None, severity_by: str) -> str:
    """The route's severity, else the configured mapping from urgency or priority."""
    if route is not None and route.severity:
        return route.severity
    if severity_by == "priority":
        return SEVERITY_BY_PRIORITY.get(incident.priority, DEFAULT_SEVERITY)
    return SEVERITY_BY_URGENCY.get(incident.urgency, DEFAULT_SEVERITY)


def canonical(entry: LedgerEntry, aliases: Mapping[str, str]) -> LedgerEntry:
    """The entry with its stored destination name through the current aliases, so that
    renaming or reordering routes that share a push URL does not look like a move."""
    name = entry.destination
    shared = aliases.get(name, name) if name else name
    return entry if shared == name else replace(entry, destination=shared)
