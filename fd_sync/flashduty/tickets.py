"""The OpenAPI calls of tickets from Flashduty (on-call.openapi.en.json).

- ``/incident/list``: the open incidents of the watched channels, ``progress =
  "Triggered,Processing"``, in windows on the start time of at most 31 days (documented
  limit), paged by ``has_next_page`` (``total`` is capped: never trusted to end a list);
- ``/incident/comment`` (``mute_reply``), ``/incident/resolve``, ``/incident/reopen``,
  ``/incident/reset``: what a ticket's changes in ServiceNow do to its incident. A comment
  is not repeatable (see :meth:`OpenAPIClient.call`); :meth:`comments` reads the feed to
  find out whether one whose answer never came landed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fd_sync.core.tickets import FlashdutySource, OpenAPIWrite
from fd_sync.flashduty.openapi import OpenAPIClient

WINDOW_SECONDS = 31 * 86400  # /incident/list: "within 31 days"
OPEN = "Triggered,Processing"


class FlashdutyTickets:
    def __init__(self, openapi: OpenAPIClient) -> None:
        self.openapi = openapi
        self._members: dict[str, list[int]] | None = None  # email (casefolded) -> member ids

    def member_of(self, email: str) -> tuple[int | None, str]:
        """The Flashduty member with this email (``/member/list``, read once), or why none."""
        if self._members is None:
            self._members = {}
            for item in self.openapi.members():
                mail = str(item.get("email") or "").casefold()
                if mail and isinstance(item.get("member_id"), int):
                    self._members.setdefault(mail, []).append(int(item["member_id"]))
        found = self._members.get(email.casefold(), []) if email else []
        if len(found) == 1:
            return found[0], ""
        if found:
            return None, f"{len(found)} Flashduty members have this email"
        return None, "no Flashduty member has this email" if email else "the user has no email"

    @property
    def requests_made(self) -> int:
        return self.openapi.requests_made

    def open_incidents(
        self, channel_ids: Iterable[int], *, start: int, end: int, severities: Iterable[str] = ()
    ) -> list[FlashdutySource]:
        """Open incidents of these channels that started in [start, end], oldest first."""
        found: dict[str, FlashdutySource] = {}
        low = start
        while low <= end:
            high = min(end, low + WINDOW_SECONDS - 1)
            body: dict[str, Any] = {
                "channel_ids": list(channel_ids),
                "progress": OPEN,
                "start_time": low,
                "end_time": max(high, low + 1),
                "asc": True,
            }
            if severities:
                body["incident_severity"] = ",".join(sorted(severities))
            for item in self.openapi.paged("/incident/list", body):
                source = FlashdutySource.from_api(item)
                if source.incident_id:
                    found[source.incident_id] = source
            low = high + 1
        return sorted(found.values(), key=lambda s: (s.start_time, s.incident_id))

    def write(self, incident_id: str, write: OpenAPIWrite, *, member: int | None = None) -> None:
        """One write to one incident; a comment is never sent twice blindly. ``member``: the
        person an ``assign`` assigns (AssignIncidentRequest)."""
        if write.kind == "assign":
            assigned = {"person_ids": [member], "type": "reassign"}
            body: dict[str, Any] = {"incident_id": incident_id, "assigned_to": assigned}
        elif write.kind == "severity":
            body = {"incident_id": incident_id, **write.body}
        else:
            body = {"incident_ids": [incident_id], **write.body}
        self.openapi.call(write.path, body, repeatable=write.kind != "comment")

    def progress(self, incident_ids: Iterable[str]) -> dict[str, str]:
        """Each incident's progress now (``/incident/list-by-ids``, 100 a request); an
        incident Flashduty no longer returns (merged, deleted) is left out."""
        ids = list(dict.fromkeys(incident_ids))
        out: dict[str, str] = {}
        for first in range(0, len(ids), 100):
            data = self.openapi.call(
                "/incident/list-by-ids", {"incident_ids": ids[first : first + 100]}
            )
            items = data.get("items") if isinstance(data, dict) else None
            for item in items or ():
                if isinstance(item, dict) and item.get("incident_id"):
                    out[str(item["incident_id"])] = str(item.get("progress") or "")
        return out

    def comments(self, incident_id: str) -> list[str]:
        """The newest comments of an incident (one page): did a comment land?"""
        data = self.openapi.call(
            "/incident/feed",
            {"incident_id": incident_id, "p": 1, "limit": 100, "asc": False, "types": ["i_comm"]},
        )
        items = data.get("items") if isinstance(data, dict) else None
        return [
            str((item.get("detail") or {}).get("comment") or "")
            for item in items or ()
            if isinstance(item, dict) and isinstance(item.get("detail"), dict)
        ]

    def can_list(self, channel_id: int, *, start: int, end: int) -> int:
        """How many open incidents one channel has lately (``check``): proves the key may
        list its incidents. Raises what the OpenAPI said otherwise."""
        data = self.openapi.call(
            "/incident/list",
            {
                "channel_ids": [channel_id],
                "start_time": start,
                "end_time": end,
                "p": 1,
                "limit": 1,
            },
        )
        return int(data.get("total") or 0) if isinstance(data, dict) else 0
