"""What responders did in Flashduty, turned into one ServiceNow write. Pure: no I/O, no clock.

The reader hands over an incident's new timeline entries (``/incident/feed``,
times in milliseconds) and the incident as ``/incident/list-by-ids`` shows it.
:func:`compose` turns them into a work note and the *intents* a state change may
follow from; :func:`state_fields` decides that change later, against the
ServiceNow incident as it is at the moment of writing, because a person may have
moved it since. The echo rules live here, each with its reason:

- a resolve whose origin is ``event`` is the one fd-sync itself pushed (the
  incident closed in ServiceNow): never written back;
- the timeline's opening (``i_new``, and the escalation rule's first assignment)
  belongs to fd-sync's own create: never written back;
- state only moves forward: an ack moves New and nothing else, a close moves an
  open incident, and neither overrides a change a person made in ServiceNow after
  the Flashduty event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fd_sync.core.feed import KIND_OF_TYPE, FeedEntry, FlashdutyIncident, Person
from fd_sync.core.fields import Assignee, assignee_of, severity_changed
from fd_sync.core.incident import IncidentState, is_closed_state

NEW_STATE = IncidentState.NEW.value
# Every work note fd-sync writes ends with its write-back id: after a timeout, the journal
# says whether the note landed (a journal write is not idempotent: never blindly again).
MARKER_PREFIX = "[fd-sync w"
_MARKER = re.compile(r"\[fd-sync w([0-9]+)\]")


def marker(write_id: int) -> str:
    return f"{MARKER_PREFIX}{write_id}]"


def marker_ids(note: str) -> set[int]:
    return {int(found) for found in _MARKER.findall(note)}


OWN_RESOLVE_ORIGIN = "event"  # i_rslv detail.from when an alert event (fd-sync's push) closed it
PERSON_ORIGINS = frozenset({"voice", "console", "card", "wcard"})  # a responder closed it


@dataclass(frozen=True)
class Close:
    """Flashduty closed the incident: what a ServiceNow resolve would need."""

    at_ms: int
    origin: str
    closer: str
    resolution: str
    url: str
    # A ticket's (Flashduty-born) monitoring recovery: it closes the ticket as a person would.
    recovered: bool = False

    @property
    def by_responder(self) -> bool:
        return self.origin in PERSON_ORIGINS or self.recovered


@dataclass(frozen=True)
class Intents:
    """What a state change may follow from, decided when the write is made."""

    ack_at_ms: int | None = None
    close: Close | None = None
    reopened: bool = False  # after the close: the close no longer stands
    # The ServiceNow version the ledger had when the Flashduty event was read: a later
    # version that fd-sync did not write is a person's change, which a state change
    # never overrides (no clock of either system is compared).
    seen_mod_count: int | None = None
    assignee: Assignee | None = None  # [writeback] assign: who becomes assigned_to
    severity: str | None = None  # [writeback] severity: the severity urgency follows

    @property
    def sets_fields(self) -> bool:
        """Whether a field may change (then ServiceNow's present version is read first)."""
        return (
            self.ack_at_ms is not None
            or self.close is not None
            or self.assignee is not None
            or self.severity is not None
        )

    def merged(self, later: Intents) -> Intents:
        acts = later.sets_fields
        return Intents(
            ack_at_ms=self.ack_at_ms if self.ack_at_ms is not None else later.ack_at_ms,
            close=None if later.reopened else (later.close or self.close),
            reopened=later.reopened or (self.reopened and later.close is None),
            seen_mod_count=later.seen_mod_count if acts else self.seen_mod_count,
            assignee=later.assignee or self.assignee,
            severity=later.severity or self.severity,
        )

    def to_json(self) -> str:
        close = self.close.__dict__ if self.close else None
        assignee = self.assignee.__dict__ if self.assignee else None
        return json.dumps(
            {
                "ack_at_ms": self.ack_at_ms,
                "close": close,
                "reopened": self.reopened,
                "seen_mod_count": self.seen_mod_count,
                "assignee": assignee,
                "severity": self.severity,
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> Intents:
        data = json.loads(text) if text else {}
        close, assignee = data.get("close"), data.get("assignee")
        return cls(
            data.get("ack_at_ms"),
            Close(**close) if close else None,
            bool(data.get("reopened")),
            data.get("seen_mod_count"),
            Assignee(**assignee) if assignee else None,
            data.get("severity"),
        )


@dataclass(frozen=True)
class Turn:
    """An incident's new timeline entries, composed: the work note, the intents, and what
    they mean for the alert fd-sync keeps open (closed by Flashduty, or opened again)."""

    note: str
    kinds: tuple[str, ...]  # the kinds written, in order ("ack", "comment", ...)
    intents: Intents
    closed: bool  # Flashduty closed it, not because of fd-sync's own resolve
    reopened: bool
    lines: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()  # who did each of ``kinds`` ("" for Flashduty itself)

    @property
    def worth_writing(self) -> bool:
        return bool(self.note) or self.intents.sets_fields


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _names(ids: Iterable[Any], people: Mapping[int, Person]) -> str:
    out = []
    for raw in ids:
        try:
            pid = int(raw)
        except (TypeError, ValueError):
            continue
        out.append(people.get(pid, Person()).short(pid))
    return ", ".join(out) or "nobody"


def _line(
    entry: FeedEntry,
    people: Mapping[int, Person],
    incident: FlashdutyIncident,
    *,
    resolution: str = "",
) -> str:
    who = people.get(entry.creator_id, Person())
    by = "Flashduty" if entry.creator_id == 0 else who.label(entry.creator_id)
    detail = entry.detail
    if entry.type == "i_ack":
        text = f"Acknowledged by {by}"
    elif entry.type == "i_unack":
        text = f"Acknowledgement withdrawn by {by}"
    elif entry.type == "i_comm":
        text = f"Comment by {by}: {str(detail.get('comment') or '').strip()}"
    elif entry.type == "i_assign":
        targets = _names(detail.get("to") or detail.get("person_ids") or (), people)
        how = "Escalated" if detail.get("type") == "escalate" else "Assigned"
        text = f"{how} to {targets}" + ("" if entry.creator_id == 0 else f" by {by}")
    elif entry.type == "i_a_rspd":
        text = f"Responders added by {by}: {_names(detail.get('to') or (), people)}"
    elif entry.type == "i_rslv":
        origin = str(detail.get("from") or "")
        if origin in PERSON_ORIGINS:
            text = f"Resolved by {by}"
        else:
            text = f"Resolved automatically by Flashduty ({origin or 'unknown origin'})"
        if resolution:
            text += f": {resolution}"
    elif entry.type == "i_reopen":
        reason = str(detail.get("reason") or "").strip()
        text = f"Reopened by {by}" + (f": {reason}" if reason else "")
    elif entry.type == "i_r_severity":
        before, after = detail.get("from"), detail.get("to") or incident.severity
        text = f"Severity changed to {after}" + (f" (was {before})" if before else "")
        text += "" if entry.creator_id == 0 else f" by {by}"
    elif entry.type == "i_notify":
        persons = [p.get("person_id") for p in detail.get("persons") or () if isinstance(p, dict)]
        channel = str(detail.get("by") or "a channel")
        text = f"Notified {_names(persons, people)} by {channel}"
    else:
        text = entry.type
    return f"[Flashduty] {text} ({_when(entry.created_at)})"


def is_own(entry: FeedEntry, *, flashduty_born: bool = False) -> bool:
    """Entries fd-sync caused: its create's opening, and the resolve it pushed. For a
    ticket (an incident born in Flashduty) an ``event`` resolve is the monitoring tool's
    recovery, not fd-sync's; the opening is the monitoring tool's, already in the ticket."""
    if entry.type == "i_new":
        return True  # the incident fd-sync's create opened
    if entry.type == "i_assign" and entry.creator_id == 0:
        # The escalation rule's first assignment comes with the create; later layers are news.
        return not int(entry.detail.get("layer_idx") or 0)
    own_resolve = entry.type == "i_rslv" and entry.detail.get("from") == OWN_RESOLVE_ORIGIN
    return own_resolve and not flashduty_born


def people_of(entries: Iterable[FeedEntry]) -> set[int]:
    """Every member id the work note will name, for one /person/infos look-up."""
    ids: set[int] = set()
    for e in entries:
        if e.creator_id:
            ids.add(e.creator_id)
        for key in ("to", "person_ids"):
            ids.update(int(i) for i in e.detail.get(key) or () if str(i).isdigit())
        for p in e.detail.get("persons") or ():
            if isinstance(p, dict) and str(p.get("person_id", "")).isdigit():
                ids.add(int(p["person_id"]))
    return ids


def compose(
    entries: Sequence[FeedEntry],
    incident: FlashdutyIncident,
    people: Mapping[int, Person],
    *,
    work_notes: frozenset[str],
    flashduty_born: bool = False,
    assign: str = "",
    severity: bool = False,
) -> Turn:
    """The work note and intents of an incident's new entries (oldest first); for a ticket
    (``flashduty_born``), entries of fd-sync's own OpenAPI writes are left out already."""
    lines: list[str] = []
    kinds: list[str] = []
    actors: list[str] = []
    ack_at: int | None = None
    close: Close | None = None
    closed = reopened = False
    # The feed does not say what each resolve's resolution was; the incident has the
    # latest close's: it belongs to the last resolve, if the incident is still closed.
    last_close = max(
        (i for i, e in enumerate(entries) if e.type in ("i_rslv", "i_reopen")), default=-1
    )
    for index, entry in enumerate(entries):
        kind = KIND_OF_TYPE.get(entry.type)
        if kind is None or is_own(entry, flashduty_born=flashduty_born):
            continue  # not a responder's action, or one fd-sync caused
        resolution = ""
        if entry.type == "i_ack" and ack_at is None:
            ack_at = entry.created_at
        elif entry.type == "i_rslv":
            current = index == last_close and incident.closed
            resolution = incident.resolution if current else ""
            who = people.get(entry.creator_id, Person())
            if not (who.name or who.email) and current and incident.closer:
                who = incident.closer
            close = Close(
                at_ms=entry.created_at,
                origin=str(entry.detail.get("from") or ""),
                closer=who.short(entry.creator_id) if entry.creator_id else "Flashduty",
                resolution=resolution,
                url=incident.url,
                recovered=flashduty_born,
            )
            closed, reopened = True, False
        elif entry.type == "i_reopen":
            close, closed, reopened = None, False, True
        if kind in work_notes or (kind == "severity" and severity):
            lines.append(_line(entry, people, incident, resolution=resolution))
            kinds.append(kind)
            who = people.get(entry.creator_id, Person())
            actors.append(who.short(entry.creator_id) if entry.creator_id else "")
    if lines and incident.url:
        lines.append(f"[Flashduty] Incident: {incident.url}")
    news = [e for e in entries if not is_own(e, flashduty_born=flashduty_born)]
    intents = Intents(
        ack_at_ms=ack_at,
        close=close,
        reopened=reopened,
        assignee=assignee_of(news, incident, people, assign) if assign else None,
        severity=severity_changed(news, incident) if severity else None,
    )
    return Turn(
        "\n".join(lines), tuple(kinds), intents, closed, reopened, tuple(lines), tuple(actors)
    )


@dataclass(frozen=True)
class ServiceNowNow:
    """The ServiceNow incident as it is when the write is made."""

    number: str
    state: str
    updated_on: str  # ServiceNow's UTC "YYYY-MM-DD HH:MM:SS"
    mod_count: int
    assigned_to: str = ""  # the user's sys_id


@dataclass(frozen=True)
class StateRules:
    acknowledge_state: str = ""
    resolve_state: str = ""
    close_code: str = ""
    close_notes: str = ""


def _sn_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_close_notes(template: str, close: Close, number: str) -> str:
    return template.format(
        closer=close.closer, resolution=close.resolution, url=close.url, number=number
    ).strip()


def state_fields(
    intents: Intents, now: ServiceNowNow, rules: StateRules, *, own_mod_count: int | None
) -> tuple[dict[str, str], str]:
    """The state change to write with the note, and why (for logs and --dry-run)."""

    # A person's change after the Flashduty event wins: fd-sync's own last write does not count.
    def person_changed(ms: int) -> bool:
        return changed_by_person(intents, now, own_mod_count=own_mod_count, at_ms=ms)

    close = intents.close
    if close is not None and rules.resolve_state:
        if is_closed_state(now.state):
            return {}, "already closed in ServiceNow"
        if not close.by_responder:
            return {}, f"closed by Flashduty itself ({close.origin}): state left alone"
        if person_changed(close.at_ms):
            return {}, "changed in ServiceNow after the close: state left alone"
        fields = {"state": rules.resolve_state, "close_code": rules.close_code}
        fields["close_notes"] = render_close_notes(rules.close_notes, close, now.number)
        return {k: v for k, v in fields.items() if v}, f"state {rules.resolve_state}"
    if intents.ack_at_ms is not None and rules.acknowledge_state and close is None:
        if now.state != NEW_STATE:
            return {}, "no longer New in ServiceNow: state left alone"
        if person_changed(intents.ack_at_ms):
            return {}, "changed in ServiceNow after the ack: state left alone"
        return {"state": rules.acknowledge_state}, f"state {rules.acknowledge_state}"
    return {}, ""


def changed_by_person(
    intents: Intents, now: ServiceNowNow, *, own_mod_count: int | None, at_ms: int = 0
) -> bool:
    """Whether a person changed the incident after fd-sync read the Flashduty event: then
    their change wins, whatever the field. Versions are compared, not clocks."""
    if now.mod_count == own_mod_count:
        return False  # the present version is fd-sync's own write
    if intents.seen_mod_count is not None:
        return now.mod_count > intents.seen_mod_count  # changed since the event was read
    return bool(at_ms) and now.updated_on > _sn_time(at_ms)  # queued before versions were kept


def describe_write(
    number: str,
    kinds: Sequence[str],
    actors: Sequence[str],
    fields: Mapping[str, str],
    intents: Intents | None = None,
) -> str:
    """``INC0010001 write-back: work note (ack by Ann Lee); state 2``, as --dry-run prints it."""
    parts = []
    if kinds:
        what = [
            f"{kind} by {by}" if by else kind
            for kind, by in zip(kinds, [*actors, *[""] * len(kinds)], strict=False)
        ]
        parts.append(f"work note ({', '.join(what)})")
    if "state" in fields:
        parts.append(f"state {fields['state']}")
    if intents is not None and intents.assignee is not None:
        parts.append(f"assigned_to {intents.assignee.name} (by email)")
    if intents is not None and intents.severity is not None:
        parts.append(f"urgency and impact of {intents.severity}")
    return f"{number} write-back: " + ("; ".join(parts) or "nothing")
