"""With [writeback] on: the app key reads incidents, the ServiceNow user may write them
(tested with an empty PATCH, which changes nothing), and what a resolve would need."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fd_sync import wiring
from fd_sync.errors import EX_CONFIG, EX_NOPERM, AccessDenied, FdSyncError
from fd_sync.ops.check.steps import Step, fail, ok
from fd_sync.servicenow.choices import read_choice_labels

if TYPE_CHECKING:
    from fd_sync.ops.check import Checker
    from fd_sync.servicenow.writer import IncidentWriter

# What fd-sync fills in when it resolves; a data policy asking for more refuses the close.
FILLED_ON_CLOSE = {"state", "close_code", "close_notes"}


def check(c: Checker) -> None:
    wb = c.config.writeback
    reads_incidents(c)
    writer = wiring.incident_writer(c.config, max_attempts=1)
    try:
        number = writer.can_write()
    except AccessDenied as exc:
        c.add(fail("writeback", "write", str(exc), "grant the itil role", EX_NOPERM))
        return
    except FdSyncError as exc:
        c.add(fail("writeback", "write", str(exc), "check [servicenow]", exc.exit_code))
        return
    what = (
        f"an empty PATCH of {number} was accepted (nothing changed)"
        if number
        else ("no incident to try an empty PATCH on yet")
    )
    c.add(ok("writeback", "write", f"may write incidents: {what}"))
    states_known(c, writer)
    if not wb.resolve_state:
        return
    needed = writer.close_requirements((wb.resolve_state,))
    if needed is None:
        c.add(
            Step(
                "writeback",
                "close",
                "warn",
                "cannot read sys_data_policy_rule, so which fields a resolve needs is "
                "unknown; a resolve ServiceNow refuses is kept, named, and retried with "
                "fd-sync outbox retry",
            )
        )
        return
    missing = sorted(set(needed) - FILLED_ON_CLOSE)
    if missing:
        c.add(
            Step(
                "writeback",
                "close",
                "warn",
                f"a data policy makes {', '.join(missing)} mandatory on incidents; fd-sync "
                f"fills only close_code and close_notes, so resolving in state "
                f"{wb.resolve_state} will be refused",
                "relax the data policy for the integration user, or leave resolve_state empty",
            )
        )
        return
    c.add(ok("writeback", "close", f"a resolve to state {wb.resolve_state} needs nothing more"))


def reads_incidents(c: Checker) -> None:
    """One /incident/list request over the last day: the key may read incidents."""
    try:
        reader = wiring.incident_reader(c.config, purpose="check")
        now = int(time.time())
        reader.openapi.call(
            "/incident/list", {"start_time": now - 86400, "end_time": now, "p": 1, "limit": 1}
        )
    except AccessDenied as exc:
        c.add(
            fail(
                "writeback",
                "read",
                str(exc),
                "the app key's member needs read access to incidents (On-call)",
                EX_NOPERM,
            )
        )
        return
    except FdSyncError as exc:
        c.add(fail("writeback", "read", str(exc), "check [flashduty] api_domain", exc.exit_code))
        return
    c.add(ok("writeback", "read", "app_key may read Flashduty incidents"))


def states_known(c: Checker, writer: IncidentWriter) -> None:
    """acknowledge_state and resolve_state are states this instance has (its sys_choice
    rows): a custom code passes the file's checks but may mean nothing here."""
    wanted = {
        key: value
        for key, value in (
            ("acknowledge_state", c.config.writeback.acknowledge_state),
            ("resolve_state", c.config.writeback.resolve_state),
        )
        if value
    }
    if not wanted:
        return
    try:
        labels = read_choice_labels(writer.client)
    except FdSyncError:
        c.add(
            Step(
                "writeback",
                "states",
                "warn",
                "cannot read sys_choice, so whether the instance has these states is unknown",
            )
        )
        return
    states = labels.labels.get("state", {})
    unknown = [f"{key} {value!r}" for key, value in wanted.items() if value not in states]
    if unknown:
        known = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
        c.add(
            fail(
                "writeback",
                "states",
                f"[writeback] {' and '.join(unknown)}: not a state of this instance's incidents "
                f"(it has: {known})",
                "set a state the instance has",
                EX_CONFIG,
            )
        )
        return
    shown = ", ".join(f"{key} {value} ({states[value]})" for key, value in wanted.items())
    c.add(ok("writeback", "states", shown))
