"""What an event carries besides the incident: people to notify, the latest comment.

Routes name people by email or user name and may ask for "everyone in the
assignment group" (fd-servicenow's select-all); Flashduty wants them as
``{sys_id, name, email}``. Every look-up is batched and cached for the life of
the :class:`Lookups` (one cycle, or one command), never one request per
incident: one ``sys_user`` request for the names a page needs that are not
known yet, one ``sys_user_grmember`` request for the groups of a page (each
group at most once per cycle, dot-walking ``user.name`` and ``user.email``),
and one ``sys_journal_field`` request per page for the latest additional
comments. The integration user needs read access to those tables only when
the configuration uses them.

The rendered :class:`~fd_sync.core.payloads.Extras` are stored with each queued
event, so what was decided at queue time is what Flashduty receives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fd_sync import logs
from fd_sync.core.payloads import Member
from fd_sync.errors import UsageRefused
from fd_sync.servicenow.client import ServiceNowClient

JOURNAL_PAGE = 1000  # comments per request; one request per page unless a page has more


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return value.strip() if isinstance(value, str) else ""


def query_value(value: str, what: str) -> str:
    """A value safe inside an encoded query: '^' and ',' would change its meaning."""
    if not value or set(value) & set("^,"):
        raise UsageRefused(f"{what} {value!r} cannot be looked up (it contains '^' or ',')")
    return value


class Lookups:
    """Batched, cached ServiceNow look-ups through the read-only Table API client."""

    def __init__(self, client: ServiceNowClient) -> None:
        self.client = client
        self.log = logs.get("enrich")
        self._users: dict[str, Member | None] = {}  # email or user_name, casefolded
        self._groups: dict[str, tuple[Member, ...]] = {}  # group sys_id -> active members

    def users(self, keys: Iterable[str]) -> dict[str, Member]:
        """Users by email or user_name; names ServiceNow does not know are left out (logged)."""
        keys = list(dict.fromkeys(keys))
        wanted = [k for k in keys if k.casefold() not in self._users]
        if wanted:
            emails = [query_value(k, "user") for k in wanted if "@" in k]
            names = [query_value(k, "user") for k in wanted if "@" not in k]
            terms = [f"emailIN{','.join(emails)}"] if emails else []
            terms += [f"user_nameIN{','.join(names)}"] if names else []
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": "^OR".join(terms),
                    "sysparm_fields": "sys_id,name,email,user_name",
                    "sysparm_limit": str(4 * len(wanted) + 10),
                },
                table="sys_user",
            )
            for row in rows:
                if not isinstance(row, dict) or not _text(row, "sys_id"):
                    continue
                member = Member(_text(row, "sys_id"), _text(row, "name"), _text(row, "email"))
                for key in (_text(row, "email"), _text(row, "user_name")):
                    if key:
                        self._users[key.casefold()] = member
            for key in wanted:
                if self._users.setdefault(key.casefold(), None) is None:
                    self.log.warning("notify_member_unknown", member=key, table="sys_user")
        return {k: m for k in keys if (m := self._users.get(k.casefold())) is not None}

    def group_members(self, group_ids: Iterable[str]) -> dict[str, tuple[Member, ...]]:
        """The active members of each group, by name; each group fetched once."""
        ids = [g for g in dict.fromkeys(group_ids) if g]
        wanted = [query_value(g, "group") for g in ids if g not in self._groups]
        if wanted:
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": f"groupIN{','.join(wanted)}^user.active=true^ORDERBYuser.name",
                    "sysparm_fields": "group,user,user.name,user.email",
                    "sysparm_limit": "10000",
                },
                table="sys_user_grmember",
            )
            found: dict[str, dict[str, Member]] = {g: {} for g in wanted}
            for row in rows:
                if isinstance(row, dict) and _text(row, "group") in found and _text(row, "user"):
                    member = Member(
                        _text(row, "user"), _text(row, "user.name"), _text(row, "user.email")
                    )
                    found[_text(row, "group")].setdefault(member.sys_id, member)
            self._groups.update({g: tuple(m.values()) for g, m in found.items()})
        return {g: self._groups[g] for g in ids}

    def latest_comments(self, sys_ids: Sequence[str]) -> dict[str, str]:
        """The newest additional comment (``comments`` journal) of each incident that has one."""
        ids = list(dict.fromkeys(sys_ids))
        if not ids:
            return {}
        params = {
            "sysparm_query": f"name={self.client.config.table}^element=comments"
            f"^element_idIN{','.join(ids)}^ORDERBYDESCsys_created_on",
            "sysparm_fields": "element_id,value,sys_created_on",
            "sysparm_limit": str(JOURNAL_PAGE),
        }
        latest: dict[str, str] = {}
        offset = 0
        while True:
            rows, _ = self.client.table_get(
                {**params, "sysparm_offset": str(offset)}, table="sys_journal_field"
            )
            for row in rows:
                if isinstance(row, dict) and _text(row, "element_id"):
                    latest.setdefault(_text(row, "element_id"), str(row.get("value") or ""))
            if len(rows) < JOURNAL_PAGE:
                return latest
            offset += JOURNAL_PAGE

    def group_by_name(self, name: str) -> tuple[str, str] | None:
        """(sys_id, name) of the assignment group with this name, if there is one."""
        rows, _ = self.client.table_get(
            {
                "sysparm_query": f"name={query_value(name, 'group')}",
                "sysparm_fields": "sys_id,name",
                "sysparm_limit": "1",
            },
            table="sys_user_group",
        )
        row = rows[0] if rows and isinstance(rows[0], dict) else None
        return (_text(row, "sys_id"), _text(row, "name")) if row else None

    def author(self, user_name: str) -> tuple[str, tuple[str, ...]]:
        """Who wrote a note (``sys_created_by`` is a user_name): their name and groups."""
        rows, _ = self.client.table_get(
            {
                "sysparm_query": f"user_name={query_value(user_name, 'user')}",
                "sysparm_fields": "sys_id,name",
                "sysparm_limit": "1",
            },
            table="sys_user",
        )
        row = rows[0] if rows and isinstance(rows[0], dict) else None
        if row is None:
            return user_name, ()
        members, _ = self.client.table_get(
            {
                "sysparm_query": f"user={query_value(_text(row, 'sys_id'), 'user')}",
                "sysparm_fields": "group.name",
                "sysparm_limit": "1000",
            },
            table="sys_user_grmember",
        )
        groups = tuple(_text(m, "group.name") for m in members if isinstance(m, dict))
        return _text(row, "name") or user_name, groups

    def numbers(self, sys_ids: Sequence[str]) -> dict[str, str]:
        """sys_id -> number of these incidents (one request)."""
        if not sys_ids:
            return {}
        rows, _ = self.client.table_get(
            {
                "sysparm_query": "sys_idIN" + ",".join(query_value(s, "sys_id") for s in sys_ids),
                "sysparm_fields": "sys_id,number",
                "sysparm_limit": str(len(sys_ids)),
            }
        )
        return {_text(r, "sys_id"): _text(r, "number") for r in rows if isinstance(r, dict)}

    def incident_by_number(self, number: str) -> Any | None:
        """The raw row of one incident, read with the fields a cycle reads."""
        rows, _ = self.client.table_get(
            {
                "sysparm_query": f"number={query_value(number, 'incident number')}",
                "sysparm_fields": ",".join(self.client.fields),
                "sysparm_limit": "1",
            }
        )
        return rows[0] if rows else None
