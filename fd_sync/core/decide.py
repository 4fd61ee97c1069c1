"""Decide which events a batch of changed incidents needs. Pure: no I/O, no clock.

The rule is that Flashduty's open alerts mirror ServiceNow's open incidents.
The ledger remembers, per incident, the last version we acted on, whether its
alert is open, and at which destination (Flashduty integration) it lives;
comparing a fetched incident with that entry gives its events. The caller
routes each incident first (:mod:`fd_sync.core.routing`) and passes the
destination it should be at, or None when a skip route matched: an open
alert that must move yields two events, a resolve where it was and a create
where it now belongs, in that order, so the outbox's per-incident order keeps
them right. An incident dispatched by hand is pinned: routes are ignored until
it closes. The caller executes the decisions (ledger rows, outbox rows,
watermark) in one transaction, so a crash leaves the ledger as it was after
the last good page, and re-reading a page decides nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from fd_sync.core.incident import STATE_NAMES, Incident, IncidentState

DEFAULT_DESTINATION = "default"  # the [flashduty] push_url


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
    destination: str | None = None  # where the open alert lives (ledgers before routing: default)
    pinned: bool = False  # dispatched by hand: stays at its destination until it closes
    # Closed in Flashduty (a responder resolved it) while still open in ServiceNow: an edit
    # must not page again; it pages again once ServiceNow closes and reopens it.
    held: bool = False

    @property
    def alert_at(self) -> str | None:
        """The destination of the open alert, or None when no alert is open."""
        return (self.destination or DEFAULT_DESTINATION) if self.alert_open else None


@dataclass(frozen=True)
class Event:
    kind: Kind
    destination: str


@dataclass(frozen=True)
class Decision:
    incident: Incident
    entry: LedgerEntry  # the ledger row after this decision
    events: tuple[Event, ...]  # what to queue for Flashduty, in order
    cancel_pending: bool  # drop the queued, never-tried events of the open alert
    why: str
    unknown_state: bool = False

    @property
    def event(self) -> Kind | None:
        """The last event's kind: the one that leaves the alert in its new state."""
        return self.events[-1].kind if self.events else None


def is_newer(incident: Incident, entry: LedgerEntry) -> bool:
    return incident.updated_on > entry.updated_on or incident.mod_count > entry.mod_count


def decide(
    incident: Incident,
    entry: LedgerEntry | None,
    *,
    target: str | None = DEFAULT_DESTINATION,
    baseline_until: str | None = None,
) -> Decision | None:
    """The decision for one incident routed to ``target`` (None: skip), or None when
    nothing changed."""
    if entry is not None and not is_newer(incident, entry):
        # Look-back re-read or a duplicated row: this version was handled already.
        return None
    where = entry.alert_at if entry is not None else None
    pinned = where is not None and entry is not None and entry.pinned
    if pinned:
        target = where  # a dispatched alert stays where it was sent until it closes

    def make(
        events: tuple[Event, ...],
        at: str | None,
        why: str,
        cancel: bool = False,
        held: bool = False,
    ) -> Decision:
        created = any(e.kind is Kind.CREATE for e in events)
        reached = False if created or cancel else bool(entry and entry.alert_reached)
        new_entry = LedgerEntry(
            sys_id=incident.sys_id,
            updated_on=max(incident.updated_on, entry.updated_on if entry else ""),
            mod_count=max(incident.mod_count, entry.mod_count if entry else 0),
            alert_open=at is not None,
            # Compared only while the alert is open: closed rows skip the hash.
            fingerprint=incident.fingerprint() if at is not None else "",
            alert_reached=reached,
            destination=at,
            pinned=pinned and at is not None,
            held=held,
        )
        unknown = incident.state not in STATE_NAMES
        return Decision(incident, new_entry, events, cancel, why, unknown)

    if entry is None and baseline_until is not None and incident.updated_on <= baseline_until:
        # Changed before fd-sync was installed: remember it, page nobody.
        return make((), None, "baseline: last changed before the first run")
    if entry is not None and entry.held and where is None:
        if incident.is_open:
            # A responder closed its alert in Flashduty: an edit here must not page again.
            return make((), None, "closed in Flashduty, open in ServiceNow", held=True)
        # Closed here too: both agree again, and a reopen will page.
        return make((), None, "closed in Flashduty and now in ServiceNow")
    if incident.is_open and target is not None:
        create = Event(Kind.CREATE, target)
        if where is None:
            # New in ServiceNow, reopened, first seen open, or routed away from a skip route.
            return make((create,), target, "open in ServiceNow, no open alert")
        if where != target and entry is not None and not entry.alert_reached:
            # Moved before its alert ever left the outbox: drop it, create it where it belongs.
            return make((create,), target, f"moved from {where} before it was sent", cancel=True)
        if where != target:
            # Reassigned to another route: resolve where it was, then create where it belongs.
            return make((Event(Kind.RESOLVE, where), create), target, f"moved from {where}")
        if entry is not None and incident.fingerprint() != entry.fingerprint:
            # Something Flashduty displays changed.
            return make(
                (Event(Kind.UPDATE, where),), where, "open in both, displayed fields changed"
            )
        # Changed only in fields Flashduty does not show (work notes, counters).
        return make((), where, "open in both, nothing displayed changed")
    # Closed in ServiceNow, or open but now matching a skip route.
    reason = "closed in ServiceNow" if not incident.is_open else "matches a skip route"
    if where is not None and entry is not None and not entry.alert_reached:
        # Its alert never left the outbox: page nobody for an incident we no longer send.
        return make((), None, f"{reason} before its alert was sent: cancelled", cancel=True)
    if where is not None:
        # An alert is open in Flashduty that should not be: resolve it where it lives.
        return make((Event(Kind.RESOLVE, where),), None, f"{reason}, alert open")
    # No alert open, and none wanted.
    return make((), None, f"{reason}, no alert open")


