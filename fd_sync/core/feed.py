"""A Flashduty incident's timeline as the write-back reads it. Pure: no I/O, no clock.

``/incident/feed`` entries carry no id of their own and Flashduty's incident times are
whole seconds, so two things here keep the read exact: a cursor of the newest entry's
millisecond plus the digests of the entries at that millisecond, and the rule that a
read made within :data:`SETTLE_SECONDS` of the incident's ``updated_at`` is repeated once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SETTLE_SECONDS = 2  # Flashduty's times are whole seconds: a read this soon may miss a change
WATCH_AFTER_CLOSE = 3600  # a closed incident is still read for this long: late notes, reopens

# Feed entry type -> the [writeback] work_notes kind it belongs to.
KIND_OF_TYPE = {
    "i_ack": "ack",
    "i_unack": "unack",
    "i_assign": "assign",
    "i_a_rspd": "assign",
    "i_comm": "comment",
    "i_rslv": "resolve",
    "i_reopen": "reopen",
    "i_notify": "notify",
    "i_r_severity": "severity",
}
FEED_TYPES = ("i_new", *KIND_OF_TYPE)  # what fd-sync asks /incident/feed for


@dataclass(frozen=True)
class Person:
    name: str = ""
    email: str = ""

    def label(self, person_id: int) -> str:
        if self.name and self.email:
            return f"{self.name} ({self.email})"
        return self.name or self.email or f"member {person_id}"

    def short(self, person_id: int) -> str:
        return self.name or self.email or f"member {person_id}"


@dataclass(frozen=True)
class FeedEntry:
    """One timeline entry of a Flashduty incident."""

    type: str
    creator_id: int  # 0: Flashduty itself
    created_at: int  # milliseconds
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Entries carry no id of their own: this tells apart two in the same millisecond."""
        text = json.dumps(
            [self.type, self.creator_id, self.created_at, self.detail],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> FeedEntry | None:
        try:
            detail = item.get("detail")
            return cls(
                type=str(item["type"]),
                creator_id=int(item.get("creator_id") or 0),
                created_at=int(item["created_at"]),
                detail=detail if isinstance(detail, dict) else {},
            )
        except (KeyError, TypeError, ValueError):
            return None  # an entry without a type or time cannot be placed


@dataclass(frozen=True)
class FeedCursor:
    """How far an incident's timeline was written back: the newest entry's time and the
    digests of the entries at that very millisecond."""

    at_ms: int = 0
    seen: frozenset[str] = frozenset()

    def new(self, entries: Iterable[FeedEntry]) -> list[FeedEntry]:
        fresh = [
            e
            for e in entries
            if e.created_at > self.at_ms
            or (e.created_at == self.at_ms and e.digest not in self.seen)
        ]
        return sorted(fresh, key=lambda e: e.created_at)

    def past(self, entries: Sequence[FeedEntry]) -> FeedCursor:
        """The cursor after these entries were handed on."""
        if not entries:
            return self
        newest = max(self.at_ms, *(e.created_at for e in entries))
        seen = {e.digest for e in entries if e.created_at == newest}
        if newest == self.at_ms:
            seen |= self.seen
        return FeedCursor(newest, frozenset(seen))

    def to_json(self) -> str:
        return json.dumps({"at_ms": self.at_ms, "seen": sorted(self.seen)})

    @classmethod
    def from_json(cls, text: str | None) -> FeedCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(int(data.get("at_ms") or 0), frozenset(data.get("seen") or ()))


@dataclass(frozen=True)
class FlashdutyIncident:
    """The fields of ``/incident/list-by-ids`` write-back uses."""

    incident_id: str
    progress: str  # Triggered, Processing, Closed
    updated_at: int  # seconds
    start_time: int = 0  # seconds
    resolution: str = ""
    close_time: int = 0  # seconds; 0 while open
    closer: Person | None = None
    url: str = ""
    channel_id: int = 0
    ack_time: int = 0  # seconds: the incident's first acknowledgement, 0 before one
    severity: str = ""  # incident_severity now: Critical, Warning, Info

    @property
    def closed(self) -> bool:
        return self.progress == "Closed"

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> FlashdutyIncident:
        closer = item.get("closer") if isinstance(item.get("closer"), dict) else None
        return cls(
            incident_id=str(item.get("incident_id") or ""),
            progress=str(item.get("progress") or ""),
            updated_at=int(item.get("updated_at") or 0),
            start_time=int(item.get("start_time") or 0),
            resolution=str(item.get("resolution") or ""),
            close_time=int(item.get("close_time") or 0),
            closer=(
                Person(str(closer.get("person_name") or ""), str(closer.get("email") or ""))
                if closer
                else None
            ),
            url=str(item.get("detail_url") or ""),
            channel_id=int(item.get("channel_id") or 0),
            ack_time=int(item.get("ack_time") or 0),
            severity=str(item.get("incident_severity") or ""),
        )


def needs_read(incident: FlashdutyIncident, seen_updated_at: int, read_at: int) -> bool:
    """Whether the timeline must be read: it changed since, or the last read came so soon
    after the last change that another change in that same second would not show."""
    if incident.updated_at > seen_updated_at:
        return True  # something happened since the last read
    # Unchanged, but read within SETTLE_SECONDS of the change: read once more to be sure.
    return read_at < incident.updated_at + SETTLE_SECONDS
