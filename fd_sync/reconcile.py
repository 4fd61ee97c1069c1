"""Decide which events a batch of changed incidents needs. Pure: no I/O, no clock.

The rule is that Flashduty's open alerts mirror ServiceNow's open incidents.
The ledger remembers, per incident, the last version we acted on and whether
its alert is open; comparing a fetched incident with that entry gives at most
one event. The caller executes the decisions (ledger rows, outbox rows,
watermark) in one transaction, so a crash leaves the ledger as it was after
the last good page, and re-reading a page decides nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from fd_sync.incident import STATE_NAMES, Incident


class Kind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows about one incident."""

    sys_id: str
    updated_on: str
    mod_count: int
    alert_open: bool
    fingerprint: str
    # False while every event of the open alert is still queued and untried:
    # then Flashduty cannot have it, and a resolve can simply cancel them.
    alert_reached: bool = True


@dataclass(frozen=True)
class Decision:
    incident: Incident
    entry: LedgerEntry  # the ledger row after this decision
    event: Kind | None  # what to queue for Flashduty, if anything
    cancel_pending: bool  # drop this incident's queued, never-tried events
    why: str
    unknown_state: bool = False


def is_newer(incident: Incident, entry: LedgerEntry) -> bool:
    return incident.updated_on > entry.updated_on or incident.mod_count > entry.mod_count


def decide(
    incident: Incident, entry: LedgerEntry | None, *, baseline_until: str | None = None
) -> Decision | None:
    """The one decision for one incident, or None when nothing changed."""
    if entry is not None and not is_newer(incident, entry):
        # Look-back re-read or a duplicated row: this version was handled already.
        return None

    def make(event: Kind | None, alert_open: bool, why: str, cancel: bool = False) -> Decision:
        reached = False if event is Kind.CREATE or cancel else bool(entry and entry.alert_reached)
        new_entry = LedgerEntry(
            sys_id=incident.sys_id,
            updated_on=max(incident.updated_on, entry.updated_on if entry else ""),
            mod_count=max(incident.mod_count, entry.mod_count if entry else 0),
            alert_open=alert_open,
            # Compared only while the alert is open: closed rows skip the hash.
            fingerprint=incident.fingerprint() if alert_open else "",
            alert_reached=reached,
        )
        unknown = incident.state not in STATE_NAMES
        return Decision(incident, new_entry, event, cancel, why, unknown)

    was_open = entry is not None and entry.alert_open
    if entry is None and baseline_until is not None and incident.updated_on <= baseline_until:
        # Changed before fd-sync was installed: remember it, page nobody.
        return make(None, False, "baseline: last changed before the first run")
    if incident.is_open:
        if not was_open:
            # New in ServiceNow, reopened, or first seen open: Flashduty needs an alert.
            return make(Kind.CREATE, True, "open in ServiceNow, no open alert")
        if entry is not None and incident.fingerprint() != entry.fingerprint:
            # Something Flashduty displays changed.
            return make(Kind.UPDATE, True, "open in both, displayed fields changed")
        # Changed only in fields Flashduty does not show (work notes, counters).
        return make(None, True, "open in both, nothing displayed changed")
    if was_open and entry is not None and not entry.alert_reached:
        # Closed before its alert ever left the outbox: page nobody for a closed incident.
        return make(None, False, "closed before its alert was sent: cancelled", cancel=True)
    if was_open:
        # Closed in ServiceNow, open in Flashduty.
        return make(Kind.RESOLVE, False, "closed in ServiceNow, alert open")
    # Closed, and no alert open: first seen closed, or closed again.
    return make(None, False, "closed in ServiceNow, no alert open")


def reconcile(
    incidents: Iterable[Incident],
    entries: Mapping[str, LedgerEntry],
    *,
    baseline_until: str | None = None,
) -> list[Decision]:
    """Decisions for a batch, in order; a sys_id seen twice is judged against the first."""
    view = dict(entries)
    decisions: list[Decision] = []
    for incident in incidents:
        decision = decide(incident, view.get(incident.sys_id), baseline_until=baseline_until)
        if decision is None:
            continue
        view[incident.sys_id] = decision.entry
        decisions.append(decision)
    return decisions


def with_reached(entry: LedgerEntry, reached: bool) -> LedgerEntry:
    return replace(entry, alert_reached=reached)
