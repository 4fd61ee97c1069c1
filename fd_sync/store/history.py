"""One incident's story as the ledger keeps it, for ``fd-sync explain``: read-only.

Every event queued for Flashduty and every write owed to ServiceNow stays in its queue,
with its times, HTTP status, request id and error, for ``[sync] history_days`` after it
finished (dead ones until an operator acts); the link says which Flashduty incident the
alert opened and how far its timeline was read. :func:`timeline` puts them in one order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fd_sync.store.commands import Command
from fd_sync.store.links import Link
from fd_sync.store.outbox import OutboxEvent
from fd_sync.store.queue import QueueStatus
from fd_sync.store.tickets import FlashdutyWrite, TicketCreate
from fd_sync.store.writeback import Write

if TYPE_CHECKING:
    from fd_sync.store.ledger import Ledger

HISTORY_LIMIT = 1000  # items per queue an explanation reads, newest kept


@dataclass(frozen=True)
class Moment:
    """One thing that happened to an incident, at ``at`` (ISO, UTC)."""

    at: str
    side: str  # "flashduty": fd-sync -> Flashduty; "servicenow": -> ServiceNow; "ledger"
    what: str  # one line
    item: str = ""  # the queue item it belongs to (12, w12), for outbox retry/drop
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IncidentHistory:
    sys_id: str
    number: str
    state: str | None  # as the ledger last acted on it (None: never recorded)
    alert_open: bool
    destination: str | None
    held: bool  # closed in Flashduty, open in ServiceNow
    pinned: bool
    events: list[OutboxEvent]
    writes: list[Write]
    link: Link | None
    hold: dict[str, str] | None  # updates held while Flashduty cannot be read
    commands: list[Command] = field(default_factory=list)  # /flashduty work notes
    # A ticket (born in Flashduty): its create, and the writes owed to its Flashduty incident.
    ticket_creates: list[TicketCreate] = field(default_factory=list)
    flashduty_writes: list[FlashdutyWrite] = field(default_factory=list)

    @property
    def is_ticket(self) -> bool:
        return bool(self.ticket_creates) or bool(self.link and self.link.is_ticket)

    @property
    def dead_create(self) -> OutboxEvent | None:
        """The create of the open alert, refused: the alert never reached Flashduty."""
        creates = [e for e in self.events if e.kind.value == "create"]
        last = creates[-1] if creates else None
        return last if last is not None and last.status is QueueStatus.DEAD else None


def read_history(ledger: Ledger, number: str) -> IncidentHistory | None:
    """What the ledger knows of the incident with this number (None: nothing)."""
    row = ledger.db.one(
        "SELECT sys_id, number, state, alert_open, destination, pinned FROM incidents "
        "WHERE number = ? ORDER BY changed_at DESC LIMIT 1",
        [number],
    )
    sys_id = row[0] if row else None
    if sys_id is None:
        found = ledger.db.one("SELECT sys_id FROM outbox WHERE number = ? LIMIT 1", [number])
        if found is None and ledger.tickets.present:
            found = ledger.db.one("SELECT sys_id FROM tickets WHERE number = ? LIMIT 1", [number])
        if found is None:
            return None
        sys_id = found[0]
    events = ledger.outbox.items(sys_id=sys_id, limit=HISTORY_LIMIT)
    writes = ledger.writeback.items(sys_id=sys_id, limit=HISTORY_LIMIT)
    held = ledger.incidents.held()
    return IncidentHistory(
        sys_id=sys_id,
        number=number,
        state=row[2] if row else None,
        alert_open=bool(row[3]) if row else False,
        destination=row[4] if row else None,
        held=sys_id in held,
        pinned=bool(row[5]) if row else False,
        events=list(reversed(events)),
        writes=list(reversed(writes)),
        link=ledger.links.get([sys_id]).get(sys_id) if ledger.db.has_writeback_tables else None,
        hold=ledger.writeback_hold(),
        commands=list(reversed(ledger.commands.items(sys_id=sys_id, limit=HISTORY_LIMIT))),
        ticket_creates=list(reversed(ledger.ticket_creates.items(sys_id=sys_id))),
        flashduty_writes=list(reversed(ledger.flashduty_writes.items(sys_id=sys_id))),
    )


def timeline(history: IncidentHistory) -> list[Moment]:
    """Everything, oldest first."""
    moments: list[Moment] = []
    for e in history.events:
        moments += _event_moments(e)
    for w in history.writes:
        moments += _write_moments(w)
    for c in history.commands:
        first = c.text.strip().splitlines()[0] if c.text.strip() else c.text
        moments.append(Moment(c.created_at, "ledger", f"command from {c.author}: {first}", c.label))
        if c.answer:
            said = c.answer.splitlines()[0].removeprefix("[Flashduty] ")
            moments.append(Moment(c.finished_at or c.created_at, "servicenow", f"answered: {said}"))
    for t in history.ticket_creates:
        moments.append(_ticket_moment(t))
    for f in history.flashduty_writes:
        moments.append(_openapi_moment(f))
    link = history.link
    if link is not None and link.is_ticket:
        progress = f", {link.progress}" if link.progress else ""
        moments.append(
            Moment(
                link.sent_at,
                "ledger",
                f"born in Flashduty: the ticket of incident {link.incident_id}{progress}",
                details={"incident_id": link.incident_id, "progress": link.progress},
            )
        )
    elif link is not None:
        key = f" (alert_key {link.alert_key})" if link.alert_key else ""
        moments.append(Moment(link.sent_at, "flashduty", f"alert opened in Flashduty{key}"))
        if link.incident_id:
            progress = f", {link.progress}" if link.progress else ""
            moments.append(
                Moment(
                    link.sent_at,
                    "flashduty",
                    f"Flashduty incident {link.incident_id}{progress}",
                    details={"incident_id": link.incident_id, "progress": link.progress},
                )
            )
    return sorted(moments, key=lambda m: m.at)


def _ticket_moment(t: TicketCreate) -> Moment:
    title = t.fields.get("short_description", "")
    text = {
        QueueStatus.DELIVERED: f"ticket opened for Flashduty incident {t.incident_id}: {title}",
        QueueStatus.DEAD: f"ticket refused by ServiceNow (HTTP {t.http_status}: "
        f"{t.error_message}); fd-sync outbox retry {t.label} once fixed",
    }.get(t.status, f"ticket {t.status.value}, tried {t.attempts} time(s)")
    return Moment(t.finished_at or t.created_at, "servicenow", text, t.label)


def _openapi_moment(f: FlashdutyWrite) -> Moment:
    said = (
        f.write.text
        or f.body.get("resolution")
        or f.body.get("incident_severity")
        or (f"to {f.body.get('name')} <{f.body.get('email')}>" if f.kind == "assign" else "")
    )
    what = f"{f.kind} ({str(said)[:80]})" if said else f.kind
    text = {
        QueueStatus.DELIVERED: f"{what} sent to the Flashduty incident",
        QueueStatus.DEAD: f"{what} refused by Flashduty ({f.error_message}); "
        f"fd-sync outbox retry {f.label} once fixed",
    }.get(f.status, f"{what} {f.status.value}, tried {f.attempts} time(s)")
    return Moment(f.finished_at or f.created_at, "flashduty", text, f.label)


def _event_moments(e: OutboxEvent) -> list[Moment]:
    label = f"{e.kind.value} for Flashduty ({e.destination})"
    out = [Moment(e.created_at, "flashduty", f"queued {label}", e.label)]
    request = f", request {e.request_id}" if e.request_id else ""
    error = f" {e.error_code}" if e.error_code else ""
    message = f": {e.error_message}" if e.error_message else ""
    details = {"http_status": e.http_status, "request_id": e.request_id, "attempts": e.attempts}
    if e.status is QueueStatus.DELIVERED:
        text = f"{label} delivered (HTTP {e.http_status}{request})"
    elif e.status is QueueStatus.DEAD:
        text = (
            f"{label} refused for good (HTTP {e.http_status}{error}{message}{request}); "
            f"later events of the incident wait: fd-sync outbox retry {e.label} once fixed"
        )
    elif e.status is QueueStatus.CANCELLED:
        text = f"{label} cancelled before it was sent (no longer true)"
    elif e.status is QueueStatus.DROPPED:
        text = f"{label} dropped by an operator"
    else:
        tried = f", tried {e.attempts} time(s){message}" if e.attempts else ""
        text = f"{label} pending{tried}"
    out.append(Moment(e.finished_at or e.created_at, "flashduty", text, e.label, details))
    return out


def _write_moments(w: Write) -> list[Moment]:
    lines = [line for line in w.note.splitlines() if line and not line.startswith("[fd-sync w")]
    read = "; ".join(line.removeprefix("[Flashduty] ") for line in lines) or ", ".join(w.kinds)
    out = [Moment(w.created_at, "flashduty", f"read from Flashduty: {read}", w.label)]
    details = {"http_status": w.http_status, "attempts": w.attempts, "kinds": list(w.kinds)}
    what = "work note" if w.note else "state change"
    if w.status is QueueStatus.DELIVERED:
        text = (
            f"{what} written to ServiceNow" if w.http_status else f"{what}: nothing left to write"
        )
    elif w.status is QueueStatus.DEAD:
        text = (
            f"{what} refused by ServiceNow (HTTP {w.http_status}: "
            f"{w.error_message or 'no message'}); fd-sync outbox retry {w.label} once fixed"
        )
    elif w.status is QueueStatus.DROPPED:
        text = f"{what} dropped by an operator"
    else:
        tried = f", tried {w.attempts} time(s)" if w.attempts else ""
        text = f"{what} pending{tried}"
    out.append(Moment(w.finished_at or w.created_at, "servicenow", text, w.label, details))
    return out
