"""Escalation rules of a Flashduty channel, with every person, team and schedule by name.

What fd-servicenow's dialog previewed, for ``fd-sync rules`` and ``fd-sync
explain``. The rules come from ``/channel/escalate/rule/list``; the ids in
their layers are resolved in batches (one ``/person/infos``, ``/team/infos``
and ``/schedule/infos`` request per hundred ids), never one request per id.
Rendering is pure: a terminal table, or a JSON document for scripts.

A layer's escalate window and ``force_escalate`` say when the *next* layer
starts: after that many minutes unacknowledged (or unresolved, when forced).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fd_sync.flashduty.openapi import OpenAPIClient

SEVERITY_KEYS = ("critical", "warning", "info")


@dataclass(frozen=True)
class Named:
    id: str
    name: str  # "" when Flashduty no longer knows the id
    email: str = ""
    role_ids: tuple[int, ...] = ()  # schedules: the roles notified

    def shown(self, kind: str) -> str:
        name = self.name or f"#{self.id} (unknown)"
        return name if kind == "person" else f"{kind} {name}"


@dataclass(frozen=True)
class Layer:
    number: int
    escalate_window: int  # minutes before the next layer starts
    force_escalate: bool  # next layer starts even if acknowledged, until resolved
    persons: tuple[Named, ...]
    teams: tuple[Named, ...]
    schedules: tuple[Named, ...]
    emails: tuple[str, ...]
    channels: dict[str, tuple[str, ...]]  # critical / warning / info -> sms, voice, ...
    follow_preference: bool
    webhooks: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    rule_id: str
    name: str
    status: str
    layers: tuple[Layer, ...]


# --- loading --------------------------------------------------------------------------


def _ids(values: Any) -> list[str]:
    return [str(v) for v in values or () if v is not None]


def _targets(layer: dict[str, Any]) -> dict[str, Any]:
    target = layer.get("target")
    return target if isinstance(target, dict) else {}


def load_rules(client: OpenAPIClient, channel_id: int, *, enabled_only: bool = True) -> list[Rule]:
    """The channel's rules with names resolved: 1 + at most 3 batched requests."""
    raw = client.escalation_rules(channel_id)
    if enabled_only:
        raw = [r for r in raw if r.get("status") == "enabled"]
    layers = [layer for r in raw for layer in r.get("layers") or () if isinstance(layer, dict)]
    person_ids = [i for layer in layers for i in _ids(_targets(layer).get("person_ids"))]
    team_ids = [i for layer in layers for i in _ids(_targets(layer).get("team_ids"))]
    schedule_ids = [
        i for layer in layers for i in _ids(_targets(layer).get("schedule_to_role_ids"))
    ]
    persons = client.infos("person", person_ids) if person_ids else {}
    teams = client.infos("team", team_ids) if team_ids else {}
    schedules = client.infos("schedule", schedule_ids) if schedule_ids else {}
    return [_rule(r, persons, teams, schedules) for r in raw]


def _rule(
    raw: dict[str, Any],
    persons: dict[str, dict[str, Any]],
    teams: dict[str, dict[str, Any]],
    schedules: dict[str, dict[str, Any]],
) -> Rule:
    layers = []
    for number, layer in enumerate(
        (x for x in raw.get("layers") or () if isinstance(x, dict)), start=1
    ):
        target = _targets(layer)
        by_field = target.get("by")
        by: dict[str, Any] = by_field if isinstance(by_field, dict) else {}
        roles = target.get("schedule_to_role_ids")
        roles = roles if isinstance(roles, dict) else {}
        layers.append(
            Layer(
                number=number,
                escalate_window=int(layer.get("escalate_window") or 0),
                force_escalate=bool(layer.get("force_escalate")),
                persons=tuple(
                    Named(
                        i,
                        str(persons.get(i, {}).get("person_name") or ""),
                        str(persons.get(i, {}).get("email") or ""),
                    )
                    for i in _ids(target.get("person_ids"))
                ),
                teams=tuple(
                    Named(i, str(teams.get(i, {}).get("team_name") or ""))
                    for i in _ids(target.get("team_ids"))
                ),
                schedules=tuple(
                    Named(
                        i,
                        str(schedules.get(i, {}).get("schedule_name") or ""),
                        role_ids=tuple(int(r) for r in roles.get(i) or () if str(r).isdigit()),
                    )
                    for i in _ids(roles)
                ),
                emails=tuple(str(e) for e in target.get("emails") or ()),
                channels={k: tuple(str(c) for c in by.get(k) or ()) for k in SEVERITY_KEYS},
                follow_preference=bool(by.get("follow_preference")),
                webhooks=tuple(
                    str(w.get("type") or "webhook")
                    for w in target.get("webhooks") or ()
                    if isinstance(w, dict)
                ),
            )
        )
    return Rule(
        rule_id=str(raw.get("rule_id") or ""),
        name=str(raw.get("rule_name") or ""),
        status=str(raw.get("status") or ""),
        layers=tuple(layers),
    )


