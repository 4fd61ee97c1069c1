"""Keyset scans of a ServiceNow table, page by page.

Paging is keyset on ``(sys_updated_on, sys_id)``: each page asks for rows after
the last row of the previous one, so rows changing during the scan are neither
skipped nor repeated the way offset paging skips and repeats them. A short
page is not the end (ServiceNow applies the limit before ACLs); an empty one
is. Rows that break the keyset order mean the instance ignored part of the
query (invalid terms are silently dropped), and the scan stops rather than
guess.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fd_sync.errors import RemoteRejected

if TYPE_CHECKING:
    from fd_sync.servicenow.client import ServiceNowClient

Cursor = tuple[str, str]  # (sys_updated_on, sys_id)


def keyset_query(
    low: str, cursor: Cursor | None, extra: str = "", time_field: str = "sys_updated_on"
) -> str:
    """The encoded query for the page after ``cursor`` in a scan starting at ``low``.

    Timestamps are UTC literals: ServiceNow compares them as UTC whatever the
    integration user's time zone (``gs.dateGenerate`` would not).
    """
    prefix = f"{extra}^" if extra else ""
    t = time_field
    order = f"^ORDERBY{t}^ORDERBYsys_id"
    if cursor is None:
        return f"{prefix}{t}>={low}{order}"
    ts, sys_id = cursor
    return f"{prefix}{t}>={low}^{t}>{ts}^NQ{prefix}{t}>={low}^{t}={ts}^sys_id>{sys_id}{order}"


def newest_query(extra: str = "") -> str:
    return f"{extra}^ORDERBYDESCsys_updated_on" if extra else "ORDERBYDESCsys_updated_on"


@dataclass(frozen=True)
class Page:
    records: list[Any]  # raw rows, in keyset order, duplicates removed
    server_now: datetime  # ServiceNow's clock when it answered
    cursor: Cursor  # keyset position after this page
    raw_count: int  # rows as returned, before de-duplication


def row_key(row: Any, time_field: str = "sys_updated_on") -> Cursor | None:
    if not isinstance(row, dict):
        return None
    ts, sys_id = row.get(time_field), row.get("sys_id")
    if isinstance(ts, str) and isinstance(sys_id, str) and len(ts) == 19 and sys_id:
        return (ts, sys_id)
    return None


def newest(client: ServiceNowClient) -> tuple[str | None, datetime]:
    """The newest ``sys_updated_on`` in the table (None if empty) and ServiceNow's clock."""
    rows, server_now = client.table_get(
        {
            "sysparm_query": newest_query(client.config.query),
            "sysparm_fields": "sys_updated_on,sys_id",
            "sysparm_limit": "1",
        }
    )
    key = row_key(rows[0]) if rows else None
    return (key[0] if key else None), server_now


def pages(
    client: ServiceNowClient,
    low: str,
    *,
    page_size: int | None = None,
    table: str | None = None,
    time_field: str = "sys_updated_on",
    fields: Sequence[str] | None = None,
    extra: str | None = None,
    until_short: bool = False,
) -> Iterator[Page]:
    """Pages of rows changed at or after ``low``, in keyset order, until an empty page
    (or, with ``until_short``, a page shorter than the limit).

    By default the incident table by ``sys_updated_on`` with ``[servicenow] query``;
    the deletion check scans ``sys_audit_delete`` by ``sys_created_on`` the same way.

    ``until_short`` saves an idle cycle its second request (the empty page that closes a
    scan whose look-back re-read rows). ServiceNow applies the limit before ACLs, so a
    page an ACL thinned can be short with rows after it: those are read by the next
    cycle, which starts at the last row read (the watermark never passes a row unread).
    A backfill (``--since``) reads on to the empty page instead.
    """
    cursor: Cursor = (low, "")  # no sys_id is empty, so "after" means ">= low"
    first = True
    extra = client.config.query if extra is None else extra
    limit = page_size or client.config.page_size
    while True:
        rows, server_now = client.table_get(
            {
                "sysparm_query": keyset_query(low, None if first else cursor, extra, time_field),
                "sysparm_fields": ",".join(fields or client.fields),
                "sysparm_limit": str(limit),
            },
            table=table,
        )
        if not rows:
            return
        kept, new_cursor = in_keyset_order(client.base, rows, cursor, time_field)
        if new_cursor == cursor:
            raise RemoteRejected(
                f"ServiceNow {client.base} answered rows outside the requested range "
                "(did the instance drop part of the query? check [servicenow] query and "
                "that the table has sys_updated_on)"
            )
        cursor, first = new_cursor, False
        yield Page(kept, server_now, cursor, len(rows))
        if until_short and len(rows) < limit:
            return


def in_keyset_order(
    base: str, rows: list[Any], cursor: Cursor, time_field: str = "sys_updated_on"
) -> tuple[list[Any], Cursor]:
    kept: list[Any] = []
    last = cursor
    for row in rows:
        # row_key inlined for the common case: this loop sees every row of a backfill.
        ts = row.get(time_field) if type(row) is dict else None
        sys_id = row.get("sys_id") if ts is not None else None
        if type(ts) is str and type(sys_id) is str and len(ts) == 19 and sys_id:
            key: Cursor | None = (ts, sys_id)
        else:
            key = row_key(row, time_field)
        if key is None:
            kept.append(row)  # malformed: the parser quarantines it with a reason
            continue
        if key <= last:
            if key == last or key <= cursor:
                continue  # a duplicated row (ServiceNow does send them) or a re-read
            raise RemoteRejected(
                f"ServiceNow {base} returned rows out of order "
                f"({key[0]} after {last[0]}): the instance ignored ORDERBY; "
                "fd-sync stops rather than risk skipping rows"
            )
        last = key
        kept.append(row)
    return kept, last
