"""``fd-sync explain``'s story: what happened to an incident, oldest first, and where it
stands now, from the ledger alone (no network); ``--online`` adds the live Flashduty
incident. The forward-looking part (route, next body, escalation) is :mod:`.explain`'s.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fd_sync.core.feed import FlashdutyIncident
from fd_sync.core.incident import STATE_NAMES
from fd_sync.store.history import IncidentHistory, Moment
from fd_sync.store.queue import QueueStatus


def history_lines(history: IncidentHistory, moments: list[Moment]) -> list[str]:
    lines = ["", "history (from the ledger, oldest first)"]
    if not moments:
        lines.append("  nothing sent or written yet")
    for m in moments:
        arrow = {"flashduty": "-> Flashduty  ", "servicenow": "-> ServiceNow "}.get(m.side, "")
        lines.append(f"  {m.at}  {arrow}{m.what}")
    return lines


def now_lines(history: IncidentHistory) -> list[str]:
    """Where the incident stands, and what an operator can do about it."""
    lines = ["", "now"]
    dead = history.dead_create
    if dead is not None:
        code = f" {dead.error_code}" if dead.error_code else ""
        lines.append(
            f"  the alert never reached Flashduty: its create (event {dead.label}) was refused "
            f"(HTTP {dead.http_status}{code}: {dead.error_message or 'no message'}); the "
            "incident's later events wait behind it. Fix what Flashduty names, then "
            f"fd-sync outbox retry {dead.label} (or drop it to give the alert up)"
        )
    elif history.is_ticket:
        link = history.link
        where = f"incident {link.incident_id}" if link and link.incident_id else "an incident"
        lines.append(
            f"  a ticket born in Flashduty ({where}): no alert of fd-sync's; Flashduty's acks, "
            "comments and resolves reach it through the write-back, and its resolve, reopen, "
            "comments and urgency reach Flashduty through the OpenAPI"
        )
    elif history.held:
        lines.append(
            "  closed in Flashduty by a responder, open in ServiceNow: not paged again until "
            "ServiceNow closes and reopens it, or fd-sync dispatch"
        )
    elif history.alert_open:
        pinned = " (pinned by fd-sync dispatch)" if history.pinned else ""
        lines.append(f"  alert open in Flashduty at {history.destination or 'default'}{pinned}")
    else:
        lines.append("  no alert open in Flashduty")
    if history.state is not None:
        name = STATE_NAMES.get(history.state, history.state)
        lines.append(f"  ServiceNow state as last acted on: {name}")
    pending = [e for e in history.events if e.status is QueueStatus.PENDING]
    if pending:
        lines.append(f"  {len(pending)} event(s) waiting to be sent: {_labels(pending)}")
    waiting = [w for w in history.writes if w.status is QueueStatus.PENDING]
    if waiting:
        lines.append(f"  {len(waiting)} write-back(s) waiting for ServiceNow: {_labels(waiting)}")
    owed = [f for f in history.flashduty_writes if f.status is QueueStatus.PENDING]
    if owed:
        lines.append(f"  {len(owed)} write(s) waiting for Flashduty: {_labels(owed)}")
    refused = [w for w in history.writes if w.status is QueueStatus.DEAD]
    if refused:
        lines.append(
            f"  {len(refused)} write-back(s) refused by ServiceNow, kept: {_labels(refused)}"
        )
    if history.hold and (pending or waiting):
        lines.append(
            f"  updates may wait: Flashduty cannot be read since {history.hold.get('since')} "
            f"(until {history.hold.get('until')} at the latest)"
        )
    link = history.link
    if link is not None and link.incident_id:
        lines.append(f"  Flashduty incident {link.incident_id}")
    return lines


def live_lines(incident: FlashdutyIncident | None, why: str = "") -> list[str]:
    lines = ["", "Flashduty now (--online)"]
    if incident is None:
        return [*lines, f"  not shown: {why or 'no Flashduty incident is linked yet'}"]
    lines.append(f"  {incident.incident_id}: {incident.progress}")
    if incident.closed:
        by = incident.closer.name or incident.closer.email if incident.closer else "Flashduty"
        resolution = f": {incident.resolution}" if incident.resolution else ""
        lines.append(f"  closed by {by}{resolution}")
    if incident.url:
        lines.append(f"  {incident.url}")
    return lines


def as_json(history: IncidentHistory, moments: list[Moment]) -> dict[str, Any]:
    dead = history.dead_create
    return {
        "number": history.number,
        "sys_id": history.sys_id,
        "state": history.state,
        "alert_open": history.alert_open and dead is None,
        "alert_never_reached_flashduty": dead is not None,
        "destination": history.destination,
        "held": history.held,
        "pinned": history.pinned,
        "flashduty_incident_id": history.link.incident_id if history.link else None,
        "hold": history.hold,
        "timeline": [asdict(m) for m in moments],
    }


def _labels(items: list[Any]) -> str:
    shown = ", ".join(item.label for item in items[:10])
    return shown + (" ..." if len(items) > 10 else "")