def channel_name(client: OpenAPIClient, channel_id: int) -> str:
    """The channel's name from /channel/list, or '' when it is not listed."""
    for channel in client.channels():
        if str(channel.get("channel_id")) == str(channel_id):
            return str(channel.get("channel_name") or "")
    return ""


# --- rendering ------------------------------------------------------------------------


def starts(layer: Layer, previous: Layer | None) -> str:
    """When a layer is notified: at once, or after the previous layer's window."""
    if previous is None:
        return "at once"
    condition = "unresolved" if previous.force_escalate else "unacknowledged"
    return f"after {previous.escalate_window} min {condition}"


def notifies(layer: Layer) -> str:
    parts = [p.shown("person") for p in layer.persons]
    parts += [t.shown("team") for t in layer.teams]
    parts += [s.shown("schedule") for s in layer.schedules]
    parts += [f"email {e}" for e in layer.emails]
    parts += [f"webhook {w}" for w in layer.webhooks]
    return ", ".join(parts) or "nobody"


def _channels(layer: Layer, severity: str) -> str:
    if layer.follow_preference:
        return "personal preference"
    return ", ".join(layer.channels.get(severity, ())) or "-"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "  ") -> list[str]:
    """Left-aligned columns two spaces apart; no trailing blanks."""
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def render_rule(rule: Rule, indent: str = "  ") -> list[str]:
    """One rule: a header line and a row per layer."""
    lines = [f"{rule.name} (rule_id {rule.rule_id})"]
    if not rule.layers:
        return [*lines, f"{indent}no layers"]
    rows = []
    previous = None
    for layer in rule.layers:
        rows.append(
            [
                str(layer.number),
                starts(layer, previous),
                notifies(layer),
                *(_channels(layer, s) for s in SEVERITY_KEYS),
            ]
        )
        previous = layer
    headers = ("layer", "starts", "notifies", *SEVERITY_KEYS)
    return lines + table(headers, rows, indent)


def render(rules: Sequence[Rule], *, channel_id: int, name: str) -> str:
    """``fd-sync rules``: every enabled rule of the channel, one table each."""
    channel = f"{name} ({channel_id})" if name else str(channel_id)
    count = f"{len(rules)} enabled escalation rule{'s' if len(rules) != 1 else ''}"
    lines = [f"channel {channel}: {count}"]
    for rule in rules:
        lines += ["", *render_rule(rule)]
    return "\n".join(lines)


def _named(kind: str, items: Sequence[Named]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        entry: dict[str, Any] = {f"{kind}_id": item.id, f"{kind}_name": item.name or None}
        if kind == "person":
            entry["email"] = item.email or None
        if kind == "schedule":
            entry["role_ids"] = list(item.role_ids)
        out.append(entry)
    return out


def as_json(rules: Sequence[Rule], *, channel_id: int, name: str) -> dict[str, Any]:
    """``fd-sync rules --json``: the same facts for scripts, ids kept beside names."""
    return {
        "channel": {"channel_id": channel_id, "channel_name": name or None},
        "rules": [
            {
                "rule_id": rule.rule_id,
                "rule_name": rule.name,
                "status": rule.status,
                "layers": [
                    {
                        "layer": layer.number,
                        "starts": starts(layer, rule.layers[i - 1] if i else None),
                        "escalate_window_minutes": layer.escalate_window,
                        "force_escalate": layer.force_escalate,
                        "persons": _named("person", layer.persons),
                        "teams": _named("team", layer.teams),
                        "schedules": _named("schedule", layer.schedules),
                        "emails": list(layer.emails),
                        "channels": {k: list(v) for k, v in layer.channels.items()},
                        "follow_preference": layer.follow_preference,
                        "webhooks": list(layer.webhooks),
                    }
                    for i, layer in enumerate(rule.layers)
                ],
            }
            for rule in rules
        ],
    }
