"""Reading Flashduty's incidents through the On-call OpenAPI (on-call.openapi.en.json).

- ``/alert/list`` with ``alert_keys`` finds the incident of each alert fd-sync opened,
  within the documented 31-day window (``start_time``/``end_time`` in seconds);
- ``/incident/list-by-ids`` (at most 100 ids a request) says which incidents changed;
- ``/incident/feed`` gives a changed incident's timeline, read newest first until the
  entries already written back (``created_at`` in milliseconds);
- ``/person/infos`` names the people in it, cached for the life of the reader.

Every request goes through :class:`~fd_sync.flashduty.openapi.OpenAPIClient`, so the
account's limits (50/s, 1000/min, shared with other users of the key) are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fd_sync.core.feed import FEED_TYPES, FeedCursor, FeedEntry, FlashdutyIncident, Person
from fd_sync.flashduty.openapi import BATCH, OpenAPIClient

WINDOW_SECONDS = 31 * 86400  # /alert/list: "Max span 31 days"
IDS_PER_REQUEST = 100  # /incident/list-by-ids
FEED_PAGE = 100  # /incident/feed: limit at most 100
MAX_FEED_PAGES = 50


@dataclass(frozen=True)
class FoundAlert:
    alert_key: str
    alert_id: str
    incident_id: str
    active: bool
    start_time: int = 0
    integration_id: int = 0  # the integration the alert arrived by

    @property
    def rank(self) -> tuple[bool, int, str]:
        """Which of a key's alerts is the one just sent: an open one, the newest (a closed
        alert's key comes back as a new alert; ObjectIDs grow with time)."""
        return (self.active, self.start_time, self.alert_id)


def _items(data: Any) -> list[dict[str, Any]]:
    items = data.get("items") if isinstance(data, dict) else None
    return [i for i in items or () if isinstance(i, dict)]


class IncidentReader:
    def __init__(self, openapi: OpenAPIClient, people: dict[int, Person] | None = None) -> None:
        self.openapi = openapi
        # person_id -> name and email; the daemon passes one dict for its whole life
        self.people: dict[int, Person] = people if people is not None else {}

    @property
    def requests_made(self) -> int:
        return self.openapi.requests_made

    def alerts(
        self, keys: Sequence[str], *, start: int, end: int, active: bool | None = None
    ) -> dict[str, FoundAlert]:
        """Alerts by ``alert_key``, newest per key, that started in [start, end] (seconds)."""
        found: dict[str, FoundAlert] = {}
        start = max(start, end - WINDOW_SECONDS)
        body: dict[str, Any] = {"start_time": start, "end_time": end, "asc": True}
        if active is not None:
            body["is_active"] = active
        wanted = list(dict.fromkeys(keys))
        for first in range(0, len(wanted), 100):
            body["alert_keys"] = wanted[first : first + 100]
            for item in self.openapi.paged("/alert/list", body):
                alert = self._alert(item)
                if alert is None:
                    continue
                known = found.get(alert.alert_key)
                if known is None or alert.rank > known.rank:
                    found[alert.alert_key] = alert
        return found

    def active_alerts(
        self, *, start: int, end: int, integration_ids: Sequence[int] = ()
    ) -> list[FoundAlert]:
        """Every open alert that started in [start, end], in 31-day windows (``adopt``)."""
        out: list[FoundAlert] = []
        high = end
        while high > start:
            low = max(start, high - WINDOW_SECONDS)
            body: dict[str, Any] = {"start_time": low, "end_time": high, "is_active": True}
            if integration_ids:
                body["integration_ids"] = list(integration_ids)
            out.extend(a for i in self.openapi.paged("/alert/list", body) if (a := self._alert(i)))
            high = low - 1
        return out

    @staticmethod
    def _alert(item: Mapping[str, Any]) -> FoundAlert | None:
        incident = item.get("incident") if isinstance(item.get("incident"), dict) else {}
        key, incident_id = item.get("alert_key"), (incident or {}).get("incident_id")
        if not key or not incident_id:
            return None  # no incident (yet): merged away, or held by a noise-reduction rule
        return FoundAlert(
            str(key),
            str(item.get("alert_id") or ""),
            str(incident_id),
            item.get("end_time") == 0,
            int(item.get("start_time") or 0),
            int(item.get("integration_id") or 0),
        )

    def incidents(self, incident_ids: Iterable[str]) -> dict[str, FlashdutyIncident]:
        ids = list(dict.fromkeys(incident_ids))
        out: dict[str, FlashdutyIncident] = {}
        for first in range(0, len(ids), IDS_PER_REQUEST):
            data = self.openapi.call(
                "/incident/list-by-ids", {"incident_ids": ids[first : first + IDS_PER_REQUEST]}
            )
            for item in _items(data):
                incident = FlashdutyIncident.from_api(item)
                out[incident.incident_id] = incident
        return out

    def feed(self, incident_id: str, cursor: FeedCursor) -> list[FeedEntry]:
        """The entries after ``cursor``, oldest first: pages newest first until one reaches it."""
        entries: list[FeedEntry] = []
        for page in range(1, MAX_FEED_PAGES + 1):
            data = self.openapi.call(
                "/incident/feed",
                {
                    "incident_id": incident_id,
                    "p": page,
                    "limit": FEED_PAGE,
                    "asc": False,
                    "types": list(FEED_TYPES),
                },
            )
            batch = [e for i in _items(data) if (e := FeedEntry.from_api(i))]
            entries.extend(batch)
            reached = any(e.created_at < cursor.at_ms for e in batch)
            if reached or not batch or not (isinstance(data, dict) and data.get("has_next_page")):
                break
        entries.reverse()  # oldest first, keeping Flashduty's order within one millisecond
        return cursor.new(entries)

    def names(self, person_ids: Iterable[int]) -> dict[int, Person]:
        """Who these members are; one /person/infos request per BATCH unknown ids."""
        unknown = [p for p in dict.fromkeys(person_ids) if p and p not in self.people]
        if unknown:
            for text_id, info in self.openapi.infos("person", unknown).items():
                self.people[int(text_id)] = Person(
                    str(info.get("person_name") or ""), str(info.get("email") or "")
                )
            for person_id in unknown:
                self.people.setdefault(person_id, Person())  # left or deleted: asked once
        return {p: self.people.get(p, Person()) for p in person_ids}


__all__ = ["BATCH", "FoundAlert", "IncidentReader"]
