"""With [tickets] on: the app key may list each watched channel's incidents, the ServiceNow
user may create incidents, and every field template renders, all without creating
anything. What cannot be proved without a create (the create ACL is not readable to most
users) is said, with what would prove it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fd_sync import wiring
from fd_sync.core.tickets import FlashdutySource, render_fields
from fd_sync.errors import EX_CONFIG, EX_NOPERM, AccessDenied, FdSyncError, NotFound
from fd_sync.flashduty.tickets import FlashdutyTickets
from fd_sync.ops.check.steps import Step, fail, ok
from fd_sync.servicenow.writer import IncidentWriter
from fd_sync.store.state import TICKETS_SEARCHED
from fd_sync.sync.tickets.find import rules_of

if TYPE_CHECKING:
    from fd_sync.ops.check import Checker

SAMPLE = FlashdutySource(
    incident_id="0123456789abcdef01234567",
    num="0E83EE",
    title="CPU usage high - web-server-01",
    description="CPU above 95% for 10 minutes",
    severity="Critical",
    progress="Triggered",
    channel_id=0,
    channel_name="Sample channel",
    start_time=0,
    url="https://console.flashcat.cloud/incident/0123456789abcdef01234567",
    labels={"check": "cpu_usage_high", "resource": "web-server-01"},
)


def check(c: Checker) -> None:
    config = c.config.tickets
    now = int(time.time())
    openapi = wiring.openapi_client(c.config, purpose="[tickets]")
    flashduty = FlashdutyTickets(openapi)
    try:
        visible = {int(ch.get("channel_id") or 0) for ch in openapi.channels()}
    except FdSyncError as exc:
        c.add(fail("tickets", "channels", str(exc), "check [flashduty]", exc.exit_code))
        return
    for channel in config.channel_ids:
        if channel not in visible:
            c.add(
                fail(
                    "tickets",
                    "channel",
                    f"[tickets] channel_ids: channel {channel} is not among the channels the "
                    "app key sees",
                    "list a channel id from Flashduty (Channels), or give the key's member "
                    "access to it",
                    EX_CONFIG,
                )
            )
            continue
        try:
            count = flashduty.can_list(channel, start=now - 7 * 86400, end=now)
        except NotFound as exc:
            c.add(
                fail(
                    "tickets",
                    "channel",
                    f"channel {channel}: {exc}",
                    "list channels the app key can see ([tickets] channel_ids)",
                    EX_CONFIG,
                )
            )
            continue
        except AccessDenied as exc:
            c.add(fail("tickets", "channel", str(exc), "check the app key", EX_NOPERM))
            return
        except FdSyncError as exc:
            c.add(fail("tickets", "channel", str(exc), "check [flashduty]", exc.exit_code))
            return
        c.add(
            ok(
                "tickets",
                "channel",
                f"channel {channel}: the key lists its incidents ({count} in the last 7 days)",
            )
        )
    rules = rules_of(config)
    for name, value in render_fields(SAMPLE, rules).items():
        if name.startswith("correlation_"):
            continue
        c.add(ok("tickets", "template", f"{name} = {value[:80]!r} (for a sample incident)"))
    _servicenow(c)
    _first_run(c)


def _servicenow(c: Checker) -> None:
    writer = IncidentWriter(wiring.servicenow_client(c.config, max_attempts=1))
    mandatory = writer.close_requirements(["1"])
    if mandatory is None:
        c.add(
            Step(
                "tickets",
                "create",
                "warn",
                "cannot read sys_data_policy_rule: whether a data policy makes fields "
                "mandatory on new incidents is unknown",
                "a refused create is kept, with ServiceNow's message (outbox list --dead)",
            )
        )
    else:
        given = {name for name, _ in c.config.tickets.fields}
        missing = sorted(set(mandatory) - given - {"urgency", "impact"})
        if missing:
            c.add(
                Step(
                    "tickets",
                    "create",
                    "warn",
                    f"a data policy may make {', '.join(missing)} mandatory on incidents",
                    "add them to [tickets.fields]",
                )
            )
    c.add(
        Step(
            "tickets",
            "create",
            "warn",
            "that the user may create incidents cannot be proved without creating one; "
            "it needs the itil role (create and write incident, correlation_id writable)",
            "the first ticket proves it; a refusal is kept with ServiceNow's message",
        )
    )


def _first_run(c: Checker) -> None:
    from fd_sync.store.ledger import Ledger

    with Ledger.for_reading(c.config.sync.database) as ledger:
        searched = ledger.state.get(TICKETS_SEARCHED)
    if searched is None:
        c.add(
            ok(
                "tickets",
                "first run",
                "the first cycle with [tickets] on takes only incidents that start after it; "
                "fd-sync tickets backfill --since DATE opens tickets for older ones",
            )
        )
