"""What ``fd-sync dispatch`` prints: the plan, what Flashduty answered, the one-line error.

The dispatch itself (plan, record, deliver) is :mod:`fd_sync.sync.dispatch`.
"""

from __future__ import annotations

import json
from typing import Any

from fd_sync.errors import EX_OK, EX_PROTOCOL, FdSyncError
from fd_sync.store.queue import QueueStatus
from fd_sync.sync.dispatch import Dispatch, Sent


def describe_plan(dispatch: Dispatch, push_format: str) -> list[str]:
    match, incident = dispatch.match, dispatch.incident
    why = ", ".join(match.reasons)
    lines = [f"{incident.number}: route {match.route.name!r} ({why})"]
    if match.route.skip:
        lines.append(f"  route {match.route.name!r} skips it; dispatched as the default route")
    extras = dispatch.extras
    members = ", ".join(m.email or m.name for m in extras.notify_members) or "none"
    lines.append(
        f"  severity {extras.severity}, channels {','.join(extras.personal_channels) or 'none'}, "
        f"rule_id {extras.rule_id or 'none'}, members {members}"
    )
    if push_format == "standard" and (
        extras.rule_id or extras.personal_channels or extras.notify_members
    ):
        lines.append(
            f"  note: {dispatch.route.destination} takes standard alert events, which have no "
            "rule_id, channels or members; those need a ServiceNow-format push URL"
        )
    return lines


def describe_sent(sent: Sent) -> list[str]:
    """One line per event: where it went and Flashduty's request id, or why it did not."""
    number = sent.dispatch.incident.number
    lines = []
    for event in sent.events:
        head = f"{number} {event.kind.value} at {event.destination}"
        if event.status == QueueStatus.DELIVERED:
            lines.append(
                f"{head}: delivered (HTTP {event.http_status}, request_id {event.request_id})"
            )
        elif event.status == QueueStatus.DEAD:
            lines.append(f"{head}: refused by Flashduty: {event.error_message}")
        elif event.error_message:
            lines.append(f"{head}: not delivered ({event.error_message}); queued for the next run")
        else:
            lines.append(f"{head}: queued behind an earlier event of {number} (see fd-sync status)")
    return lines


def failure(sent: Sent) -> FdSyncError | None:
    """The one-line error for the exit code, naming the fix; None when all was delivered."""
    code = sent.exit_code
    number = sent.dispatch.incident.number
    if code == EX_OK:
        return None
    if code == EX_PROTOCOL:
        return FdSyncError(
            f"Flashduty did not accept {number} (refused, or held behind a refused event); "
            "fix the cause shown above, see fd-sync status",
            exit_code=code,
        )
    return FdSyncError(
        f"Flashduty unavailable: {number} is queued and the next fd-sync run delivers it "
        "(Flashduty asks to wait more than 10 s before sending again by hand)",
        exit_code=code,
    )


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True)
