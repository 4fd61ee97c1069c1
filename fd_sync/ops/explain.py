"""``fd-sync explain``: the incident's whole story, oldest first, from the ledger (every
event sent or refused, what was read back from Flashduty, every work note written or
refused: :mod:`.timeline`), where it stands now, which route it takes and why, what its
next change would send, and the escalation path Flashduty would follow. Reads only: the
ledger, and ServiceNow and the OpenAPI for what comes next (the story needs neither).

The events shown are those its next change would queue, built by the same
code a cycle runs (:func:`fd_sync.core.decide.decide`, :class:`fd_sync.sync.enrich.Enricher`,
:func:`fd_sync.core.payloads.build`), so the payload is byte for byte what Flashduty
would receive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fd_sync.config import Config
from fd_sync.core import payloads, routing
from fd_sync.core.decide import Decision, Kind, LedgerEntry, decide
from fd_sync.core.incident import LEVEL_NAMES, PRIORITY_NAMES, Incident
from fd_sync.core.payloads import Extras
from fd_sync.core.routing import Match
from fd_sync.errors import ConfigError, FdSyncError
from fd_sync.flashduty import escalation
from fd_sync.ops.dispatch import dumps
from fd_sync.ops.timeline import as_json, history_lines, live_lines, now_lines
from fd_sync.servicenow.lookups import Lookups
from fd_sync.store.history import IncidentHistory, read_history, timeline
from fd_sync.store.ledger import Ledger
from fd_sync.sync.choices import cached_choice_labels
from fd_sync.sync.delivery import Destination
from fd_sync.sync.dispatch import OpenAPIFactory, read_incident
from fd_sync.sync.enrich import Enricher

if TYPE_CHECKING:
    from fd_sync.core.feed import FlashdutyIncident


def _summary(incident: Incident) -> list[str]:
    def coded(names: Mapping[str, str], value: str) -> str:
        return f"{value} - {names[value]}" if value in names else value or "none"

    return [
        f"{incident.number}: {incident.short_description or '(no short description)'}",
        f"  state {incident.state_name}, urgency {coded(LEVEL_NAMES, incident.urgency)}, "
        f"priority {coded(PRIORITY_NAMES, incident.priority)}, "
        f"assignment group {incident.assignment_group or 'none'}",
    ]


def _route_lines(match: Match, entry: LedgerEntry | None, decision: Decision) -> list[str]:
    lines = ["", "route"]
    for name, why in match.passed_over:
        lines.append(f"  passed over {name!r}: {why}")
    chosen = match.route
    lines.append(f"  matches {chosen.name!r}: {', '.join(match.reasons)}")
    if chosen.skip:
        lines.append("  skip: this route sends nothing")
    else:
        lines.append(f"  sends to {chosen.destination}")
    where = entry.alert_at if entry is not None else None
    if where is not None and entry is not None and entry.pinned:
        lines.append(
            f"  pinned by fd-sync dispatch at {where}: routes do not apply until it closes"
        )
    lines.append(f"  ledger: {'alert open at ' + where if where else 'no alert open'}")
    return lines


def _escalation(
    config: Config, extras: Extras, channel_id: int | None, openapi: OpenAPIFactory | None
) -> list[str]:
    lines = ["", "escalation path"]
    if openapi is None:
        return [*lines, "  not shown: set [flashduty] app_key to preview it"]
    if channel_id is None:
        return [*lines, "  not shown: set [flashduty] channel_id (or the route's channel_id)"]
    client = openapi()
    rules = escalation.load_rules(client, channel_id)
    if extras.notify_members:
        known = {str(m.get("email") or "").casefold() for m in client.members()}
        missing = [
            m.email or m.name for m in extras.notify_members if m.email.casefold() not in known
        ]
        if missing:
            lines.append(
                f"  notify_members without a Flashduty member of that email: {', '.join(missing)}"
            )
    chosen = [r for r in rules if r.rule_id == extras.rule_id]
    if chosen:
        lines.append(f"  rule_id {extras.rule_id} of channel {channel_id}:")
        return lines + ["  " + line for line in escalation.render_rule(chosen[0])]
    if extras.rule_id:
        lines.append(
            f"  rule_id {extras.rule_id} is not an enabled rule of channel {channel_id}; "
            "Flashduty chooses among its enabled rules:"
        )
    else:
        lines.append(
            f"  no rule_id: Flashduty chooses among the enabled rules of channel {channel_id} "
            "by their filters:"
        )
    for rule in rules:
        lines += ["  " + line for line in escalation.render_rule(rule)]
    return lines if rules else [*lines, "  (none enabled)"]


@dataclass
class Explanation:
    lines: list[str]
    data: dict[str, Any]  # --json


def explain(
    config: Config,
    ledger: Ledger,
    lookups: Lookups,
    destinations: Mapping[str, Destination],
    number: str,
    *,
    openapi: OpenAPIFactory | None = None,
    online: LiveReader | None = None,
) -> Explanation:
    history = read_history(ledger, number)
    moments = timeline(history) if history is not None else []
    story: list[str] = []
    data: dict[str, Any] = {"number": number}
    if history is not None:
        story = history_lines(history, moments) + now_lines(history)
        data.update(as_json(history, moments))
        if online is not None:
            story += _live(online, history)
    try:
        incident = read_incident(config, lookups, number)
    except FdSyncError as exc:
        if history is None:
            raise
        # The story needs no network; what comes next does.
        data["next"] = None
        lines = [f"{number} (not read from ServiceNow: {exc})", *story]
        return Explanation([*lines, "", "next", "  not shown: ServiceNow could not be read"], data)
    if history is not None and history.is_ticket:
        # Born in Flashduty: never routed, never pushed as an alert.
        data["next"] = {"ticket": True}
        lines = [
            "",
            "next",
            "  a ticket: its changes go to its Flashduty incident (resolve, "
            "reopen, comments, urgency as severity), never as an alert; no route applies",
        ]
        return Explanation(_summary(incident) + story + lines, data)
    forward = _forward(config, ledger, lookups, destinations, incident, openapi, history)
    data["next"] = forward.data
    return Explanation(_summary(incident) + story + forward.lines, data)


LiveReader = Callable[[str], "FlashdutyIncident | None"]  # incident id -> live incident


def _live(online: LiveReader, history: IncidentHistory) -> list[str]:
    link = history.link
    if link is None or not link.incident_id:
        return live_lines(None)
    try:
        return live_lines(online(link.incident_id), "Flashduty has no such incident any more")
    except FdSyncError as exc:
        return live_lines(None, str(exc))


def _forward(
    config: Config,
    ledger: Ledger,
    lookups: Lookups,
    destinations: Mapping[str, Destination],
    incident: Incident,
    openapi: OpenAPIFactory | None,
    history: IncidentHistory | None,
) -> Explanation:
    """Route, what the next change would send, and the escalation path."""
    match = routing.route(incident, config.routing)
    entry = ledger.entries([incident.sys_id]).get(incident.sys_id)
    entry = routing.canonical(entry, config.routing.aliases) if entry is not None else None
    # Decide as if this version were a new change that Flashduty displays.
    probe = replace(entry, updated_on="", mod_count=-1, fingerprint="") if entry else None
    decision = decide(incident, probe, target=match.target)
    if decision is None:  # pragma: no cover - the probe is always older
        raise FdSyncError("internal error: no decision for explain")
    pins = ledger.incidents.pins([incident.sys_id]) if decision.entry.pinned else {}
    enricher = Enricher(
        lookups, sync_comments=False, severity_by=config.routing.severity_by
    )  # the comment is on the incident already
    extras = enricher.extras([decision], {incident.sys_id: match}, pins).get(
        incident.sys_id, Extras()
    )
    lines = _route_lines(match, entry, decision)
    lines += ["", "next change would send"]
    dead = history.dead_create if history is not None else None
    if dead is not None and decision.events:
        lines.append(
            f"  nothing leaves until event {dead.label} (the refused create) is retried or "
            "dropped; then, in order:"
        )
    if not decision.events:
        lines.append(f"  nothing ({decision.why})")
    for event in decision.events:
        destination = destinations.get(event.destination)
        if destination is None:
            raise ConfigError(
                f"{config.path}: destination {event.destination!r} is not configured any more "
                "(a route or its push URL was removed)"
            )
        body = payloads.build(
            destination.push_format,
            event.kind,
            incident,
            instance_url=config.servicenow.instance_url,
            table=config.servicenow.table,
            extras=Extras() if event.kind is Kind.RESOLVE else extras,
            choices=cached_choice_labels(ledger),
        )
        lines.append(
            f"  {event.kind.value} at {event.destination} ({destination.push_format} format):"
        )
        lines += ["  " + line for line in dumps(body).splitlines()]
    if any(e.kind is not Kind.RESOLVE for e in decision.events):
        channel_id = match.route.channel_id if not match.route.skip else None
        lines += _escalation(config, extras, channel_id or config.flashduty.channel_id, openapi)
    data = {
        "route": match.route.name,
        "events": [{"kind": e.kind.value, "destination": e.destination} for e in decision.events],
        "why": decision.why,
    }
    return Explanation(lines, data)
