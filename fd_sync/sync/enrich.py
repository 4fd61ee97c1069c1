"""One cycle's look-ups around the decision: comments before it, extras after it.

The look-ups themselves are batched and cached by
:class:`~fd_sync.servicenow.lookups.Lookups`; what they become is pure
(:mod:`fd_sync.core.extras`). The rendered extras are stored with each queued
event, so what was decided at queue time is what Flashduty receives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from fd_sync.core.decide import Decision, Kind
from fd_sync.core.extras import merge_members, route_extras, with_severity
from fd_sync.core.incident import Incident
from fd_sync.core.payloads import Extras
from fd_sync.core.routing import Match
from fd_sync.servicenow.lookups import Lookups


class Enricher:
    """Comments before deciding, extras after: one cycle's ServiceNow look-ups."""

    def __init__(self, lookups: Lookups, *, sync_comments: bool, severity_by: str) -> None:
        self.lookups = lookups
        self.sync_comments = sync_comments
        self.severity_by = severity_by

    def with_comments(self, incidents: list[Incident], wanted: set[str]) -> list[Incident]:
        """Attach the latest comment to these incidents (one request for all of them); an
        incident without a comment is left as it is (its comment is already empty)."""
        if not self.sync_comments or not wanted:
            return incidents
        comments = self.lookups.latest_comments([i.sys_id for i in incidents if i.sys_id in wanted])
        return [
            replace(i, comment=comments[i.sys_id]) if i.sys_id in comments else i for i in incidents
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
