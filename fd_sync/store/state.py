"""The ledger's key-value state: every key named once, here, beside its meaning.

The scan's bookmark keys follow singer's rule: the watermark advances only in
the transaction that queues the page's events (see :mod:`fd_sync.sync.cycle`).
"""

from __future__ import annotations

import json
from typing import Any

from fd_sync.store.db import Database

WATERMARK = "watermark"  # newest sys_updated_on handled
SCAN_FROM = "scan_from"  # set by --since: the next scan starts exactly here
BASELINE_UNTIL = "baseline_until"  # rows last changed up to here predate the install
DELETIONS_CHECKED = "deletions_checked_at"  # ServiceNow time up to which deletions were read
MISSING_INCIDENTS = "missing_incidents"  # JSON: open alerts whose incident ServiceNow hides
SERVICENOW_CLOCK = "servicenow_clock"  # ServiceNow's Date at its last answer (status compares)
SCAN_READ_TO_END = "scan_read_to_end"  # ServiceNow time of the last scan read to an empty page
CHOICE_LABELS = "choice_labels"  # JSON: the instance's sys_choice labels and when they were read
DAEMON = "daemon"  # JSON: the daemon's pid, interval and status line, for `fd-sync status`
FLASHDUTY_READ = "flashduty_read_at"  # when the write-back last read Flashduty's incidents (ISO)
# JSON: updates held while Flashduty could not be read: since (the last read), until, why
WRITEBACK_HOLD = "writeback_hold"
COMMANDS_WATERMARK = "commands_watermark"  # newest sys_created_on of a command note read
COMMANDS_SEEN_AT = "commands_seen_at"  # when the journal last returned a command note
TICKETS_SINCE = "tickets_since"  # Unix seconds: incidents starting earlier open no ticket
TICKETS_SEARCHED = "tickets_searched"  # Unix seconds: /incident/list was read up to here
UNMATCHED_PEOPLE = "unmatched_people"  # JSON: email -> why no single user matches it
OWN_INTEGRATIONS = "own_integration_ids"  # JSON: integration ids fd-sync's alerts arrived by
API_BUDGETS = (
    "api_budgets"  # JSON: both APIs' budgets, the interval, the read cadence (sync.pacing)
)
# High availability (PostgreSQL): who leads, who stands by, and the last takeover.
LEADER = "leader"  # JSON: host, pid, since; stopped_at once it stepped down cleanly
STANDBY_PREFIX = "standby:"  # + "host:pid" -> JSON: host, pid, since, seen_at (its check-in)
LAST_FAILOVER = "last_failover"  # JSON: at, from (the leader that died), to, leader_since
STANDBY_CHECK_IN_SECONDS = 10.0  # a standby's check-in period; status lists those seen lately


class State:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str) -> str | None:
        row = self.db.one("SELECT value FROM state WHERE key = ?", [key], "read the ledger state")
        return row[0] if row else None

    def set(self, key: str, value: str | None) -> None:
        """Set or (with None) forget a key; inside a transaction when it goes with other writes."""
        if value is None:
            self.db.execute("DELETE FROM state WHERE key = ?", [key], "write the ledger state")
        else:
            self.db.execute(
                "INSERT INTO state (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
                "write the ledger state",
            )

    def with_prefix(self, prefix: str) -> dict[str, Any]:
        """Every JSON value whose key starts with ``prefix``, by the rest of the key."""
        rows = self.db.rows(
            "SELECT key, value FROM state WHERE key >= ? AND key < ?",
            [prefix, prefix + "\uffff"],
            "read the ledger state",
        )
        return {key[len(prefix) :]: json.loads(value) for key, value in rows if value}

    def get_json(self, key: str, default: Any = None) -> Any:
        text = self.get(key)
        return json.loads(text) if text else default

    def set_json(self, key: str, value: Any) -> None:
        """Store ``value`` as JSON; an empty value forgets the key."""
        self.set(key, json.dumps(value) if value else None)
