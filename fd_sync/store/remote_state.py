"""The Ledger's steps that keep what fd-sync learned of the remotes between runs:
ServiceNow's clock, how far the scan last read, the instance's choice labels, and both
APIs' budgets (fd_sync.sync.pacing). Small state writes, one transaction each."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fd_sync.store.state import (
    API_BUDGETS,
    CHOICE_LABELS,
    SCAN_READ_TO_END,
    SERVICENOW_CLOCK,
    State,
)


class RemoteSteps:
    state: State

    if TYPE_CHECKING:  # the Ledger's

        def transaction(self, doing: str = "") -> contextlib.AbstractContextManager[None]: ...

    def record_servicenow_clock(self, when: str, *, read_to_end: bool = False) -> None:
        """``read_to_end``: this cycle's scan went on to the empty page (see Cycle)."""
        with self.transaction("record ServiceNow's clock"):
            self.state.set(SERVICENOW_CLOCK, when)
            if read_to_end:
                self.state.set(SCAN_READ_TO_END, when)

    def record_choice_labels(self, labels: Mapping[str, Any]) -> None:
        with self.transaction("record the choice labels"):
            self.state.set_json(CHOICE_LABELS, dict(labels))

    def api_budgets(self) -> dict[str, Any]:
        """Both APIs' budgets as the last cycle left them (fd_sync.sync.pacing)."""
        value = self.state.get_json(API_BUDGETS)
        return value if isinstance(value, dict) else {}

    def record_api_budgets(self, value: dict[str, Any]) -> None:
        with self.transaction("record the API budgets"):
            self.state.set_json(API_BUDGETS, value)
