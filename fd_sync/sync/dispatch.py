"""``fd-sync dispatch``: fd-servicenow's "Send to Flashduty" dialog, as a command.

The dialog let an operator choose, for one incident, the assignment group,
the members to notify (or the whole group), the personal channels and an
escalation rule. Here each is a flag, and whatever is not given is what the
incident's route would send. The event takes the outbox like every other:
queued, then delivered at once, behind any earlier event of the same
incident. The incident is then pinned where it was sent: its later updates
and its resolve go there, with the same choices, whatever the routes say,
until it closes. Callers hold the run lock (:mod:`fd_sync.store.lock`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from fd_sync.config import Config
from fd_sync.core import decide, payloads, routing
from fd_sync.core.decide import Decision, Kind
from fd_sync.core.extras import merge_members, with_severity
from fd_sync.core.incident import Incident, parse_record
from fd_sync.core.payloads import Extras
from fd_sync.core.routing import Match, Route
from fd_sync.errors import (
    EX_OK,
    EX_PROTOCOL,
    EX_TEMPFAIL,
    BadRecord,
    ConfigError,
    RemoteRejected,
    UsageRefused,
)
from fd_sync.flashduty.openapi import OpenAPIClient
from fd_sync.servicenow.lookups import Lookups
from fd_sync.store.ledger import Ledger
from fd_sync.store.outbox import OutboxEvent
from fd_sync.store.queue import QueueStatus
from fd_sync.sync.choices import cached_choice_labels
from fd_sync.sync.delivery import Deliverer, DeliveryReport, Destination

OpenAPIFactory = Callable[[], OpenAPIClient]


@dataclass(frozen=True)
class DispatchOptions:
    """The dialog's fields as flags; None (or False) means "as the route says"."""

    group: str | None = None
    members: tuple[str, ...] | None = None
    group_members: bool = False
    channels: tuple[str, ...] | None = None
    rule_id: str | None = None
    rule_name: str | None = None
    severity: str | None = None
    force: bool = False


@dataclass(frozen=True)
class Dispatch:
    """One dispatch, decided: what is sent where, and what stays pinned."""

    incident: Incident  # as sent (with --group applied)
    match: Match  # the route the incident matched
    route: Route  # what it is sent as: a skip route dispatches as the default route
    decision: Decision
    pin: Extras  # the explicit choices, kept for the incident's later events
    extras: Extras  # what this dispatch's events carry


@dataclass(frozen=True)
class Sent:
    dispatch: Dispatch
    events: list[OutboxEvent]  # this dispatch's events, after delivery
    delivery: DeliveryReport

    @property
    def exit_code(self) -> int:
        statuses = {e.status for e in self.events}
        if QueueStatus.DEAD in statuses or self.delivery.held:
            return EX_PROTOCOL  # refused, or held behind an earlier refusal
        if statuses - {QueueStatus.DELIVERED}:
            return EX_TEMPFAIL  # queued: the next run delivers it
        return EX_OK


def read_incident(config: Config, lookups: Lookups, number: str) -> Incident:
    """The incident as a cycle would read it, with its latest comment when synced."""
    raw = lookups.incident_by_number(number)
    if raw is None:
        raise UsageRefused(
            f"no incident {number} in ServiceNow table {config.servicenow.table!r} (check the "
            "number, and that the integration user may read it)"
        )
    try:
        incident = parse_record(raw, config.servicenow.extra_fields)
    except BadRecord as exc:
        raise RemoteRejected(f"ServiceNow returned {number} unusable: {exc}") from None
    if config.servicenow.sync_comments:
        comments = lookups.latest_comments([incident.sys_id])
        incident = replace(incident, comment=comments.get(incident.sys_id, ""))
    return incident


def rule_by_name(client: OpenAPIClient, channel_id: int, name: str) -> str:
    """The id of the channel's enabled escalation rule with this name (case-insensitive)."""
    enabled = [r for r in client.escalation_rules(channel_id) if r.get("status") == "enabled"]
    for rule in enabled:
        if str(rule.get("rule_name") or "").casefold() == name.casefold():
            return str(rule.get("rule_id") or "")
    names = ", ".join(repr(str(r.get("rule_name"))) for r in enabled) or "none"
    raise UsageRefused(
        f"no enabled escalation rule named {name!r} in channel {channel_id} (enabled: {names}); "
        "see fd-sync rules"
    )


