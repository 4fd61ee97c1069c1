"""Two-way convergence under any history: a hypothesis state machine drives ServiceNow and
the responders in Flashduty (ack, comment, resolve, reopen), injects faults on ServiceNow's
reads and writes and on Flashduty's push and OpenAPI, runs cycles, and checks that after the
faults clear:

- no alert is open in Flashduty for an incident closed in either system;
- every responder action that fd-sync could see appears in ServiceNow exactly once;
- nobody is paged twice: an incident gets a new alert only when ServiceNow opens it again
  (nothing fd-sync wrote came back as an event, and a responder's close is not reopened);
- assignment and severity (issue 22, both directions on) never ping-pong: fd-sync assigns
  in Flashduty at most once per reassignment the desk made, and writes assigned_to at most
  once per assignment a responder made.

(api-reference/on-call.openapi.en.json for the OpenAPI side; the simulators enforce it.)
"""

from __future__ import annotations

from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, invariant, rule

from fd_sync.core.cadence import SLOWEST_SECONDS
from fd_sync.simulators.http import Fault
from tests.helpers.convergence import ConvergenceMachine, Wall, copy_fault, machine_test_cases

TABLE = "/api/now/table/"
faults = st.sampled_from(
    [
        ("sn", Fault(status=503, path=TABLE)),
        ("sn", Fault(status=502, path=TABLE, method="PATCH", times=5)),  # writes fail this cycle
        ("sn", Fault(drop=True, path=TABLE, method="PATCH")),
        ("fd", Fault(status=503, path="/event/push/")),
        ("fd", Fault(status=500, path="/incident/", times=5)),  # the OpenAPI down this cycle
        ("fd", Fault(status=429, path="/alert/list")),
        ("fd", Fault(drop=True, path="/incident/feed")),
    ]
)


