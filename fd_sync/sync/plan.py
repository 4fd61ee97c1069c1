"""Planning one page: what its incidents mean for Flashduty, decided before anything is written.

The phases, in order, each batched over the page (never one request or query
per incident):

1. parse the rows; rows that cannot be placed are set aside for the quarantine;
2. read the ledger once for the page's incidents;
3. attach the latest comments of the changed incidents (one request);
4. route the changed incidents and decide (:func:`fd_sync.core.decide.reconcile`, pure);
5. look up what their routes add: people, group members, pins (batched).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fd_sync import logs
from fd_sync.core import routing
from fd_sync.core.decide import Decision, LedgerEntry, is_newer, reconcile
from fd_sync.core.incident import Incident, RowVersion, parse_record, row_version
from fd_sync.core.payloads import Extras
from fd_sync.core.routing import Routing
from fd_sync.core.tickets import OwedWrite
from fd_sync.errors import BadRecord
from fd_sync.store.ledger import Ledger
from fd_sync.store.ticket_steps import TicketForward
from fd_sync.sync.enrich import Enricher
from fd_sync.sync.forward import AssignmentForwarder
from fd_sync.sync.tickets.forward import TicketForwarder

BadRow = tuple[str | None, str, str]  # (sys_id, reason, sample) for the quarantine


@dataclass(frozen=True)
class PagePlan:
    """One page, decided: parsed incidents, their decisions, and the rows that were bad."""

    incidents: list[Incident]
    decisions: list[Decision]
    bad: list[BadRow]
    extras: dict[str, Extras] = field(default_factory=dict)  # by sys_id: what routes add
    read: int = 0  # well-formed rows on the page, parsed or not
    forwards: list[TicketForward] = field(default_factory=list)  # tickets' changes, for Flashduty
    owed: list[OwedWrite] = field(default_factory=list)  # the desk's reassignments, for Flashduty


class Planner:
    """Plans pages against one ledger; lives for one cycle (its caches and its log-once set)."""

    def __init__(
        self,
        ledger: Ledger,
        routes: Routing,
        enricher: Enricher,
        *,
        extra_fields: tuple[str, ...] = (),
        baseline_until: str | None = None,
        tickets: TicketForwarder | None = None,
        assignments: AssignmentForwarder | None = None,
    ) -> None:
        self.ledger = ledger
        self.tickets = tickets  # with [tickets] on: tickets' rows go to Flashduty's OpenAPI
        self.assignments = assignments  # with [forward] assignment
        self.routes = routes
        self.enricher = enricher
        self.extra_fields = extra_fields
        self.baseline_until = baseline_until
        self.overlay: dict[str, LedgerEntry] = {}  # dry run: decisions the ledger did not keep
        self._unknown_states: set[str] = set()  # logged once per cycle
        self.log = logs.get("cycle")

    def plan(self, records: list[Any]) -> PagePlan:
        """Parse, route and decide a page, and render its events' extras; writes nothing."""
        versions = [row_version(raw) for raw in records]
        read = sum(1 for v in versions if v is not None)
        forwards: list[TicketForward] = []
        if self.tickets is not None:
            split = self.tickets.split(records, versions)
            records, versions, forwards = split.others, split.other_versions, split.forwards
        ids = [v.sys_id for v in versions if v is not None]
        entries = self.ledger.entries(ids)
        entries.update({s: self.overlay[s] for s in ids if s in self.overlay})
        incidents, bad = self._parse(self._worth_parsing(records, versions, entries))
        entries = {k: routing.canonical(e, self.routes.aliases) for k, e in entries.items()}
        changed = {
            i.sys_id for i in incidents if i.sys_id not in entries or is_newer(i, entries[i.sys_id])
        }
        # A comment can matter only where an event may follow: an open incident, or one
        # whose alert is open (its resolve). A backfill's many closed rows cost nothing.
        eventful = {
            i.sys_id
            for i in incidents
            if i.sys_id in changed
            and (i.is_open or (i.sys_id in entries and entries[i.sys_id].alert_open))
        }
        incidents = self.enricher.with_comments(incidents, eventful)
        matches = {
            i.sys_id: routing.route(i, self.routes) for i in incidents if i.sys_id in changed
        }
        targets = {sys_id: m.target for sys_id, m in matches.items()}
        decisions = reconcile(
            incidents, entries, targets=targets, baseline_until=self.baseline_until
        )
        self._note_unknown_states(decisions)
        pins = self.ledger.incidents.pins(d.incident.sys_id for d in decisions if d.entry.pinned)
        extras = self.enricher.extras(decisions, matches, pins)
        owed = self.assignments.owed(decisions) if self.assignments is not None else []
        return PagePlan(incidents, decisions, bad, extras, read=read, forwards=forwards, owed=owed)

    @staticmethod
    def _worth_parsing(
        records: list[Any], versions: list[RowVersion | None], entries: dict[str, LedgerEntry]
    ) -> list[Any]:
        """The rows that may decide something, and the malformed ones (for the quarantine).

        Two kinds decide nothing and are left raw: a version the ledger has handled (a
        look-back re-read), and an incident first seen closed, which never had an alert
        and needs none, so the ledger keeps no row of it. A second version of a sys_id in
        the same page is always parsed, since it is judged against the first.
        """
        kept: list[Any] = []
        parsed: set[str] = set()
        for raw, version in zip(records, versions, strict=True):
            if version is None:
                kept.append(raw)  # malformed: parse_record says why
                continue
            entry = entries.get(version.sys_id)
            if version.sys_id not in parsed:
                if entry is None and version.closed:
                    continue  # closed, never alerted: nothing to send, nothing to keep
                if entry is not None and not (
                    version.updated_on > entry.updated_on or version.mod_count > entry.mod_count
                ):
                    continue  # this version was handled already
            parsed.add(version.sys_id)
            kept.append(raw)
        return kept

    def remember(self, plan: PagePlan) -> None:
        """Dry run: keep the decisions in memory only, so later pages build on them."""
        self.overlay.update({d.incident.sys_id: d.entry for d in plan.decisions})

    def _parse(self, records: list[Any]) -> tuple[list[Incident], list[BadRow]]:
        incidents: list[Incident] = []
        bad: list[BadRow] = []
        for raw in records:
            try:
                incidents.append(parse_record(raw, self.extra_fields))
            except BadRecord as exc:
                sys_id = raw.get("sys_id") if isinstance(raw, dict) else None
                sys_id = sys_id if isinstance(sys_id, str) else None
                sample = json.dumps(raw, ensure_ascii=True, default=str)[:2000]
                self.log.warning("record_quarantined", sys_id=sys_id, reason=str(exc))
                bad.append((sys_id, str(exc), sample))
        return incidents, bad

    def _note_unknown_states(self, decisions: list[Decision]) -> None:
        for d in decisions:
            state = d.incident.state
            if d.unknown_state and state not in self._unknown_states:
                self._unknown_states.add(state)
                self.log.warning(
                    "unknown_state_treated_as_open", state=state, number=d.incident.number
                )
