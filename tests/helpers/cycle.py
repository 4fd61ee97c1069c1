"""An in-process fd-sync: the real cycle, ledger and HTTP clients, without the waits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fd_sync import wiring
from fd_sync.config import Config
from fd_sync.store.ledger import Ledger


class Sleeps:
    """Records requested sleeps instead of sleeping: retries are checked, not waited for."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Harness:
    """An in-process fd-sync: the real Cycle, ledger and HTTP clients, without the waits."""

    config: Config
    ledger: Ledger
    sleeps: Sleeps

    def cycle(self, **kwargs: Any) -> Any:
        return wiring.cycle(self.config, self.ledger, sleep=self.sleeps).run(**kwargs)
