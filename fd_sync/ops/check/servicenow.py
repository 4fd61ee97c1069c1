"""ServiceNow: credentials, read access, a one-row query, and the clocks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fd_sync import wiring
from fd_sync.errors import EX_NOPERM, EX_PROTOCOL, AccessDenied, FdSyncError, RemoteRejected
from fd_sync.ops.check.steps import NO_ANSWER_HINT, Step, fail, ok
from fd_sync.servicenow.choices import CHOICE_TABLE, read_choice_labels
from fd_sync.servicenow.client import ServiceNowClient

if TYPE_CHECKING:
    from fd_sync.ops.check import Checker

SKEW_WARNING_SECONDS = 60


def check(c: Checker) -> None:
    sn = c.config.servicenow
    client = wiring.servicenow_client(c.config, max_attempts=1)
    who = f"user {sn.username}" if sn.auth == "basic" else f"OAuth client {sn.client_id}"
    try:
        rows, server_now = client.table_get({"sysparm_fields": "sys_id", "sysparm_limit": "1"})
    except AccessDenied as exc:
        c.add(
            fail(
                "servicenow",
                "auth",
                str(exc),
                "fd-sync never retries a refused login, so checking again is safe",
                EX_NOPERM,
            )
        )
        return
    except RemoteRejected as exc:
        c.add(fail("servicenow", "read", str(exc), "check [servicenow] table", EX_PROTOCOL))
        return
    except FdSyncError as exc:
        hint = (
            NO_ANSWER_HINT
            if "connection" in str(exc) or "TLS" in str(exc)
            else (
                "the instance answered, but not with the Table API's JSON: it may be down, "
                "hibernating (developer instances), or a proxy or SSO page stands in between"
            )
        )
        c.add(fail("servicenow", "http", str(exc), hint, exc.exit_code))
        return
    c.add(ok("servicenow", "auth", f"{who} accepted"))
    c.add(ok("servicenow", "read", f"table {sn.table}: {len(rows)} row(s) readable"))
    try:
        newest, server_now = client.newest()
    except FdSyncError as exc:
        c.add(fail("servicenow", "query", str(exc), "check [servicenow] query", exc.exit_code))
        return
    query = " matching [servicenow] query" if sn.query else ""
    c.add(ok("servicenow", "query", f"newest change{query}: {newest or 'none yet'}"))
    clocks(c, server_now, newest)
    choice_labels(c, client)


def choice_labels(c: Checker, client: ServiceNowClient) -> None:
    """The labels state, impact and urgency are sent with (one sys_choice request)."""
    try:
        labels = read_choice_labels(client)
    except (AccessDenied, RemoteRejected) as exc:
        c.add(
            Step(
                "servicenow",
                "choices",
                "warn",
                f"{CHOICE_TABLE} not readable ({exc}): a base instance's labels are sent",
                f"grant the integration user read access to {CHOICE_TABLE}, so that "
                "Flashduty receives the labels this instance shows",
            )
        )
        return
    except FdSyncError as exc:
        c.add(fail("servicenow", "choices", str(exc), "try again", exc.exit_code))
        return
    shown = ", ".join(labels.label("urgency", v) for v in ("1", "2", "3"))
    c.add(ok("servicenow", "choices", f"labels read from {CHOICE_TABLE} (urgency: {shown})"))


def clocks(c: Checker, server_now: datetime, newest: str | None) -> None:
    skew = (datetime.now(UTC) - server_now).total_seconds()
    if abs(skew) > SKEW_WARNING_SECONDS:
        c.add(
            Step(
                "servicenow",
                "clock",
                "warn",
                f"this host's clock is {skew:+.0f} s off ServiceNow's",
                "fd-sync takes its time from ServiceNow, so syncing is unaffected; "
                "fix NTP so that log timestamps agree",
            )
        )
    else:
        c.add(ok("servicenow", "clock", f"within {abs(skew):.0f} s of ServiceNow's"))
    if newest and newest > server_now.strftime("%Y-%m-%d %H:%M:%S"):
        c.add(
            Step(
                "servicenow",
                "data",
                "warn",
                f"a row is dated in the future ({newest})",
                "fd-sync caps its watermark at ServiceNow's clock, so it is not "
                "blinded; the row itself has bad data",
            )
        )
