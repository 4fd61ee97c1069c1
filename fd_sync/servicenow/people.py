"""People on both sides, matched by email: the only identity the two systems share.

- :meth:`People.users_by_email`: Flashduty's people (``/person/infos`` emails) to active
  ``sys_user`` records, case-insensitively, one request per 100 emails; an email with no
  active user, or with two, is not matched, and the reason says which;
- :meth:`People.emails_of`: ``sys_user`` sys_ids to their emails (for a desk's
  reassignment, whose member in Flashduty is then found by email).

Answers are cached for ``ttl_seconds``: people change rarely, and a cycle must not ask
ServiceNow the same question for every incident.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from fd_sync.core.fields import Match
from fd_sync.servicenow.client import ServiceNowClient
from fd_sync.servicenow.lookups import query_value

BATCH = 100
TTL_SECONDS = 3600.0


class People:
    def __init__(
        self,
        client: ServiceNowClient,
        *,
        ttl_seconds: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.clock = clock
        self._by_email: dict[str, tuple[float, Match]] = {}
        self._emails: dict[str, tuple[float, str]] = {}
        self.requests_made = 0

    def users_by_email(self, emails: Iterable[str]) -> dict[str, Match]:
        """Each email (casefolded) to its match, compared case-insensitively."""
        now = self.clock()
        given = [e for e in dict.fromkeys(emails) if e]
        wanted = [
            e
            for e in given
            if e.casefold() not in self._by_email
            or self._by_email[e.casefold()][0] < now - self.ttl
        ]
        for first in range(0, len(wanted), BATCH):
            chunk = wanted[first : first + BATCH]
            values = {query_value(e.casefold(), "user") for e in chunk}
            self.requests_made += 1
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": f"active=true^emailIN{','.join(sorted(values))}",
                    "sysparm_fields": "sys_id,name,email",
                    "sysparm_limit": str(4 * len(chunk) + 10),
                },
                table="sys_user",
            )
            found: dict[str, list[dict[str, str]]] = {}
            for row in rows:
                if isinstance(row, dict) and row.get("sys_id") and row.get("email"):
                    found.setdefault(str(row["email"]).casefold(), []).append(row)
            for email in chunk:
                users = found.get(email.casefold(), [])
                if len(users) == 1:
                    match = Match(str(users[0]["sys_id"]))
                elif users:
                    match = Match(problem=f"{len(users)} active ServiceNow users have this email")
                else:
                    match = Match(problem="no active ServiceNow user has this email")
                self._by_email[email.casefold()] = (now, match)
        return {e.casefold(): self._by_email[e.casefold()][1] for e in given}

    def emails_of(self, sys_ids: Iterable[str]) -> dict[str, str]:
        """The email of each of these users ("" when it has none)."""
        now = self.clock()
        given = [s for s in dict.fromkeys(sys_ids) if s]
        wanted = [s for s in given if s not in self._emails or self._emails[s][0] < now - self.ttl]
        for first in range(0, len(wanted), BATCH):
            chunk = wanted[first : first + BATCH]
            self.requests_made += 1
            rows, _ = self.client.table_get(
                {
                    "sysparm_query": "sys_idIN" + ",".join(chunk),
                    "sysparm_fields": "sys_id,email",
                    "sysparm_limit": str(len(chunk)),
                },
                table="sys_user",
            )
            for row in rows:
                if isinstance(row, dict) and row.get("sys_id"):
                    self._emails[str(row["sys_id"])] = (now, str(row.get("email") or ""))
            for sys_id in chunk:
                self._emails.setdefault(sys_id, (now, ""))
        return {s: self._emails[s][1] for s in given}


_SHARED: dict[str, People] = {}  # per instance and user, for the life of the process


def shared_people(client: ServiceNowClient) -> People:
    """People by email, cached across cycles (the TTL): the daemon asks about a person once
    an hour, not every cycle; each cycle's own client does the asking."""
    key = f"{client.base} {client.config.username}"
    people = _SHARED.setdefault(key, People(client))
    people.client = client
    return people
