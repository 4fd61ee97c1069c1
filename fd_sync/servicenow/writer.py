"""Writing to ServiceNow incidents through the Table API: the write-back's only way in.

One ``PATCH /api/now/table/incident/{sys_id}`` per incident and cycle (REFERENCE
section 7): ``work_notes`` (internal, never the customer-visible ``comments``) and, when
configured, the state change. Before a state change the incidents' present state is read
in one batched GET, because a person may have moved them since the last poll.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fd_sync.core.writeback import MARKER_PREFIX, ServiceNowNow, marker_ids
from fd_sync.errors import AccessDenied, FatalAPIError, RemoteRejected
from fd_sync.servicenow.client import ServiceNowClient

IDS_PER_REQUEST = 100
VERSION_FIELDS = "sys_id,number,state,sys_updated_on,sys_mod_count,assigned_to"


class WriteRefused(RemoteRejected):
    """ServiceNow refused this write for good (a data policy, an ACL, a missing record)."""

    def __init__(
        self, number: str, status: int | None, detail: str, *, doing: str = "the write-back to"
    ) -> None:
        self.number, self.status, self.detail = number, status, detail
        super().__init__(
            f"ServiceNow refused {doing} {number} (HTTP {status}: {detail}); "
            "fix the field, role or data policy it names, then fd-sync outbox retry"
        )


class IncidentWriter:
    def __init__(self, client: ServiceNowClient) -> None:
        self.client = client
        self.requests_made = 0

    def current(self, sys_ids: Iterable[str]) -> dict[str, ServiceNowNow]:
        """The present version and state of these incidents (one GET per 100)."""
        ids = list(dict.fromkeys(sys_ids))
        out: dict[str, ServiceNowNow] = {}
        for first in range(0, len(ids), IDS_PER_REQUEST):
            chunk = ids[first : first + IDS_PER_REQUEST]
            self.requests_made += 1
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": "sys_idIN" + ",".join(chunk),
                    "sysparm_fields": VERSION_FIELDS,
                    "sysparm_limit": str(len(chunk)),
                }
            )
            for row in rows:
                if isinstance(row, dict) and row.get("sys_id"):
                    out[str(row["sys_id"])] = _now(row)
        return out

    def write(self, sys_id: str, number: str, body: dict[str, str]) -> dict[str, Any]:
        """PATCH the incident; the record after the write, or WriteRefused naming it.
        A body with a work note is not sent twice by the client (see ``table_patch``)."""
        self.requests_made += 1
        try:
            return self.client.table_patch(sys_id, body, repeatable="work_notes" not in body)
        except FatalAPIError as exc:
            raise WriteRefused(number, exc.status, _said(exc)) from None

    def notes_landed(self, sys_id: str) -> set[int] | None:
        """The write-back ids whose marker is in the incident's work notes: what an earlier
        attempt whose answer never came did write. None when the journal cannot be read
        (a 403; ServiceNow's empty answer to a hidden journal looks like "nothing")."""
        self.requests_made += 1
        try:
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": f"element_id={sys_id}^element=work_notes"
                    f"^valueLIKE{MARKER_PREFIX}^ORDERBYDESCsys_created_on",
                    "sysparm_fields": "value",
                    "sysparm_limit": "100",
                },
                table="sys_journal_field",
            )
        except (AccessDenied, RemoteRejected):
            return None
        found: set[int] = set()
        for row in rows:
            if isinstance(row, dict):
                found |= marker_ids(str(row.get("value") or ""))
        return found

    # --- tickets from Flashduty -------------------------------------------------------------

    def create(self, name: str, fields: dict[str, str]) -> dict[str, Any]:
        """POST a new incident; the record created, or WriteRefused naming ``name`` (the
        Flashduty incident it is for). Never sent twice by the client."""
        self.requests_made += 1
        try:
            return self.client.table_post(fields)
        except FatalAPIError as exc:
            raise WriteRefused(name, exc.status, _said(exc), doing="the ticket for") from None

    def find_tickets(self, incident_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Tickets already created for these Flashduty incidents, by ``correlation_id``:
        what a create whose answer never came may have made."""
        ids = list(dict.fromkeys(incident_ids))
        out: dict[str, dict[str, Any]] = {}
        for first in range(0, len(ids), IDS_PER_REQUEST):
            chunk = ids[first : first + IDS_PER_REQUEST]
            self.requests_made += 1
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": "correlation_idIN"
                    + ",".join(chunk)
                    + "^ORDERBYsys_created_on",
                    "sysparm_fields": ",".join((*self.client.fields, "correlation_id")),
                    "sysparm_limit": str(10 * len(chunk)),
                }
            )
            for row in rows:
                if isinstance(row, dict) and row.get("correlation_id") in chunk:
                    out.setdefault(str(row["correlation_id"]), row)  # the first one created
        return out

    # --- what `fd-sync check` asks, changing nothing ----------------------------------------

    def can_write(self) -> str:
        """An empty PATCH of the newest incident: ServiceNow checks the write ACL but, with
        nothing to change, moves no version. Returns the incident's number."""
        rows, _ = self.client.table_get(
            {
                "sysparm_query": "ORDERBYDESCsys_updated_on",
                "sysparm_fields": VERSION_FIELDS,
                "sysparm_limit": "1",
            }
        )
        if not rows or not isinstance(rows[0], dict):
            return ""
        row = rows[0]
        try:
            self.client.table_patch(str(row["sys_id"]), {})
        except FatalAPIError as exc:
            raise AccessDenied(
                f"ServiceNow {self.client.base} does not let {self.client.config.username!r} "
                f"write incidents (HTTP {exc.status}: {exc.detail or exc.reason}); the write-back "
                "needs the itil role (or a write ACL on incident)"
            ) from None
        return str(row.get("number") or row["sys_id"])

    def close_requirements(self, states: Iterable[str]) -> list[str] | None:
        """Fields a data policy makes mandatory on incidents (None: not readable)."""
        try:
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": "table=incident^mandatory=true",
                    "sysparm_fields": "field,conditions",
                    "sysparm_limit": "200",
                },
                table="sys_data_policy_rule",
            )
        except (AccessDenied, RemoteRejected):
            return None
        wanted = set(states)
        fields = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            conditions = str(row.get("conditions") or "")
            # Only rules whose condition names one of these states, or has none.
            if not conditions or any(s in conditions for s in wanted) or "state" not in conditions:
                fields.append(str(row.get("field") or ""))
        return sorted({f for f in fields if f})


def _said(exc: FatalAPIError) -> str:
    """ServiceNow's own words for a refusal; that it gave none, rather than the status twice."""
    if exc.detail:
        return exc.detail
    if exc.reason and exc.reason != f"HTTP {exc.status}":
        return exc.reason
    return "ServiceNow gave no message"


def _now(row: dict[str, Any]) -> ServiceNowNow:
    return ServiceNowNow(
        number=str(row.get("number") or ""),
        state=str(row.get("state") or ""),
        updated_on=str(row.get("sys_updated_on") or ""),
        mod_count=int(str(row.get("sys_mod_count") or "0") or 0),
        assigned_to=str(row.get("assigned_to") or ""),
    )
