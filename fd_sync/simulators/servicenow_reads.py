"""The Table API's reads: fields, dot-walks, encoded queries, paging, display values.

A mixin of :class:`~fd_sync.simulators.servicenow.ServiceNowSim`, which holds the tables
and the switches these read (hidden rows, denied tables, duplicated rows).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterator
from typing import Any

from fd_sync.simulators import encoded_query
from fd_sync.simulators.http import Response
from fd_sync.simulators.servicenow_data import (
    CHOICES,
    INCIDENT_COLUMNS,
    REFERENCES,
    TABLE_COLUMNS,
    TABLE_REFERENCES,
)


class TableReads:
    """GET /api/now/table/<table>, as the platform answers it."""

    # Kept by ServiceNowSim; declared here for the type checker.
    tables: dict[str, dict[str, dict[str, str]]]
    custom_columns: set[str]
    hidden: set[str]
    acl_hidden: set[str]
    silent_tables: set[str]
    duplicate_rows: int
    invalid_returns_no_rows: bool
    _index: list[tuple[str, str]]
    _lock: threading.RLock
    _version: int
    _matches: dict[tuple[str, str], list[str]]
    _matches_version: int
    url: str  # SimServer's property

    def _known_field(self, table: str) -> Any:
        def known(name: str) -> bool:
            base, _, rest = name.partition(".")
            if table == "incident":
                if base not in INCIDENT_COLUMNS and base not in self.custom_columns:
                    return False
                return not rest or base in REFERENCES
            if table in TABLE_COLUMNS:
                return base in TABLE_COLUMNS[table]
            rows = self.tables[table]
            sample = next(iter(rows.values()), {"sys_id": ""})
            return base in sample or base in ("sys_id", "sys_updated_on", "sys_created_on")

        return known

    def _get(self, table: str) -> Any:
        def get(row: dict[str, str], name: str) -> str | None:
            base, _, rest = name.partition(".")
            if not rest:
                return row.get(base)
            target_table = TABLE_REFERENCES.get(table, {}).get(base)
            target = self.tables.get(target_table or "", {}).get(row.get(base, ""))
            return (target or {}).get(rest, "")

        return get

    def _table_get(self, table: str, params: dict[str, str]) -> Response:
        query_text = params.get("sysparm_query", "")
        counted = params.get("sysparm_no_count") != "true"
        total = 0
        with self._lock:
            query = encoded_query.parse(query_text, self._known_field(table))
            if query.dropped and self.invalid_returns_no_rows:
                rows: list[dict[str, str]] = []
                more = False
            else:
                limit = int(params.get("sysparm_limit") or 10000)
                offset = int(params.get("sysparm_offset") or 0)
                if offset or counted:
                    # Offset paging and X-Total-Count need the whole match: computed once
                    # per query and data version, so paging through N rows stays O(N).
                    matches = self._matching(table, query_text, query)
                    total = len(matches)
                    data = self.tables[table]
                    rows = [data[s] for s in matches[offset : offset + limit]]
                    more = total > offset + limit
                else:
                    rows, more = self._select(table, query, offset, limit)
            # sysparm_limit counted these; the ACL now removes them.
            rows = [r for r in rows if r["sys_id"] not in self.acl_hidden]
            if table in self.silent_tables:
                rows, more = [], False
            if rows and self.duplicate_rows > 0:
                self.duplicate_rows -= 1
                rows.insert(len(rows) // 2, rows[len(rows) // 2])
            render = self._renderer(table, params)
            result = [render(r) for r in rows]
        headers = {}
        if counted:
            # The platform counts every row the query matches, not the rows of this page.
            headers["X-Total-Count"] = str(total)
        if more:
            headers["Link"] = f'<{self.url}/api/now/table/{table}>;rel="next"'
        return Response.json({"result": result}, **headers)

    def _matching(self, table: str, query_text: str, query: encoded_query.Query) -> list[str]:
        """The sys_ids of every row the query matches, in its order (before ACLs); cached."""
        if self._matches_version != self._version or len(self._matches) > 8:
            self._matches, self._matches_version = {}, self._version
        key = (table, query_text)
        if key not in self._matches:
            rows, _ = self._select(table, query, 0, None)
            self._matches[key] = [r["sys_id"] for r in rows]
        return self._matches[key]

    def _select(
        self, table: str, query: encoded_query.Query, offset: int, limit: int | None
    ) -> tuple[list[dict[str, str]], bool]:
        """Matching rows in order, windowed by offset/limit; keyset scans use the index."""
        get = self._get(table)
        data = self.tables[table]
        keyset = [("sys_updated_on", False), ("sys_id", False)]
        candidates: Iterator[dict[str, str]]
        if table == "incident" and query.order[:2] in (keyset, keyset[:1]):
            low = query.lower_bound("sys_updated_on") or ""
            start = bisect.bisect_left(self._index, (low, ""))
            candidates = (data[sys_id] for _, sys_id in itertools.islice(self._index, start, None))
        elif table == "incident" and query.order[:1] == [("sys_updated_on", True)]:
            candidates = (data[sys_id] for _, sys_id in reversed(self._index))
        else:
            candidates = iter(sorted(data.values(), key=lambda r: r["sys_id"]))
            for name, descending in reversed(query.order):

                def by(row: dict[str, str], field: str = name) -> str:
                    return get(row, field) or ""

                candidates = iter(sorted(candidates, key=by, reverse=descending))
        out: list[dict[str, str]] = []
        skipped = 0
        for row in candidates:
            if row["sys_id"] in self.hidden or not query.matches(row, get):
                continue
            if skipped < offset:
                skipped += 1
                continue
            if len(out) == limit:
                return out, True
            out.append(row)
        return out, False

    def _renderer(self, table: str, params: dict[str, str]) -> Any:
        """A function rendering one row as this request asked (fields, display values)."""
        fields_param = params.get("sysparm_fields", "")
        known = self._known_field(table)
        wanted = [f for f in fields_param.split(",") if f] if fields_param else None
        names = [n for n in wanted if known(n)] if wanted is not None else None
        display = params.get("sysparm_display_value", "false")
        exclude_links = params.get("sysparm_exclude_reference_link") == "true"
        get = self._get(table)

        def render(row: dict[str, str]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            # Unknown fields are silently ignored, as the platform does.
            for name in names if names is not None else [n for n in row if known(n)]:
                value = get(row, name) or ""
                if display == "true":
                    out[name] = self._display(table, name, value)
                elif display == "all":
                    out[name] = {"display_value": self._display(table, name, value), "value": value}
                elif table == "incident" and name in REFERENCES and not exclude_links and value:
                    out[name] = {
                        "link": f"{self.url}/api/now/table/{REFERENCES[name]}/{value}",
                        "value": value,
                    }
                else:
                    out[name] = value
            return out

        return render

    def _display(self, table: str, name: str, value: str) -> str:
        if table == "incident" and name in CHOICES:
            for row in self.tables["sys_choice"].values():
                if (row["element"], row["value"], row["language"]) == (name, value, "en"):
                    return row["label"]
            return value
        if table == "incident" and name in REFERENCES:
            target = self.tables.get(REFERENCES[name], {}).get(value) or {}
            return target.get("name", "")
        return value
