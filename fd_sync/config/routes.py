"""``[routing]`` and every ``[[route]]``: validated into :class:`~fd_sync.core.routing.Routing`.

Routes that share a push URL share one destination (one client, one rate
limiter, one name in the outbox); every route's own name is an alias of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fd_sync.config.model import FlashdutyConfig, ServiceNowConfig
from fd_sync.config.schema import SCHEMA, Context, check_section, did_you_mean, problem
from fd_sync.config.secrets import route_push_url
from fd_sync.config.urls import PUSH_URL_HELP, check_push_url
from fd_sync.core import routing
from fd_sync.core.decide import DEFAULT_DESTINATION
from fd_sync.core.routing import PushFormat
from fd_sync.errors import ConfigError


def push_url_format(url: str, where: str, ctx: Context, origin: str = "") -> PushFormat:
    """The push URL rule for ``[flashduty]`` and every ``[[route]]``: its format, or the
    error naming where the URL came from (never the URL: it holds the integration key)."""
    fmt, warning = check_push_url(url)
    path = ctx.path
    if fmt is None:
        if origin and not origin.startswith(f"{path}:"):
            label = where if where.startswith("[[") else f"[{where}]"
            raise ConfigError(f"{origin}, for {label} push_url: {PUSH_URL_HELP}")
        raise problem(path, where, "push_url", PUSH_URL_HELP)
    if warning:
        label = where if where.startswith("[[") else f"[{where}]"
        ctx.warnings.append(f"{label} push_url {warning} (accepted for local testing only)")
    return fmt


@dataclass
class _Destinations:
    """Push URLs seen so far, each under the one name the outbox will store."""

    default_url: str
    by_url: dict[str, str] = field(default_factory=dict)
    found: list[routing.RouteDestination] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)

    def name_for(self, route_name: str, url: str, fmt: PushFormat) -> str:
        if url == self.default_url:
            name = DEFAULT_DESTINATION
        elif url in self.by_url:
            name = self.by_url[url]  # routes sharing a push URL share one destination
        else:
            name = self.by_url[url] = routing.destination_name(route_name)
            self.found.append(routing.RouteDestination(name, url, fmt))
        self.aliases[routing.destination_name(route_name)] = name
        return name


# Keys that make no sense on a route that sends nothing.
_SENDING_KEYS = (
    "push_url",
    "push_url_env",
    "push_url_file",
    "push_url_credential",
    "rule_id",
    "personal_channels",
    "notify_members",
    "notify_group_members",
    "severity",
    "labels",
    "teams_id",
    "channel_id",
)
_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_routing(
    v: dict[str, Any],
    tables: list[dict[str, Any]],
    sn: ServiceNowConfig,
    fd: FlashdutyConfig,
    ctx: Context,
) -> routing.Routing:
    """[routing] and every [[route]], in file order; names unique, match keys known."""
    path = ctx.path
    destinations = _Destinations(fd.push_url)
    routes: list[routing.Route] = []
    seen: set[str] = set()
    for index, table in enumerate(tables, start=1):
        name = table.get("name")
        where = f"[[route]] #{index}" + (f" {name!r}" if isinstance(name, str) else "")
        values = check_section(where, table, SCHEMA["route"], path)
        if not name or not _ROUTE_NAME.fullmatch(name):
            raise problem(
                path, where, "name", "is required: letters, digits, '_', '.', '-' (at most 64)"
            )
        if name in seen:
            raise problem(path, where, "name", "is used by an earlier route; names are unique")
        seen.add(name)
        routes.append(_route(values, where, sn, fd, destinations, ctx))
    default = routing.Route(
        routing.DEFAULT_ROUTE,
        skip=v["default"] == routing.SKIP,
        teams_id=fd.teams_id,
        channel_id=fd.channel_id,
    )
    return routing.Routing(
        routes=tuple(routes),
        default=default,
        severity_by=v["severity_by"],
        destinations=tuple(destinations.found),
        aliases=destinations.aliases,
    )


def _route(
    v: dict[str, Any],
    where: str,
    sn: ServiceNowConfig,
    fd: FlashdutyConfig,
    destinations: _Destinations,
    ctx: Context,
) -> routing.Route:
    name, path = v["name"], ctx.path
    match = _route_match(v["match"] or {}, where, sn, path)
    if v["skip"]:
        given = [k for k in _SENDING_KEYS if v[k] not in (None, "", (), False)]
        if given:
            raise problem(
                path, where, given[0], "a skip route sends nothing: remove it, or skip = false"
            )
        return routing.Route(name, match, skip=True)
    destination = DEFAULT_DESTINATION
    url, origin = route_push_url(v, where, ctx.path, ctx.env, ctx.secrets_required)
    if url:
        ctx.sources[f"{where} push_url"] = origin
        fmt = push_url_format(url, where, ctx, origin)
        destination = destinations.name_for(name, url, fmt)
    channels = tuple(dict.fromkeys(v["personal_channels"]))
    unknown = [c for c in channels if c not in routing.CHANNELS]
    if unknown:
        raise problem(
            path,
            where,
            "personal_channels",
            f"unknown channel {unknown[0]!r}; choose from {', '.join(routing.CHANNELS)}",
        )
    members = tuple(v["notify_members"])
    bad = [m for m in members if not isinstance(m, str) or not m.strip() or set(m) & set(",^")]
    if bad:
        raise problem(
            path, where, "notify_members", "must be ServiceNow emails or user names, e.g. 'bob'"
        )
    return routing.Route(
        name,
        match,
        destination=destination,
        rule_id=v["rule_id"].strip(),
        personal_channels=channels,
        notify_members=tuple(m.strip() for m in members),
        notify_group_members=v["notify_group_members"],
        severity=v["severity"],
        labels=_route_labels(v["labels"] or {}, where, path),
        teams_id=fd.teams_id if v["teams_id"] is None else v["teams_id"],
        channel_id=v["channel_id"] or fd.channel_id,
    )


def _route_match(
    match: dict[str, Any], where: str, sn: ServiceNowConfig, path: Path
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    known = [*routing.MATCH_KEYS, *sn.extra_fields]
    out = []
    for key, raw in match.items():
        if key not in known:
            raise problem(
                path,
                where,
                "match",
                f"unknown key {key!r}{did_you_mean(key, known)}; match keys are "
                f"{', '.join(known)} (add other incident fields to [servicenow] extra_fields)",
            )
        values = raw if isinstance(raw, list) else [raw]
        if not values or not all(
            isinstance(x, str | int) and not isinstance(x, bool) for x in values
        ):
            raise problem(
                path, where, "match", f'{key} must be a list of values, e.g. {key} = ["1", "2"]'
            )
        out.append((key, tuple(str(x).strip() for x in values)))
    return tuple(out)


def _route_labels(labels: dict[str, Any], where: str, path: Path) -> tuple[tuple[str, str], ...]:
    for key, value in labels.items():
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]{0,127}", key):
            raise problem(
                path,
                where,
                "labels",
                f"{key!r} is not a Flashduty label name ([a-zA-Z_][a-zA-Z0-9_]*)",
            )
        if not isinstance(value, str):
            raise problem(path, where, "labels", f"{key} must be a string")
    return tuple(labels.items())
