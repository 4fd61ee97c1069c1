"""Convergence under any history: a hypothesis state machine drives ServiceNow, injects
faults on both sides, runs cycles, and checks that after the faults clear one clean cycle
makes Flashduty mirror ServiceNow, with every incident's events alternating.

Routes are part of the history: incidents of the Network group go to a second Flashduty
integration, urgency Low is skipped, incidents are reassigned between groups (moving their
alerts) and dispatched by hand (pinning them). An incident's alert must be open in exactly
one integration, the right one, or none; never in two at once.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    initialize,
    invariant,
    multiple,
    rule,
)

from fd_sync import wiring
from fd_sync.errors import FdSyncError
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.http import Fault
from fd_sync.sync.dispatch import DispatchOptions
from tests.helpers.convergence import ConvergenceMachine, copy_fault, machine_test_cases

LOOKBACK = 30
TABLE = "/api/now/table/"
PUSH = "/event/push/"

servicenow_faults = st.sampled_from(
    [
        Fault(status=503, path=TABLE),
        Fault(status=502, path=TABLE, times=5),  # retries exhausted: the cycle ends early
        Fault(status=429, headers={"Retry-After": "1"}, path=TABLE),
        Fault(drop=True, path=TABLE),
        Fault(truncate=True, path=TABLE),
        Fault(status=200, body="<html>login</html>", path=TABLE),
    ]
)
flashduty_faults = st.sampled_from(
    [
        Fault(status=503, path=PUSH),
        Fault(status=500, path=PUSH, times=5),  # Flashduty down for this cycle
        Fault(status=429, path=PUSH),
        Fault(status=429, headers={"Retry-After": "2"}, path=PUSH),
        Fault(drop=True, path=PUSH),
        Fault(status=200, path=PUSH, body='{"request_id":"r","error":{"code":"InternalError"}}'),
    ]
)


class Convergence(ConvergenceMachine):
    incidents = Bundle("incidents")

    def __init__(self) -> None:
        super().__init__()
        self.fd2 = FlashdutySim().start()  # the Network route's integration
        self.others.append(self.fd2)
        self.groups = {name: self.sn.add_group(name) for name in ("Network", "Database")}
        self.hidden: set[str] = set()
        self.dispatched: dict[str, set[str]] = {}  # sys_id -> destinations it was sent to

    def install(self, fmt: str) -> None:
        """The configuration, in either push format; the empty table is the baseline."""
        other = self.fd2.push_url_servicenow if fmt == "standard" else self.fd2.push_url_standard
        self.configure(
            fmt,
            {
                "servicenow": {"page_size": 3},
                "sync": {"lookback_seconds": LOOKBACK},
                "route": [
                    {"name": "skip-low", "match": {"urgency": ["3"]}, "skip": True},
                    {
                        "name": "network",
                        "match": {"assignment_group": ["Network"]},
                        "push_url": other,
                    },
                ],
            },
        )

    def tick(self, seconds: int = 1) -> None:
        # The contract: a row becomes visible at most lookback_seconds after its stamp.
        horizon = self.sn.clock.text(seconds - LOOKBACK)
        for sys_id in list(self.hidden):
            if self.sn.incident(sys_id)["sys_updated_on"] <= horizon:
                self.sn.reveal(sys_id)
                self.hidden.discard(sys_id)
        self.sn.clock.advance(seconds)

    @initialize(target=incidents, fmt=st.sampled_from(["standard", "servicenow"]))
    def two_open_incidents(self, fmt):
        """Installed in a push format hypothesis draws; one incident per integration from
        the start, so that moves are common."""
        self.install(fmt)
        rows = [
            self.sn.create(short_description="seed", urgency="1", assignment_group=group)
            for group in self.groups.values()
        ]
        return multiple(*(row["sys_id"] for row in rows))

    @rule(
        target=incidents,
        urgency=st.sampled_from(["1", "2", "3"]),
        group=st.sampled_from(["Network", "Database"]),
    )
    def open_incident(self, urgency, group):
        self.tick()
        row = self.sn.create(
            short_description="disk", urgency=urgency, assignment_group=self.groups[group]
        )
        return row["sys_id"]

    @rule(sys_id=incidents, synced_first=st.booleans())
    def reassign(self, sys_id, synced_first):
        """To the other group: moves the alert between integrations (none for urgency Low).
        Often after a cycle, so that an alert is open where the incident leaves."""
        if synced_first:
            self.cycle()
        self.tick()
        current = self.sn.incident(sys_id)["assignment_group"]
        other = next(g for g in self.groups.values() if g != current)
        self.sn.update(sys_id, assignment_group=other)

    @rule(sys_id=incidents, urgency=st.sampled_from(["1", "2", "3"]))
    def set_urgency(self, sys_id, urgency):
        self.tick()
        self.sn.update(sys_id, urgency=urgency)

    @rule(sys_id=incidents, group=st.sampled_from(["Network", "Database"]), urgency=st.booleans())
    def dispatch(self, sys_id, group, urgency):
        """An operator sends it by hand: pinned wherever --group routes it."""
        config = self.config
        dispatcher = wiring.dispatcher(config, self.ledger, sleep=self.sleeps)
        if urgency:  # a skipped incident is the one most worth sending by hand
            self.tick()
            self.sn.update(sys_id, urgency="3")
        try:
            plan = dispatcher.plan(self.sn.incident(sys_id)["number"], DispatchOptions(group=group))
        except FdSyncError:
            return  # closed (no --force), hidden, or ServiceNow failing: nothing recorded
        self.dispatched.setdefault(sys_id, set()).add(plan.route.destination)
        dispatcher.send(plan, run_id="dispatch")

    @rule(sys_id=incidents, title=st.sampled_from(["disk", "disk full", "db down"]))
    def retitle(self, sys_id, title):
        self.tick()
        self.sn.update(sys_id, short_description=title)

    @rule(sys_id=incidents)
    def work_note(self, sys_id):
        self.tick()
        self.sn.update(sys_id, work_notes="looked")

    @rule(sys_id=incidents, state=st.sampled_from(["2", "3", "6", "7", "8", "1"]))
    def set_state(self, sys_id, state):
        self.tick()
        self.sn.update(sys_id, state=state)

    @rule(late=incidents, other=incidents, state=st.sampled_from(["2", "6"]))
    def commit_late(self, late, other, state):
        """A change stamped now becomes visible only later, after newer changes were read:
        only the look-back window can still see it."""
        self.tick()
        self.sn.update(late, state=state, short_description="late change")
        self.sn.hide(late)
        self.hidden.add(late)
        self.tick(10)
        if other != late:
            self.sn.update(other, work_notes="a newer, visible change")

    @rule()
    def late_rows_become_visible(self):
        for sys_id in self.hidden:
            self.sn.reveal(sys_id)
        self.hidden.clear()

    @rule(fault=servicenow_faults)
    def servicenow_misbehaves(self, fault):
        self.sn.inject(copy_fault(fault))

    @rule(fault=flashduty_faults)
    def flashduty_misbehaves(self, fault):
        self.fd.inject(copy_fault(fault))

    @rule(fault=flashduty_faults)
    def second_integration_misbehaves(self, fault):
        self.fd2.inject(copy_fault(fault))

    @rule(n=st.integers(min_value=1, max_value=3))
    def duplicate_rows(self, n):
        self.sn.duplicate_rows += n

    @rule(seconds=st.integers(min_value=1, max_value=20))
    def time_passes(self, seconds):
        self.tick(seconds)

    @rule()
    def run_cycle(self):
        self.cycle()

    @invariant()
    def never_open_in_two_integrations(self):
        assert not self.fd.open_keys() & self.fd2.open_keys()

    @invariant()
    def events_always_alternate(self):
        for key, kinds in [*self.fd.history().items(), *self.fd2.history().items()]:
            is_open = False
            for kind in kinds:
                if kind == "create":
                    assert not is_open, f"{key}: create while open: {kinds}"
                    is_open = True
                elif kind == "resolve":
                    assert is_open, f"{key}: resolve while closed: {kinds}"
                    is_open = False
                else:
                    assert is_open, f"{key}: update while closed: {kinds}"

    def check_converged(self) -> None:
        self.sn.clear_faults()
        self.fd.clear_faults()
        self.fd2.clear_faults()
        self.sn.duplicate_rows = 0
        self.late_rows_become_visible()
        self.tick(5)
        self.cycle()
        # Where each open incident's alert must be: pinned by a dispatch, else its route.
        pinned = dict(
            self.ledger.db.rows("SELECT sys_id, destination FROM incidents WHERE pinned = 1")
        )
        for sys_id, where in pinned.items():
            assert where in self.dispatched.get(sys_id, set()), "pinned but never dispatched"
        expected: dict[str, set[str]] = {"default": set(), "route:network": set()}
        for sys_id in self.sn.open_sys_ids():
            row = self.sn.incident(sys_id)
            if sys_id in pinned:
                expected[pinned[sys_id]].add(sys_id)
            elif row["urgency"] == "3":
                continue  # skip-low
            elif row["assignment_group"] == self.groups["Network"]:
                expected["route:network"].add(sys_id)
            else:
                expected["default"].add(sys_id)
        assert self.fd.open_keys() == expected["default"]
        assert self.fd2.open_keys() == expected["route:network"]
        # Stronger than the open sets: the ledger saw the latest version of every incident
        # that ever had an alert; the others are closed and were never alerted (no row).
        seen = {r[0]: r[1] for r in self.ledger.db.rows("SELECT sys_id, mod_count FROM incidents")}
        latest = {r["sys_id"]: int(r["sys_mod_count"]) for r in self.sn.incidents()}
        alerted = set(self.fd.history()) | set(self.fd2.history())
        assert alerted <= set(seen)
        assert all(seen[s] == latest[s] for s in seen)
        for sys_id in set(latest) - set(seen):
            assert (
                sys_id not in self.sn.open_sys_ids() or self.sn.incident(sys_id)["urgency"] == "3"
            ), f"{sys_id}: open, routed, and unknown to the ledger"
        assert self.fd.violations == [] and self.fd2.violations == []
        assert self.ledger.summary().outbox.pending == 0


TestConvergence, TestConvergenceOnPostgres = machine_test_cases(
    Convergence, max_examples=40, steps=30
)