class Dispatcher:
    """Plans and sends dispatches against one ledger; collaborators are passed in."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        lookups: Lookups,
        deliverer: Deliverer,
        *,
        openapi: OpenAPIFactory | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.lookups = lookups
        self.deliverer = deliverer
        self.destinations: Mapping[str, Destination] = deliverer.destinations
        self.openapi = openapi

    def plan(self, number: str, options: DispatchOptions) -> Dispatch:
        """Read the incident, route it, apply the flags, decide the events. Writes nothing."""
        incident = read_incident(self.config, self.lookups, number)
        if not incident.is_open and not options.force:
            raise UsageRefused(
                f"{incident.number} is {incident.state_name} in ServiceNow: dispatching would "
                "page people for a closed incident; add --force if you mean it"
            )
        if options.group:
            found = self.lookups.group_by_name(options.group)
            if found is None:
                raise UsageRefused(f"no ServiceNow assignment group named {options.group!r}")
            incident = replace(incident, assignment_group_id=found[0], assignment_group=found[1])
        match = routing.route(incident, self.config.routing)
        # A skip route sends nothing by itself; asked by hand, send as the default route.
        route = (
            match.route
            if not match.route.skip
            else replace(self.config.routing.default, skip=False)
        )
        members = self._members(incident, route, options)
        pin = Extras(
            route=route.name,
            severity=options.severity or route.severity,
            labels=route.labels,
            rule_id=self._rule_id(route, options),
            personal_channels=route.personal_channels
            if options.channels is None
            else options.channels,
            notify_members=members,
            teams_id=route.teams_id,
        )
        extras = with_severity(pin, incident, self.config.routing.severity_by)
        entries = self.ledger.entries([incident.sys_id])
        entry = entries.get(incident.sys_id)
        entry = routing.canonical(entry, self.config.routing.aliases) if entry is not None else None
        decision = decide.dispatch(incident, entry, route.destination)
        return Dispatch(incident, match, route, decision, pin, extras)

    def _members(
        self, incident: Incident, route: Route, options: DispatchOptions
    ) -> tuple[payloads.Member, ...]:
        if options.members is None and not options.group_members:
            # The route's selection, as a cycle would send it.
            named_keys, whole_group = route.notify_members, route.notify_group_members
        else:
            named_keys, whole_group = options.members or (), options.group_members
        named = self.lookups.users(named_keys)
        unknown = [k for k in named_keys if k not in named]
        if unknown and options.members is not None:
            raise UsageRefused(f"no ServiceNow user with email or user_name {unknown[0]!r}")
        if options.group_members and not incident.assignment_group_id:
            # Asked for by hand: say so, rather than notify nobody.
            raise UsageRefused(
                f"{incident.number} has no assignment group: pass --group NAME with --group-members"
            )
        group: tuple[payloads.Member, ...] = ()
        if whole_group and incident.assignment_group_id:
            group = self.lookups.group_members([incident.assignment_group_id])[
                incident.assignment_group_id
            ]
        return merge_members((named[k] for k in named_keys if k in named), group)

    def _rule_id(self, route: Route, options: DispatchOptions) -> str:
        if options.rule_id is not None:
            return options.rule_id
        if options.rule_name is None:
            return route.rule_id
        if route.channel_id is None:
            raise ConfigError(
                f"{self.config.path}: --rule-name needs the channel to search: set [flashduty] "
                f"channel_id (or channel_id on route {route.name!r})"
            )
        if self.openapi is None:
            raise ConfigError(f"{self.config.path}: --rule-name needs [flashduty] app_key")
        return rule_by_name(self.openapi(), route.channel_id, options.rule_name)

    def bodies(self, dispatch: Dispatch) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, destination, body) of every event, exactly as delivery would build them."""
        out = []
        for event in dispatch.decision.events:
            destination = self.destinations[event.destination]
            extras = Extras() if event.kind is Kind.RESOLVE else dispatch.extras
            body = payloads.build(
                destination.push_format,
                event.kind,
                dispatch.incident,
                instance_url=self.config.servicenow.instance_url,
                table=self.config.servicenow.table,
                extras=extras,
                choices=cached_choice_labels(self.ledger),
            )
            out.append((event.kind.value, event.destination, body))
        return out

    def send(self, dispatch: Dispatch, *, run_id: str) -> Sent:
        """Queue the events and pin the incident in one transaction, then deliver them."""
        sys_id = dispatch.incident.sys_id
        latest = self.ledger.outbox.items(sys_id=sys_id, limit=1)
        before = latest[0].id if latest else 0
        self.ledger.record_dispatch(
            dispatch.decision, extras=dispatch.extras, pin=dispatch.pin, run_id=run_id
        )
        report = self.deliverer.drain(only=sys_id)
        events = [e for e in self.ledger.outbox.items(sys_id=sys_id, limit=20) if e.id > before]
        return Sent(dispatch, sorted(events, key=lambda e: e.id), report)
