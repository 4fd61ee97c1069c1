"""Tickets from Flashduty converge under any history (issue 20): a hypothesis state machine
opens monitoring incidents in a watched channel, acts on them as responders (ack, comment,
resolve, reopen) and as the monitoring tool (recovery), acts on their tickets as the desk
(resolve, reopen, comment, urgency), injects faults on ServiceNow's POST, PATCH and reads
and on Flashduty's OpenAPI, runs cycles, and checks that after the faults clear:

- no Flashduty incident ever has two tickets, and every one still open has exactly one;
- nothing is ever pushed as an alert, and fd-sync's own writes never come back as notes;
- every responder comment is in its ticket exactly once;
- each side's close reached the other: the last close or reopen decides where both stand
  (a reopen in Flashduty leaves the ticket as it is: state only moves forward there; and a
  close in Flashduty leaves alone a ticket the desk changed after fd-sync last read it,
  since the person wins and no clock of the two systems is compared: such histories
  expect nothing of the ticket's state).

(api-reference/on-call.openapi.en.json for the OpenAPI side; the simulators enforce it.)
"""

from __future__ import annotations

from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, invariant, rule

from fd_sync import wiring
from fd_sync.core.cadence import SLOWEST_SECONDS
from fd_sync.simulators.http import Fault
from tests.helpers.convergence import ConvergenceMachine, Wall, copy_fault, machine_test_cases

WATCHED = 5550001
TABLE = "/api/now/table/"
faults = st.sampled_from(
    [
        ("sn", Fault(status=503, path=TABLE)),
        ("sn", Fault(status=502, path="/api/now/table/incident", method="POST", times=3)),
        ("sn", Fault(drop=True, path="/api/now/table/incident", method="POST")),
        ("sn", Fault(status=502, path=TABLE, method="PATCH", times=5)),
        ("fd", Fault(status=500, path="/incident/", times=5)),  # the OpenAPI down this cycle
        ("fd", Fault(drop=True, path="/incident/comment")),
        ("fd", Fault(drop=True, path="/incident/resolve")),
        ("fd", Fault(status=429, path="/incident/list")),
    ]
)
CLOSED = ("6", "7", "8")


