"""ServiceNow encoded queries (``sysparm_query``), as the simulator evaluates them.

Grammar, per ServiceNow's documentation: conditions ``field<op>value`` joined
by ``^`` (AND); ``^OR`` makes a condition an alternative of the one before;
``^NQ`` separates whole AND-groups that are ORed; ``ORDERBYfield`` and
``ORDERBYDESCfield`` anywhere set the ordering. Like the real thing, a term
with an unknown field or operator is silently dropped (so the query matches
more than meant), unless ``invalid_returns_no_rows`` is set, as the instance
property ``glide.invalid_query.returns_no_rows`` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

Getter = Callable[[dict[str, str], str], str | None]

_OPERATORS = (
    "ISNOTEMPTY",
    "ISEMPTY",
    "STARTSWITH",
    "ENDSWITH",
    "NOT LIKE",
    "LIKE",
    "NOT IN",
    "IN",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)
_CONDITION = re.compile(
    r"^(?P<field>[a-z0-9_.]+?)(?P<op>"
    + "|".join(re.escape(o) for o in _OPERATORS)
    + r")(?P<value>.*)$",
    re.S,
)


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str

    def matches(self, row: dict[str, str], get: Getter) -> bool:
        actual = get(row, self.field)
        actual = "" if actual is None else actual
        op, value = self.op, self.value
        if op == "ISEMPTY":
            return actual == ""
        if op == "ISNOTEMPTY":
            return actual != ""
        # String comparisons ignore case, as on ServiceNow's (case-insensitive) databases.
        if op == "=":
            return actual.casefold() == value.casefold()
        if op == "!=":
            return actual.casefold() != value.casefold()
        if op == "IN":
            return actual.casefold() in {v.casefold() for v in value.split(",")}
        if op == "NOT IN":
            return actual.casefold() not in {v.casefold() for v in value.split(",")}
        if op == "STARTSWITH":
            return actual.startswith(value)
        if op == "ENDSWITH":
            return actual.endswith(value)
        if op == "LIKE":
            return value.lower() in actual.lower()
        if op == "NOT LIKE":
            return value.lower() not in actual.lower()
        order = _compare(actual, value)
        return {">": order > 0, ">=": order >= 0, "<": order < 0}.get(op, order <= 0)


def _compare(a: str, b: str) -> int:
    """-1, 0 or 1. Numbers compare as numbers; dates in ServiceNow's format sort as text."""
    if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
        x, y = int(a), int(b)
        return (x > y) - (x < y)
    return (a > b) - (a < b)


@dataclass
class Query:
    groups: list[list[list[Condition]]] = field(default_factory=list)  # OR of AND of OR-lists
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    dropped: list[str] = field(default_factory=list)  # terms ignored as invalid

    def matches(self, row: dict[str, str], get: Getter) -> bool:
        if not self.groups:
            return True
        return any(
            all(any(c.matches(row, get) for c in alternatives) for alternatives in group)
            for group in self.groups
        )

    def lower_bound(self, column: str) -> str | None:
        """The smallest value of ``column`` any group admits, if every group bounds it."""
        bounds = []
        for group in self.groups:
            best = None
            for alternatives in group:
                if (
                    len(alternatives) == 1
                    and alternatives[0].field == column
                    and alternatives[0].op in (">", ">=", "=")
                ):
                    value = alternatives[0].value
                    best = value if best is None else max(best, value)
            if best is None:
                return None
            bounds.append(best)
        return min(bounds) if bounds else None


def parse(text: str, known_field: Callable[[str], bool]) -> Query:
    query = Query()
    if not text:
        return query
    for group_text in text.split("^NQ"):
        group: list[list[Condition]] = []
        for raw_term in group_text.split("^"):
            term = raw_term.strip()
            if not term or term == "EQ":
                continue
            if term.startswith("ORDERBYDESC"):
                query.order.append((term[len("ORDERBYDESC") :], True))
                continue
            if term.startswith("ORDERBY"):
                query.order.append((term[len("ORDERBY") :], False))
                continue
            is_alternative = term.startswith("OR") and bool(group)
            condition = _condition(term[2:] if is_alternative else term, known_field)
            if condition is None:
                query.dropped.append(term)
                continue
            if is_alternative:
                group[-1].append(condition)
            else:
                group.append([condition])
        if group:
            query.groups.append(group)
    return query


def _condition(term: str, known_field: Callable[[str], bool]) -> Condition | None:
    match = _CONDITION.match(term)
    if not match or not known_field(match["field"]):
        return None
    return Condition(match["field"], match["op"], match["value"])
