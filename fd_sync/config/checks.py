"""Checks of the keys whose values are ServiceNow encoded queries (apart for length)."""

from __future__ import annotations

import re


def extra_query_problem(value: str) -> str | None:
    # fd-sync wraps this query into each OR-group of its own keyset query and
    # owns the ordering; ^NQ or ORDERBY here would silently change the scan.
    if "^NQ" in value:
        return "may not contain ^NQ (fd-sync ANDs the query into its own ^NQ groups)"
    if "ORDERBY" in value.upper():
        return "may not contain ORDERBY (fd-sync orders by sys_updated_on, sys_id)"
    if value.startswith("^") or value.endswith("^"):
        return "must not start or end with ^ (fd-sync adds the separators)"
    lifecycle = sorted(query_fields(value) & LIFECYCLE_FIELDS)
    if lifecycle:
        return (
            f"may not filter on {lifecycle[0]}: it changes when an incident closes, so the "
            "scan would drop incidents exactly when they close and their alerts would never "
            'resolve; leave such incidents unsent with a skip route or [routing] default = "skip"'
        )
    return None


# Fields whose value changes when an incident is resolved or closed.
LIFECYCLE_FIELDS = {
    "active",
    "state",
    "incident_state",
    "resolved_at",
    "resolved_by",
    "closed_at",
    "closed_by",
    "close_code",
    "close_notes",
}
_TERM_FIELD = re.compile(r"(?:OR)?([a-z_][a-z0-9_]*)")  # fields are lowercase, operators not


def query_fields(query: str) -> set[str]:
    """The fields an encoded query's terms name (dot-walks by their first field)."""
    found = set()
    for term in query.split("^"):
        match = _TERM_FIELD.match(term)
        if match and not term.startswith(("ORDERBY", "NQ")):
            found.add(match.group(1))
    return found