class TicketConvergence(ConvergenceMachine):
    incidents = Bundle("incidents")

    def __init__(self) -> None:
        super().__init__()
        self.wall = Wall()
        self.fd.wall = self.wall
        self.cycle_options = {"wall": self.wall}
        self.fd.add_channel("Prometheus", channel_id=WATCHED)
        self.people = [self.fd.add_person(n) for n in ("Ann Lee", "Bob Ray")]
        self.said: Counter[tuple[str, str]] = Counter()  # (incident_id, text) -> times
        self.last: dict[str, str] = {}  # incident_id -> the last close/reopen, and where
        self.touched: set[str] = set()  # tickets the desk has changed
        self.seen_closed: dict[str, bool] = {}  # each ticket closed or not, at the last cycle
        self.serial = 0

    @initialize()
    def install(self):
        self.configure(
            "standard",
            {
                "flashduty": {"app_key": self.fd.app_key, "api_domain": self.fd.url},
                "writeback": {
                    "enabled": True,
                    "resolve_state": "6",
                    "close_code": "Solution provided",
                },
                "tickets": {"enabled": True, "channel_ids": [WATCHED]},
            },
        )

    def cycle(self) -> None:
        self.wall.now += 5
        self.sn.clock.advance(5)
        assert self.ledger is not None
        report = wiring.cycle(self.config, self.ledger, sleep=self.sleeps, wall=self.wall).run()
        if report.error is None:  # the poll read ServiceNow: what it saw is what fd-sync knows
            for incident_id in self.fd.fd_incidents:
                ticket = self.ticket(incident_id)
                if ticket is not None:
                    self.seen_closed[incident_id] = ticket["state"] in CLOSED

    def text(self, prefix: str) -> str:
        self.serial += 1
        return f"<{prefix}-{self.serial}>"

    def ticket(self, incident_id: str) -> dict[str, str] | None:
        found = [
            row
            for row in self.sn.tables["incident"].values()
            if row.get("correlation_id") == incident_id
        ]
        return found[0] if found else None

    def progress(self, incident_id: str) -> str:
        return str(self.fd.fd_incidents[incident_id]["progress"])

    # --- Flashduty: the monitoring tool and responders ----------------------------------

    @rule(target=incidents, severity=st.sampled_from(["Critical", "Warning"]))
    def alert(self, severity):
        self.wall.now += 1
        return self.fd.open_incident(self.text("alert"), channel_id=WATCHED, severity=severity)

    @rule(incident_id=incidents, who=st.sampled_from([0, 1]))
    def comment(self, incident_id, who):
        if self.ticket(incident_id) is not None:  # written back only once it has a ticket
            text = self.text("comment")
            self.fd.comment(incident_id, self.people[who], text)
            self.said[(incident_id, text)] += 1

    @rule(incident_id=incidents)
    def ack(self, incident_id):
        if self.progress(incident_id) != "Closed":
            self.fd.ack(incident_id, self.people[0])

    @rule(incident_id=incidents, recovery=st.booleans())
    def resolve(self, incident_id, recovery):
        if self.progress(incident_id) != "Closed":
            if recovery:  # the monitoring tool's: "from event"
                self.fd.resolve(incident_id, 0, origin="event")
            else:
                self.fd.resolve(incident_id, self.people[1], self.text("fixed"))
            self.last[incident_id] = "fd_close" if incident_id not in self.touched else "fd_?"

    @rule(incident_id=incidents)
    def reopen(self, incident_id):
        if self.progress(incident_id) == "Closed":
            self.fd.reopen(incident_id, self.people[0], self.text("reopened"))
            self.last[incident_id] = "fd_reopen"

    # --- ServiceNow: the desk on the tickets ---------------------------------------------

    @rule(incident_id=incidents, state=st.sampled_from(["2", "6", "7"]))
    def set_state(self, incident_id, state):
        ticket = self.ticket(incident_id)
        if ticket is None:
            return
        was_closed = ticket["state"] in CLOSED
        self.sn.clock.advance(1)
        self.sn.update(ticket["sys_id"], state=state, close_notes=self.text("notes"))
        self.touched.add(incident_id)
        unseen = self.seen_closed.get(incident_id, False) == (state in CLOSED)
        if unseen and was_closed != (state in CLOSED):
            # Undoes a change no cycle saw: to fd-sync nothing happened (no expectation).
            self.last[incident_id] = "sn_edit"
        elif state in CLOSED and not was_closed:
            self.last[incident_id] = "sn_close"
        elif state not in CLOSED and was_closed:
            self.last[incident_id] = "sn_reopen"
        else:
            self.edited(incident_id)

    def edited(self, incident_id: str) -> None:
        """The desk changed the ticket: a later close in Flashduty may find it changed since
        fd-sync read it, and then the person wins (the ticket's state is left alone)."""
        self.touched.add(incident_id)
        if self.last.get(incident_id) == "fd_close":
            self.last[incident_id] = "sn_edit"

    @rule(incident_id=incidents)
    def desk_comment(self, incident_id):
        ticket = self.ticket(incident_id)
        if ticket is not None:
            self.sn.clock.advance(1)
            self.sn.comment(ticket["sys_id"], self.text("desk"), by="desk.agent")
            self.edited(incident_id)

    # --- faults and time ------------------------------------------------------------------

    @rule(fault=faults)
    def misbehave(self, fault):
        side, what = fault
        (self.sn if side == "sn" else self.fd).inject(copy_fault(what))

    @rule()
    def run_cycle(self):
        self.cycle()

    @invariant()
    def one_ticket_each_and_no_alert(self):
        per_incident = Counter(
            row.get("correlation_id")
            for row in self.sn.tables["incident"].values()
            if row.get("correlation_id")
        )
        assert all(n == 1 for n in per_incident.values()), per_incident
        assert self.fd.events() == []

    def check_converged(self) -> None:
        self.sn.clear_faults()
        self.fd.clear_faults()
        for _ in range(4):  # create; deliver; read the feeds; write the notes
            self.cycle()
            # A closed or quiet incident is read within the slowest cadence (core.cadence).
            self.wall.now += SLOWEST_SECONDS
        assert self.ledger is not None
        for incident_id in self.fd.fd_incidents:
            ticket = self.ticket(incident_id)
            if self.progress(incident_id) != "Closed" and incident_id not in self.last:
                assert ticket is not None, f"{incident_id} has no ticket"
            if ticket is None:
                continue
            notes = "\n".join(j["value"] for j in self.sn.journal(ticket["sys_id"]))
            # fd-sync's own OpenAPI writes never came back as notes.
            assert "ServiceNow INC" not in notes and "closed in ServiceNow" not in notes
            last = self.last.get(incident_id)
            if last == "sn_close":
                assert self.progress(incident_id) == "Closed", (incident_id, notes)
            elif last == "sn_reopen":
                assert self.progress(incident_id) != "Closed", incident_id
            elif last == "fd_close":
                assert ticket["state"] in CLOSED, (incident_id, ticket["state"], notes)
        for (incident_id, text), times in self.said.items():
            ticket = self.ticket(incident_id)
            assert ticket is not None
            notes = "\n".join(j["value"] for j in self.sn.journal(ticket["sys_id"]))
            assert notes.count(text) == times, (text, notes)
        assert self.ledger.writeback.pending() == []
        assert self.ledger.flashduty_writes.pending() == []
        assert self.ledger.ticket_creates.pending() == []


TestTicketConvergence, TestTicketConvergenceOnPostgres = machine_test_cases(
    TicketConvergence, max_examples=25, steps=20
)
