"""With [commands] on: the integration user can read work notes (the journal), and the
groups of ``allowed_groups`` exist. ServiceNow answers a journal the user may not read
with 200 and no rows, so an empty answer proves nothing, and the check says so."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fd_sync import wiring
from fd_sync.errors import EX_CONFIG, EX_NOPERM, AccessDenied, FdSyncError
from fd_sync.ops.check.steps import Step, fail, ok
from fd_sync.servicenow.lookups import Lookups

if TYPE_CHECKING:
    from fd_sync.ops.check import Checker

JOURNAL_HINT = "grant the integration user read access to sys_journal_field (work notes)"


def check(c: Checker) -> None:
    client = wiring.servicenow_client(c.config, max_attempts=1)
    if not c.config.flashduty.app_key:
        c.add(
            Step(
                "commands",
                "app_key",
                "warn",
                "[commands] enabled without [flashduty] app_key: pages work, but rules and "
                "the escalation path in answers need the OpenAPI",
            )
        )
    try:
        rows, _ = client.table_get(
            {
                "sysparm_query": "name=incident^element=work_notes",
                "sysparm_fields": "sys_id",
                "sysparm_limit": "1",
            },
            table="sys_journal_field",
        )
    except AccessDenied as exc:
        c.add(fail("commands", "journal", str(exc), JOURNAL_HINT, EX_NOPERM))
        return
    except FdSyncError as exc:
        c.add(fail("commands", "journal", str(exc), "check [servicenow]", exc.exit_code))
        return
    if rows:
        c.add(ok("commands", "journal", "may read work notes (sys_journal_field)"))
    else:
        c.add(
            Step(
                "commands",
                "journal",
                "warn",
                "sys_journal_field returned no work note: either no incident has one yet, or "
                "the user may not read them (ServiceNow answers that with no rows, not 403); "
                "cannot prove commands will be seen",
                f"write a work note on any incident and check again; else {JOURNAL_HINT}",
            )
        )
    lookups = Lookups(client)
    for name in c.config.commands.allowed_groups:
        try:
            found = lookups.group_by_name(name)
        except FdSyncError as exc:
            c.add(fail("commands", "groups", str(exc), "check [servicenow]", exc.exit_code))
            return
        if found is None:
            c.add(
                fail(
                    "commands",
                    "groups",
                    f"[commands] allowed_groups: no ServiceNow group named {name!r}",
                    "name groups as ServiceNow spells them (sys_user_group.name)",
                    EX_CONFIG,
                )
            )
            return
    if c.config.commands.allowed_groups:
        listed = ", ".join(c.config.commands.allowed_groups)
        c.add(ok("commands", "groups", f"only members of {listed} may command"))
