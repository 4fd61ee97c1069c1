"""Choice labels: what ServiceNow shows for a state, impact, urgency or priority value.

Flashduty's documented business rule sends ``current.getDisplayValue(...)`` for
``state``, ``impact`` and ``urgency``, so fd-sync sends the instance's own labels
(its ``sys_choice`` rows in English, the language of Flashduty's mapping tables),
read once an hour by :mod:`fd_sync.servicenow.choices`. Where they cannot be read,
a base instance's labels stand in (:data:`BASE_LABELS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ELEMENTS = ("state", "impact", "urgency", "priority")
LEVELS = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
# A base instance's sys_choice labels (language en), as getDisplayValue() returns them.
BASE_LABELS: Mapping[str, Mapping[str, str]] = {
    "state": {
        "1": "New",
        "2": "In Progress",
        "3": "On Hold",
        "6": "Resolved",
        "7": "Closed",
        "8": "Canceled",
    },
    "impact": LEVELS,
    "urgency": LEVELS,
    "priority": {
        "1": "1 - Critical",
        "2": "2 - High",
        "3": "3 - Moderate",
        "4": "4 - Low",
        "5": "5 - Planning",
    },
}
INSTANCE, BASE = "instance", "base"  # where a set of labels came from


@dataclass(frozen=True)
class ChoiceLabels:
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: BASE_LABELS)
    source: str = BASE  # instance: read from sys_choice; base: the stand-in

    def label(self, element: str, value: str) -> str:
        """The label of a value; the value itself when the instance has no label for it."""
        return self.labels.get(element, {}).get(value, value)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> ChoiceLabels:
        """From sys_choice rows (element, value, label); an element without rows keeps the
        base labels, so a partly readable table never leaves a field unlabelled."""
        found: dict[str, dict[str, str]] = {}
        for row in rows:
            element, value, label = row.get("element"), row.get("value"), row.get("label")
            usable = isinstance(value, str) and isinstance(label, str) and value and label.strip()
            if element in ELEMENTS and usable:
                found.setdefault(str(element), {})[str(value)] = str(label).strip()
        merged = {e: found.get(e) or dict(BASE_LABELS[e]) for e in ELEMENTS}
        return cls(merged, INSTANCE)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "labels": {e: dict(v) for e, v in self.labels.items()}}

    @classmethod
    def from_json(cls, data: Any) -> ChoiceLabels:
        """What the ledger cached; the base labels for anything unreadable."""
        if not isinstance(data, dict) or not isinstance(data.get("labels"), dict):
            return BASE_CHOICES
        labels = {
            e: {str(k): str(v) for k, v in data["labels"].get(e, {}).items()} or BASE_LABELS[e]
            for e in ELEMENTS
        }
        return cls(labels, INSTANCE if data.get("source") == INSTANCE else BASE)


BASE_CHOICES = ChoiceLabels()