def dispatch(incident: Incident, entry: LedgerEntry | None, destination: str) -> Decision:
    """``fd-sync dispatch``: send the incident to ``destination`` now and pin it there.

    Unlike :func:`decide`, a version already handled is sent again: the operator asked.
    """
    where = entry.alert_at if entry is not None else None
    reached = entry is not None and entry.alert_reached
    create = Event(Kind.CREATE, destination)
    events: tuple[Event, ...]
    if where == destination:
        # Already open there: update it with what the operator chose.
        events, why, cancel = (Event(Kind.UPDATE, destination),), "dispatched: update", False
    elif where is not None and not reached:
        # Open elsewhere but never sent: drop it, create it here.
        events, why, cancel = (create,), f"dispatched from {where} before it was sent", True
    elif where is not None:
        # Open elsewhere: resolve it there, then create it here.
        events, why, cancel = (
            (Event(Kind.RESOLVE, where), create),
            f"dispatched from {where}",
            False,
        )
    else:
        # No alert open: create one.
        events, why, cancel = (create,), "dispatched", False
    new_entry = LedgerEntry(
        sys_id=incident.sys_id,
        updated_on=max(incident.updated_on, entry.updated_on if entry else ""),
        mod_count=max(incident.mod_count, entry.mod_count if entry else 0),
        alert_open=True,
        fingerprint=incident.fingerprint(),
        alert_reached=reached and where == destination,
        destination=destination,
        pinned=True,
    )
    return Decision(incident, new_entry, events, cancel, why, incident.state not in STATE_NAMES)


DELETED_STATE = (
    IncidentState.CLOSED.value
)  # a deleted incident's alert closes as if the incident were Closed


def deleted(snapshot: Incident, entry: LedgerEntry, deleted_on: str) -> Decision | None:
    """An incident deleted in ServiceNow: its alert closes like a closed incident's.

    The deletion is a version newer than any the ledger has, in state Closed, routed
    nowhere; the ordinary decision then resolves (or cancels) wherever the alert is.
    """
    gone = replace(
        snapshot,
        state=DELETED_STATE,
        updated_on=max(deleted_on, entry.updated_on),
        mod_count=entry.mod_count + 1,
    )
    return decide(gone, entry, target=None)


def reconcile(
    incidents: Iterable[Incident],
    entries: Mapping[str, LedgerEntry],
    *,
    targets: Mapping[str, str | None] | None = None,
    baseline_until: str | None = None,
) -> list[Decision]:
    """Decisions for a batch, in order; a sys_id seen twice is judged against the first.

    ``targets`` maps sys_id to the destination its route chose (None: skip);
    incidents without one go to the default destination.
    """
    view = dict(entries)
    decisions: list[Decision] = []
    for incident in incidents:
        target = (targets or {}).get(incident.sys_id, DEFAULT_DESTINATION)
        decision = decide(
            incident, view.get(incident.sys_id), target=target, baseline_until=baseline_until
        )
        if decision is None:
            continue
        view[incident.sys_id] = decision.entry
        decisions.append(decision)
    return decisions


def adopted(incident: Incident, target: str) -> Decision:
    """An open alert opened before fd-sync, taken over: open at ``target``, with an empty
    fingerprint (whatever was sent before, the incident's next change updates it)."""
    entry = LedgerEntry(
        incident.sys_id,
        incident.updated_on,
        incident.mod_count,
        alert_open=True,
        fingerprint="",
        destination=target,
    )
    return Decision(incident, entry, (), False, "adopted")


def adopted_closed(incident: Incident, target: str) -> Decision | None:
    """An alert opened before fd-sync whose incident is closed: its resolve, decided as a
    version newer than the adopted one."""
    older = LedgerEntry(
        incident.sys_id, "", -1, alert_open=True, fingerprint="", destination=target
    )
    return decide(incident, older, target=None)


def closed_again(
    snapshot: Incident, entry: LedgerEntry, destination: str | None, reopened_at: str
) -> Decision:
    """Flashduty reopened an incident ServiceNow has closed: resolve the alert again. The
    event says why and when, since Flashduty discards one identical to an earlier event."""
    where = destination or entry.destination or DEFAULT_DESTINATION
    closed = replace(entry, alert_open=False, destination=None, held=False, pinned=False)
    again = replace(
        snapshot,
        comment=f"[fd-sync] reopened in Flashduty at {reopened_at} UTC, but {snapshot.number} "
        "is closed in ServiceNow: closed again",
    )
    why = "reopened in Flashduty, closed in ServiceNow"
    return Decision(again, closed, (Event(Kind.RESOLVE, where),), False, why)
