"""What a simulated ServiceNow instance is made of: its columns, choice lists, seed data,
sys_ids and the instance clock."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

SN_FORMAT = "%Y-%m-%d %H:%M:%S"

INCIDENT_COLUMNS = (
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "impact",
    "urgency",
    "priority",
    "assignment_group",
    "assigned_to",
    "category",
    "cmdb_ci",
    "company",
    "caller_id",
    "comments",
    "work_notes",
    "sys_updated_on",
    "sys_created_on",
    "sys_mod_count",
    "active",
    "opened_at",
    "resolved_at",
    "closed_at",
    "close_code",
    "close_notes",
    "sys_updated_by",
    "correlation_id",
    "correlation_display",
)
JOURNAL_FIELDS = ("comments", "work_notes")  # written as sys_journal_field rows, read back empty
FIELD_LABELS = {"close_code": "Resolution code", "close_notes": "Resolution notes"}
# Columns of tables that may be empty, so that queries on them are not "invalid".
TABLE_COLUMNS = {
    "sys_data_policy_rule": ("sys_id", "table", "field", "mandatory", "conditions"),
    "sys_audit_delete": ("sys_id", "tablename", "documentkey", "sys_created_on", "sys_updated_on"),
    "sys_choice": (
        "sys_id",
        "name",
        "element",
        "value",
        "label",
        "language",
        "inactive",
        "sequence",
    ),
}
REFERENCES = {
    "assignment_group": "sys_user_group",
    "assigned_to": "sys_user",
    "caller_id": "sys_user",
    "cmdb_ci": "cmdb_ci",
    "company": "core_company",
}
# Reference columns of the other tables, for dot-walked fields and conditions.
TABLE_REFERENCES = {
    "incident": REFERENCES,
    "sys_user_grmember": {"user": "sys_user", "group": "sys_user_group"},
}
CHOICES = {
    "state": {
        "1": "New",
        "2": "In Progress",
        "3": "On Hold",
        "6": "Resolved",
        "7": "Closed",
        "8": "Canceled",
    },
    "impact": {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
    "urgency": {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
    "priority": {
        "1": "1 - Critical",
        "2": "2 - High",
        "3": "3 - Moderate",
        "4": "4 - Low",
        "5": "5 - Planning",
    },
}


SEED_GROUPS = ("Service Desk", "Network", "Database", "Messaging", "Identity", "Storage")
SEED_USERS = ("Ann Lee", "Bob Diaz", "Chen Wu", "Dana Ivanova", "Eli Moreau")
SEED_TITLES = (
    "Email delivery delayed for office {n}",
    "VPN gateway dropping sessions (site {n})",
    "Payroll batch job {n} failed",
    "Printer offline on floor {n}",
    "Disk usage above 90% on db-{n}",
    "Login page returns 502 for tenant {n}",
)
SEED_DESCRIPTION = (
    "Reported by monitoring rule {n}. Users cannot complete the affected workflow; "
    "the on-call engineer has been notified and is investigating the root cause."
)


class SimClock:
    """The instance's clock: real time, or frozen/moved by the test (``ticking=False``)."""

    def __init__(self, start: datetime | None = None, *, ticking: bool = True) -> None:
        self._start = start or datetime.now(UTC).replace(microsecond=0)
        self._t0 = time.monotonic()
        self._offset = timedelta()
        self.ticking = ticking
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            elapsed = (
                timedelta(seconds=time.monotonic() - self._t0) if self.ticking else timedelta()
            )
            return self._start + elapsed + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def text(self, delta_seconds: float = 0) -> str:
        return (self.now() + timedelta(seconds=delta_seconds)).strftime(SN_FORMAT)

    def timestamp(self) -> float:
        """This clock as Unix time: one clock for a whole simulated run (fd-sync's pacing and
        ledger, the Flashduty simulator) that tests and benchmarks move on."""
        return self.now().timestamp()

    def sleep(self, seconds: float) -> None:
        """A wait that moves the clock on instead of waiting (never back)."""
        self.advance(max(0.0, seconds))


def new_sys_id() -> str:
    return secrets.token_hex(16)


def stable_sys_id(seed: str) -> str:
    """A deterministic 32-hex sys_id, for reproducible fixtures and benchmarks."""
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()
