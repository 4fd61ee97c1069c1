"""Incidents deleted in ServiceNow: resolve their open alerts, or say that we cannot.

The Table API never returns a deleted row, so a poller that reads only changes
would keep a deleted incident's alert open for ever. ServiceNow records each
deletion in ``sys_audit_delete`` (``tablename``, ``documentkey`` = the deleted
sys_id) when auditing of deletes is on, which it is for ``incident`` by
default. Every ``[sync] deletion_check_seconds`` of ServiceNow's time, the
cycle reads the deletions since the last check (keyset paging, with the same
look-back as the main scan) and resolves the open alerts of deleted incidents,
in the same transaction as the check's watermark.

When the integration user may not read ``sys_audit_delete``, fd-sync checks
instead that every incident with an open alert still exists. One that
ServiceNow no longer returns was deleted, or is hidden by an ACL: fd-sync
cannot tell which, so it does not resolve it, and ``fd-sync status`` lists it
as unknown with the fix (grant read on ``sys_audit_delete``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fd_sync import logs
from fd_sync.core.decide import Decision, deleted
from fd_sync.core.watermark import advance, format_sn_time, parse_sn_time, scan_start
from fd_sync.errors import AccessDenied, RemoteRejected
from fd_sync.servicenow.client import ServiceNowClient
from fd_sync.store.ledger import Ledger
from fd_sync.store.state import DELETIONS_CHECKED

AUDIT_TABLE = "sys_audit_delete"
AUDIT_FIELDS = ("sys_id", "documentkey", "sys_created_on")
BATCH = 100  # sys_ids per existence query


class DeletionCheck:
    """One check per interval; its ledger and client are the cycle's own."""

    def __init__(
        self,
        ledger: Ledger,
        servicenow: ServiceNowClient,
        *,
        table: str,
        interval_seconds: int,
        lookback_seconds: int,
        progress: Callable[[], None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.servicenow = servicenow
        self.table = table
        self.interval = interval_seconds
        self.lookback = lookback_seconds
        self.progress = progress
        self.log = logs.get("deletions")

    def due(self) -> bool:
        now = self.servicenow.last_server_now
        if not self.interval or now is None:
            return False
        checked = self.ledger.state.get(DELETIONS_CHECKED)
        if checked is None:
            self.ledger.begin_deletion_checks(format_sn_time(now))
            return False
        return now - parse_sn_time(checked) >= timedelta(seconds=self.interval)

    def run(self, *, run_id: str) -> dict[str, int]:
        """Resolve the alerts of deleted incidents; counts of queued events by kind."""
        counts: dict[str, int] = {}
        now = self.servicenow.last_server_now
        if now is not None and not self.ledger.incidents.open_count():
            # No alert open: no deletion can need a resolve. A check costs no request.
            self.ledger.finish_deletion_check(format_sn_time(now), missing=None)
            return counts
        try:
            counts = self._from_audit(run_id)
        except (AccessDenied, RemoteRejected) as exc:
            self._audit_unreadable(exc)
            self._find_missing()
        return counts

    def _from_audit(self, run_id: str) -> dict[str, int]:
        checked = self.ledger.state.get(DELETIONS_CHECKED) or ""
        low = scan_start(checked, self.lookback)
        totals: dict[str, int] = {}
        pages = self.servicenow.scan(
            low,
            table=AUDIT_TABLE,
            time_field="sys_created_on",
            fields=AUDIT_FIELDS,
            extra=f"tablename={self.table}",
            until_short=True,
        )
        for page in pages:
            when = {
                row["documentkey"]: row["sys_created_on"]
                for row in page.records
                if isinstance(row, dict) and isinstance(row.get("documentkey"), str)
            }
            decisions = self._decide(when)
            checked = advance(checked, page.cursor[0], page.server_now)
            recorded = self.ledger.record_deletions(decisions, checked=checked, run_id=run_id)
            for kind, n in recorded.items():
                totals[kind] = totals.get(kind, 0) + n
            for d in decisions:
                self.log.info("incident_deleted", number=d.incident.number, reason=d.why)
            self.progress()
        now = self.servicenow.last_server_now
        if now is not None:
            # The audit now speaks for every incident: none is listed as missing.
            checked = advance(checked, format_sn_time(now), now)
            self.ledger.finish_deletion_check(checked, missing=None)
        return totals

    def _decide(self, deleted_on: dict[str, str]) -> list[Decision]:
        entries = self.ledger.entries(deleted_on)
        open_ones = [k for k, e in entries.items() if e.alert_at is not None]
        snapshots = self.ledger.incidents.snapshots(open_ones)
        decisions = []
        for sys_id in open_ones:
            if sys_id in snapshots:
                decision = deleted(snapshots[sys_id], entries[sys_id], deleted_on[sys_id])
                if decision is not None:
                    decisions.append(decision)
        return decisions

    def _audit_unreadable(self, exc: Exception) -> None:
        # Once per check, so once per deletion_check_seconds: no process-wide flag needed.
        self.log.warning(
            "deletions_unreadable",
            error=str(exc),
            fix=f"grant the integration user read access to {AUDIT_TABLE}; until then "
            "deleted incidents are listed by fd-sync status, not resolved",
        )

    def _find_missing(self) -> None:
        """Which incidents with open alerts ServiceNow no longer returns."""
        open_alerts = self.ledger.incidents.open_alerts()
        ids = sorted(open_alerts)
        missing: list[dict[str, str]] = []
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            rows, _ = self.servicenow.table_get(
                {
                    "sysparm_query": "sys_idIN" + ",".join(batch),
                    "sysparm_fields": "sys_id",
                    "sysparm_limit": str(len(batch)),
                }
            )
            present = {r.get("sys_id") for r in rows if isinstance(r, dict)}
            missing.extend(
                {"sys_id": s, "number": open_alerts[s]} for s in batch if s not in present
            )
            self.progress()
        now = self.servicenow.last_server_now
        self.ledger.finish_deletion_check(
            format_sn_time(now) if now is not None else "", missing=missing
        )
        if missing:
            self.log.warning(
                "open_alerts_without_incident",
                count=len(missing),
                numbers=[m["number"] for m in missing[:20]],
            )
