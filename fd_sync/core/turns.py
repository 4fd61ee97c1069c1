"""What one read of a Flashduty timeline decides for the ledger. Pure: no I/O, no clock.

The write-back's read phase hands over the incident as Flashduty shows it, the new
timeline entries composed into a :class:`~fd_sync.core.writeback.Turn`, and what the
ledger knows of the ServiceNow side; :func:`settle` says what that means (the alert
closed or opened again, a re-close owed, whether to keep watching, the write to queue),
and one Ledger step (:meth:`~fd_sync.store.ledger.Ledger.record_flashduty_read`) applies
it. :func:`own_version` says whether a PATCH's answer is a version fd-sync alone made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from fd_sync.core.feed import (
    SETTLE_SECONDS,
    WATCH_AFTER_CLOSE,
    FeedCursor,
    FeedEntry,
    FlashdutyIncident,
)
from fd_sync.core.incident import Incident
from fd_sync.core.writeback import Intents, Turn


@dataclass(frozen=True)
class ServiceNowSide:
    """What the ledger knows of the incident's ServiceNow side when Flashduty was read."""

    alert_open: bool
    open_in_servicenow: bool
    mod_count: int  # the version the ledger had: a later one fd-sync did not write is a person's


@dataclass(frozen=True)
class TurnOutcome:
    """What a read decided, for one ledger step to apply."""

    closed_in_flashduty: bool  # a responder (or Flashduty) closed it: no alert open any more
    held: bool  # ...while ServiceNow keeps it open: an edit must not page again
    reopened_in_flashduty: bool
    close_again_at_ms: int | None  # reopened in Flashduty, closed in ServiceNow: close again
    progress: str
    updated_at: int
    read_at: int
    cursor: FeedCursor  # how far the timeline is now read
    watching: bool  # read it again in later cycles
    intents: Intents | None  # the write to queue (with the version seen), or None
    note: str = ""  # the write's work note
    kinds: tuple[str, ...] = ()  # what the note says, in order


def settle(
    turn: Turn,
    incident: FlashdutyIncident,
    entries: Sequence[FeedEntry],
    cursor: FeedCursor,
    servicenow: ServiceNowSide,
    *,
    read_at: int,
) -> TurnOutcome:
    alert_open = servicenow.alert_open
    sn_open = servicenow.open_in_servicenow
    closed = held = reopened = False
    close_again_at: int | None = None
    if turn.closed and (alert_open or sn_open):
        closed, held, alert_open = True, sn_open, False
    elif turn.reopened:
        reopened, alert_open = True, True
        if not sn_open:
            # ServiceNow, the record of what is open, has it closed: close it again.
            close_again_at = max(e.created_at for e in entries if e.type == "i_reopen")
            alert_open = False
    settled = read_at >= incident.updated_at + SETTLE_SECONDS
    quiet = read_at >= incident.close_time + WATCH_AFTER_CLOSE
    done = incident.closed and not alert_open and not held and settled and quiet
    intents = (
        replace(turn.intents, seen_mod_count=servicenow.mod_count) if turn.worth_writing else None
    )
    return TurnOutcome(
        closed_in_flashduty=closed,
        held=held,
        reopened_in_flashduty=reopened,
        close_again_at_ms=close_again_at,
        progress=incident.progress,
        updated_at=incident.updated_at,
        read_at=read_at,
        cursor=cursor.past(entries),
        watching=not done,
        intents=intents,
        note=turn.note,
        kinds=turn.kinds,
    )


def answered_mod_count(answer: Mapping[str, object]) -> int | None:
    """The version ServiceNow says a write produced (None: it did not say)."""
    try:
        return int(str(answer.get("sys_mod_count")))
    except ValueError:
        return None


def own_version(
    snapshot: Incident, ledger_mod_count: int, answer: Mapping[str, object]
) -> Incident | None:
    """The version a PATCH produced, when it is the only change since the ledger's (then
    the next poll must not act on it); None when a person changed the incident too."""
    mod_count = answered_mod_count(answer)
    if mod_count is None or mod_count != ledger_mod_count + 1:
        return None

    def text(name: str, now: str) -> str:
        value = answer.get(name)
        return now if value is None else str(value)

    # Fields fd-sync writes (state, assigned_to, urgency, impact) as the write left them,
    # so that the next change is compared with fd-sync's own values, never echoes them.
    return replace(
        snapshot,
        state=text("state", snapshot.state),
        updated_on=text("sys_updated_on", snapshot.updated_on),
        mod_count=mod_count,
        urgency=text("urgency", snapshot.urgency),
        impact=text("impact", snapshot.impact),
        assigned_to_id=text("assigned_to", snapshot.assigned_to_id),
        assigned_to=text("assigned_to.name", snapshot.assigned_to),
    )