class TwoWayConvergence(ConvergenceMachine):
    incidents = Bundle("incidents")

    def __init__(self) -> None:
        super().__init__()
        self.wall = Wall()
        self.fd.wall = self.wall
        self.cycle_options = {"wall": self.wall}
        self.people = [
            self.fd.add_person(n, f"{n.split()[0].lower()}@example.com")
            for n in ("Ann Lee", "Bob Ray")
        ]
        self.users = [
            self.sn.add_user(
                n, user_name=n.split()[0].lower(), email=f"{n.split()[0].lower()}@example.com"
            )
            for n in ("Ann Lee", "Bob Ray")
        ]
        self.desk_reassigns = 0  # assigned_to changed by a person in ServiceNow
        self.fd_assigns = 0  # assignments and acks by responders in Flashduty
        self.said: Counter[tuple[str, str]] = Counter()  # (sys_id, unique text) -> times
        self.serial = 0
        self.openings: Counter[str] = Counter()  # times ServiceNow opened each incident

    @initialize(target=incidents, resolve_state=st.sampled_from(["", "6"]))
    def install(self, resolve_state):
        self.configure(
            "standard",
            {
                "flashduty": {"app_key": self.fd.app_key, "api_domain": self.fd.url},
                "writeback": {
                    "enabled": True,
                    "acknowledge_state": "2",
                    "resolve_state": resolve_state,
                    "close_code": "Solution provided" if resolve_state else "",
                    "assign": "assignee",
                    "severity": True,
                },
                "forward": {"assignment": True, "work_notes": True},
            },
        )
        return self.created(self.sn.create(short_description="seed", urgency="1")["sys_id"])

    def created(self, sys_id: str) -> str:
        self.openings[sys_id] += 1
        return sys_id

    def cycle(self) -> None:
        self.wall.now += 5
        super().cycle()

    def text(self, prefix: str) -> str:
        self.serial += 1
        return f"<{prefix}-{self.serial}>"  # unique, and never a part of another

    def fd_incident(self, sys_id: str, *, closed: bool | None = None) -> str | None:
        """Its newest Flashduty incident, if fd-sync has found it (linked) by now."""
        try:
            incident_id = self.fd.incident_of(sys_id)
        except KeyError:
            return None
        assert self.ledger is not None
        link = self.ledger.links.get([sys_id]).get(sys_id)
        if link is None or link.incident_id != incident_id:
            return None  # fd-sync does not know this incident yet: what it cannot see
        progress = self.fd.fd_incidents[incident_id]["progress"]
        if closed is not None and (progress == "Closed") != closed:
            return None
        return incident_id

    # --- ServiceNow ---------------------------------------------------------------------

    @rule(target=incidents)
    def open_incident(self):
        self.sn.clock.advance(1)
        return self.created(self.sn.create(short_description="disk", urgency="1")["sys_id"])

    @rule(sys_id=incidents, state=st.sampled_from(["1", "2", "3", "6", "7"]))
    def set_state(self, sys_id, state):
        self.sn.clock.advance(1)
        was_open = sys_id in self.sn.open_sys_ids()
        self.sn.update(sys_id, state=state)
        if not was_open and sys_id in self.sn.open_sys_ids():
            self.openings[sys_id] += 1  # reopened in ServiceNow: paging again is right

    @rule(sys_id=incidents)
    def retitle(self, sys_id):
        self.sn.clock.advance(1)
        self.sn.update(sys_id, short_description=self.text("title"))

    # --- responders in Flashduty --------------------------------------------------------

    @rule(sys_id=incidents, who=st.sampled_from([0, 1]))
    def comment(self, sys_id, who):
        incident_id = self.fd_incident(sys_id)
        if incident_id is not None:
            text = self.text("comment")
            self.fd.comment(incident_id, self.people[who], text)
            self.said[(sys_id, text)] += 1

    @rule(sys_id=incidents)
    def ack(self, sys_id):
        incident_id = self.fd_incident(sys_id, closed=False)
        if incident_id is not None:
            self.fd.ack(incident_id, self.people[0])

    @rule(sys_id=incidents)
    def resolve(self, sys_id):
        incident_id = self.fd_incident(sys_id, closed=False)
        if incident_id is not None:
            # The feed does not carry a resolve's resolution: count the resolves, by Bob.
            self.fd.resolve(incident_id, self.people[1], self.text("fixed"))
            self.said[(sys_id, "Resolved by Bob Ray")] += 1

    @rule(sys_id=incidents)
    def reopen(self, sys_id):
        incident_id = self.fd_incident(sys_id, closed=True)
        if incident_id is not None:
            text = self.text("reopened")
            self.fd.reopen(incident_id, self.people[0], text)
            self.said[(sys_id, text)] += 1

    # --- who owns it, and how bad it is, on both sides -----------------------------------

    @rule(sys_id=incidents, who=st.sampled_from([0, 1]))
    def fd_reassign(self, sys_id, who):
        incident_id = self.fd_incident(sys_id, closed=False)
        if incident_id is not None:
            self.fd.assign(incident_id, self.people[0], [self.people[who]])
            self.fd_assigns += 1

    @rule(sys_id=incidents, severity=st.sampled_from(["Critical", "Warning", "Info"]))
    def fd_severity(self, sys_id, severity):
        incident_id = self.fd_incident(sys_id, closed=False)
        if incident_id is not None:
            self.fd.change_severity(incident_id, self.people[1], severity)
            self.fd_assigns += 1  # a severity change is a PATCH too

    @rule(sys_id=incidents, who=st.sampled_from([0, 1]))
    def desk_reassign(self, sys_id, who):
        self.sn.clock.advance(1)
        if self.sn.incident(sys_id)["assigned_to"] != self.users[who]:
            self.sn.update(sys_id, assigned_to=self.users[who])
            self.desk_reassigns += 1

    # --- faults and time ----------------------------------------------------------------

    @rule(fault=faults)
    def misbehave(self, fault):
        side, what = fault
        (self.sn if side == "sn" else self.fd).inject(copy_fault(what))

    @rule()
    def run_cycle(self):
        self.cycle()

    @invariant()
    def no_ping_pong(self):
        assigns = sum(1 for p, _ in self.fd.openapi_writes if p == "/incident/assign")
        assert assigns <= self.desk_reassigns, (assigns, self.desk_reassigns)
        written = sum(1 for _, body in self.sn.writes if "assigned_to" in body or "urgency" in body)
        assert written <= self.fd_assigns, (written, self.fd_assigns)

    @invariant()
    def nobody_paged_twice(self):
        for key, kinds in self.fd.history().items():
            assert kinds.count("create") <= self.openings[key], f"{key}: {kinds}"

    def check_converged(self) -> None:
        self.sn.clear_faults()
        self.fd.clear_faults()
        for _ in range(3):  # deliver; find the incidents and read them; write the notes
            self.cycle()
            # A closed or quiet incident is read within the slowest cadence (core.cadence).
            self.wall.now += SLOWEST_SECONDS
        sn_open = self.sn.open_sys_ids()
        # No alert open in Flashduty for an incident closed in either system.
        assert self.fd.open_keys() <= sn_open
        for key in self.fd.open_keys():
            progress = self.fd.fd_incidents[self.fd.incident_of(key)]["progress"]
            assert progress != "Closed", key
        # Every responder action fd-sync could see is in ServiceNow exactly once.
        for (sys_id, text), times in self.said.items():
            notes = "\n".join(j["value"] for j in self.sn.journal(sys_id))
            assert notes.count(text) == times, (text, notes)
        assert self.ledger is not None
        assert self.ledger.writeback.pending() == []
        assert self.ledger.flashduty_writes.pending() == []


TestTwoWayConvergence, TestTwoWayConvergenceOnPostgres = machine_test_cases(
    TwoWayConvergence, max_examples=25, steps=20
)
