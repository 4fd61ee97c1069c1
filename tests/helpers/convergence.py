"""The scaffolding both hypothesis convergence machines share, so that each file says only
its rules and what convergence means for it.

A machine gets a scratch folder, a ServiceNow and a Flashduty simulator, a ledger on its
``backend``, a configuration from a document (:meth:`ConvergenceMachine.configure`), cycles
through the same wiring as ``fd-sync once``, and a teardown that stops everything.
:func:`machine_test_cases` turns a machine into its TestCases on SQLite and PostgreSQL, each
checking convergence when a history ends.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine

from fd_sync import wiring
from fd_sync.config import Config, parse
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.http import Fault
from fd_sync.simulators.servicenow import ServiceNowSim, SimClock
from fd_sync.store.ledger import Ledger
from tests.helpers.config import base_document, merge
from tests.helpers.cycle import Sleeps
from tests.helpers.ledgers import machine_ledger
from tests.helpers.simulated import START


class Wall:
    """A Unix clock shared by the Flashduty simulator and fd-sync, moved by the machine."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def copy_fault(fault: Fault) -> Fault:
    """A fresh fault of the same kind: a simulator consumes the one it is given."""
    return Fault(
        status=fault.status,
        body=fault.body,
        headers=dict(fault.headers),
        drop=fault.drop,
        truncate=fault.truncate,
        path=fault.path,
        method=fault.method,
        times=fault.times,
    )


class ConvergenceMachine(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.sn = ServiceNowSim(clock=SimClock(START, ticking=False)).start()
        self.fd = FlashdutySim().start()  # the [flashduty] push_url
        self.others: list[FlashdutySim] = []  # more integrations a machine starts
        self.ledger: Ledger | None = None  # set by configure(), from the first rule
        self.sleeps = Sleeps()
        self.cycle_options: dict[str, Any] = {}  # passed to wiring.cycle (wall, people)

    def configure(self, fmt: str, overrides: dict[str, Any]) -> Config:
        """The configuration and the ledger; the first cycle records the baseline."""
        database = machine_ledger(self.backend, Path(self.tmp.name))
        document = merge(base_document(self.sn, self.fd, database, fmt), overrides)
        self.config = parse(document, path=Path(self.tmp.name) / "c.toml", env={})
        self.ledger = Ledger(database)
        self.cycle()
        return self.config

    def cycle(self) -> None:
        assert self.ledger is not None
        wiring.cycle(self.config, self.ledger, sleep=self.sleeps, **self.cycle_options).run()

    def check_converged(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
        for sim in (self.sn, self.fd, *self.others):
            sim.stop()
        self.tmp.cleanup()


def machine_test_cases(
    machine: type[ConvergenceMachine], *, max_examples: int, steps: int
) -> tuple[Any, Any]:
    """The machine's TestCases on SQLite and on PostgreSQL (the same histories): each
    history ends with the machine's convergence check, then the teardown."""

    class Checked(machine):  # type: ignore[valid-type, misc]
        def teardown(self) -> None:
            try:
                self.check_converged()
            finally:
                super().teardown()

    class OnPostgres(Checked):  # type: ignore[valid-type, misc]
        backend = "postgres"

    chosen = settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    Checked.__name__ = f"{machine.__name__}Test"
    OnPostgres.__name__ = f"{machine.__name__}TestOnPostgres"
    Checked.TestCase.settings = chosen
    OnPostgres.TestCase.settings = chosen
    return Checked.TestCase, OnPostgres.TestCase
