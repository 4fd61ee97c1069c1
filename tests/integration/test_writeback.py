"""Two-way sync: what responders do in Flashduty reaches the ServiceNow incident.

Against the simulators of Flashduty's On-call OpenAPI (api-reference/on-call.openapi.en.json:
/alert/list, /incident/list-by-ids, /incident/feed) and ServiceNow's Table API PATCH.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fd_sync import wiring
from fd_sync.simulators.flashduty import FlashdutySim
from fd_sync.simulators.servicenow import ServiceNowSim
from tests.conftest import Harness, change, open_incident


class Wall:
    """A Unix clock shared by the Flashduty simulator and fd-sync, moved by the test."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class TwoWay:
    h: Harness
    wall: Wall
    sn: ServiceNowSim
    fd: FlashdutySim

    def cycle(self, **kwargs: Any) -> Any:
        self.wall.advance(5)  # a poll interval: earlier reads are settled
        cycle = wiring.cycle(self.h.config, self.h.ledger, sleep=self.h.sleeps, wall=self.wall)
        return cycle.run(**kwargs)

    def notes(self, sys_id: str) -> list[str]:
        return [j["value"] for j in self.sn.journal(sys_id, "work_notes")]


@pytest.fixture
def two_way(
    harness: Callable[..., Harness], servicenow: ServiceNowSim, flashduty: FlashdutySim
) -> Callable[..., TwoWay]:
    def build(push_format: str = "standard", **writeback: Any) -> TwoWay:
        wall = Wall()
        flashduty.wall = wall
        h = harness(
            push_format,
            flashduty={"app_key": flashduty.app_key, "api_domain": flashduty.url},
            writeback={"enabled": True, **writeback},
        )
        t = TwoWay(h, wall, servicenow, flashduty)
        t.cycle()  # the first run records the (empty) baseline
        return t

    return build


def test_an_ack_and_a_comment_become_one_work_note_each_exactly_once(two_way, push_format):
    t = two_way(push_format)
    inc = open_incident(t.sn)
    t.cycle()
    ann = t.fd.add_person("Ann Lee", "ann@example.com")
    incident_id = t.fd.incident_of(inc["sys_id"])
    t.fd.ack(incident_id, ann)
    t.fd.comment(incident_id, ann, "checking the core router")
    report = t.cycle()
    assert report.exit_code == 0, report.message()
    notes = t.notes(inc["sys_id"])
    assert len(notes) == 1
    assert "[Flashduty] Acknowledged by Ann Lee (ann@example.com)" in notes[0]
    assert "[Flashduty] Comment by Ann Lee (ann@example.com): checking the core router" in notes[0]
    for _ in range(3):
        t.cycle()
    assert len(t.notes(inc["sys_id"])) == 1
    # fd-sync's own write moved the version; nothing went back to Flashduty.
    assert [e.kind for e in t.fd.events()] == ["create"]
