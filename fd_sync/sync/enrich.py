"""What an event carries besides the incident: people to notify, the latest comment.

Routes name people by email or user name and may ask for "everyone in the
assignment group" (fd-servicenow's select-all); Flashduty wants them as
``{sys_id, name, email}``. Every look-up is batched and cached for the life of
the :class:`Lookups` (one cycle, or one command), never one request per
incident: one ``sys_user`` request for the names a page needs that are not
known yet, one ``sys_user_grmember`` request for the groups of a page (each
group at most once per cycle, dot-walking ``user.name`` and ``user.email``),
and one ``sys_journal_field`` request per page for the latest additional
comments. The integration user needs read access to those tables only when
the configuration uses them.

The rendered :class:`~fd_sync.core.payloads.Extras` are stored with each queued
event, so what was decided at queue time is what Flashduty receives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from fd_sync import logs
from fd_sync.core import routing
from fd_sync.core.decide import Decision, Kind
from fd_sync.core.incident import Incident
from fd_sync.core.payloads import Extras, Member
from fd_sync.core.routing import Match, Route
from fd_sync.errors import UsageRefused
from fd_sync.servicenow.client import ServiceNowClient

JOURNAL_PAGE = 1000  # comments per request; one request per page unless a page has more


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return value.strip() if isinstance(value, str) else ""


def query_value(value: str, what: str) -> str:
    """A value safe inside an encoded query: '^' and ',' would change its meaning."""
    if not value or set(value) & set("^,"):
        raise UsageRefused(f"{what} {value!r} cannot be looked up (it contains '^' or ',')")
    return value


class Lookups:
    """Batched, cached ServiceNow look-ups through the read-only Table API client."""

    def __init__(self, client: ServiceNowClient) -> None:
        self.client = client
        self.log = logs.get("enrich")
        self._users: dict[str, Member | None] = {}  # email or user_name, casefolded
        self._groups: dict[str, tuple[Member, ...]] = {}  # group sys_id -> active members

    def users(self, keys: Iterable[str]) -> dict[str, Member]:
        """Users by email or user_name; names ServiceNow does not know are left out (logged)."""
        keys = list(dict.fromkeys(keys))
        wanted = [k for k in keys if k.casefold() not in self._users]
        if wanted:
            emails = [query_value(k, "user") for k in wanted if "@" in k]
            names = [query_value(k, "user") for k in wanted if "@" not in k]
            terms = [f"emailIN{','.join(emails)}"] if emails else []
            terms += [f"user_nameIN{','.join(names)}"] if names else []
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": "^OR".join(terms),
                    "sysparm_fields": "sys_id,name,email,user_name",
                    "sysparm_limit": str(4 * len(wanted) + 10),
                },
                table="sys_user",
            )
            for row in rows:
                if not isinstance(row, dict) or not _text(row, "sys_id"):
                    continue
                member = Member(_text(row, "sys_id"), _text(row, "name"), _text(row, "email"))
                for key in (_text(row, "email"), _text(row, "user_name")):
                    if key:
                        self._users[key.casefold()] = member
            for key in wanted:
                if self._users.setdefault(key.casefold(), None) is None:
                    self.log.warning("notify_member_unknown", member=key, table="sys_user")
        return {k: m for k in keys if (m := self._users.get(k.casefold())) is not None}

    def group_members(self, group_ids: Iterable[str]) -> dict[str, tuple[Member, ...]]:
        """The active members of each group, by name; each group fetched once."""
        ids = [g for g in dict.fromkeys(group_ids) if g]
        wanted = [query_value(g, "group") for g in ids if g not in self._groups]
        if wanted:
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": f"groupIN{','.join(wanted)}^user.active=true^ORDERBYuser.name",
                    "sysparm_fields": "group,user,user.name,user.email",
                    "sysparm_limit": "10000",
                },
                table="sys_user_grmember",
            )
            found: dict[str, dict[str, Member]] = {g: {} for g in wanted}
            for row in rows:
                if isinstance(row, dict) and _text(row, "group") in found and _text(row, "user"):
                    member = Member(
                        _text(row, "user"), _text(row, "user.name"), _text(row, "user.email")
                    )
                    found[_text(row, "group")].setdefault(member.sys_id, member)
            self._groups.update({g: tuple(m.values()) for g, m in found.items()})
        return {g: self._groups[g] for g in ids}

    def latest_comments(self, sys_ids: Sequence[str]) -> dict[str, str]:
        """The newest additional comment (``comments`` journal) of each incident that has one."""
        ids = list(dict.fromkeys(sys_ids))
        if not ids:
            return {}
        params = {
            "sysparm_query": f"name={self.client.config.table}^element=comments"
            f"^element_idIN{','.join(ids)}^ORDERBYDESCsys_created_on",
            "sysparm_fields": "element_id,value,sys_created_on",
            "sysparm_limit": str(JOURNAL_PAGE),
        }
        latest: dict[str, str] = {}
        offset = 0
        while True:
            rows, _ = self.client.table_get(
                {**params, "sysparm_offset": str(offset)}, table="sys_journal_field"
            )
            for row in rows:
                if isinstance(row, dict) and _text(row, "element_id"):
                    latest.setdefault(_text(row, "element_id"), str(row.get("value") or ""))
            if len(rows) < JOURNAL_PAGE:
                return latest
            offset += JOURNAL_PAGE

    def group_by_name(self, name: str) -> tuple[str, str] | None:
        """(sys_id, name) of the assignment group with this name, if there is one."""
        rows, _ = self.client.table_get(
            {
                "sysparm_query": f"name={query_value(name, 'group')}",
                "sysparm_fields": "sys_id,name",
                "sysparm_limit": "1",
            },
            table="sys_user_group",
        )
        row = rows[0] if rows and isinstance(rows[0], dict) else None
        return (_text(row, "sys_id"), _text(row, "name")) if row else None

    def incident_by_number(self, number: str) -> Any | None:
        """The raw row of one incident, read with the fields a cycle reads."""
        rows, _ = self.client.table_get(
            {
                "sysparm_query": f"number={query_value(number, 'incident number')}",
                "sysparm_fields": ",".join(self.client.fields),
                "sysparm_limit": "1",
            }
        )
        return rows[0] if rows else None


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


class Enricher:
    """Comments before deciding, extras after: one cycle's ServiceNow look-ups."""

    def __init__(self, lookups: Lookups, *, sync_comments: bool, severity_by: str) -> None:
        self.lookups = lookups
        self.sync_comments = sync_comments
        self.severity_by = severity_by

    def with_comments(self, incidents: list[Incident], changed: set[str]) -> list[Incident]:
        """Attach the latest comment to the changed incidents (one request for all)."""
        if not self.sync_comments or not changed:
            return incidents
        comments = self.lookups.latest_comments(
            [i.sys_id for i in incidents if i.sys_id in changed]
        )
        return [
            replace(i, comment=comments.get(i.sys_id, "")) if i.sys_id in changed else i
            for i in incidents
        ]

    def extras(
        self,
        decisions: Sequence[Decision],
        matches: Mapping[str, Match],
        pins: Mapping[str, Extras],
    ) -> dict[str, Extras]:
        """Extras for every decision that creates or updates an alert."""
        sending = [d for d in decisions if any(e.kind is not Kind.RESOLVE for e in d.events)]
        routed = [(d.incident, matches[d.incident.sys_id].route) for d in sending]
        routed = [(i, r) for i, r in routed if i.sys_id not in pins]
        users = self.lookups.users(k for _, r in routed for k in r.notify_members)
        groups = self.lookups.group_members(
            i.assignment_group_id for i, r in routed if r.notify_group_members
        )
        out: dict[str, Extras] = {}
        for incident, route in routed:
            named = [users[k] for k in route.notify_members if k in users]
            group = (
                groups.get(incident.assignment_group_id, ()) if route.notify_group_members else ()
            )
            members = merge_members(named, group)
            out[incident.sys_id] = route_extras(incident, route, self.severity_by, members)
        for d in sending:
            if d.incident.sys_id in pins:
                # Pinned by a dispatch: its later events carry what the operator chose.
                out[d.incident.sys_id] = with_severity(
                    pins[d.incident.sys_id], d.incident, self.severity_by
                )
        return out
