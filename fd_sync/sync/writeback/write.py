"""The write-back's second phase, after delivery: one PATCH per incident (see :mod:`.plan`).

The version the PATCH produced is recorded as handled when it is exactly one more than the
version the ledger had; otherwise a person changed it too and the next poll decides it as
usual. A refused state change is kept apart (dead, with ServiceNow's message) and the
notes are written on their own.

Crash contract: the attempt is committed before the PATCH and the result after it
(:meth:`Ledger.attempt_writes`, :meth:`Ledger.record_write`). A PATCH with a work note is
never sent again blindly: after a timeout, a dropped connection, a 5xx or a kill between
the two, the next try first reads the journal for the note's marker (``[fd-sync w12]``)
and writes only what did not land. Only a journal the integration user may not read
leaves a repeat possible (logged, with the fix); nothing is ever lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime

from fd_sync import logs
from fd_sync.core.writeback import ServiceNowNow, StateRules
from fd_sync.errors import AccessDenied, TemporaryFailure
from fd_sync.servicenow.people import People
from fd_sync.servicenow.writer import IncidentWriter, WriteRefused
from fd_sync.store.ledger import Ledger
from fd_sync.store.links import Link
from fd_sync.store.queue import Failure
from fd_sync.store.writeback import NewWrite, Write
from fd_sync.store.writeback_steps import RefusedPart
from fd_sync.sync.writeback.plan import FieldRules, PlannedWrite, plan_writes, wants_current
from fd_sync.sync.writeback.report import WritebackReport


class ServiceNowWrites:
    def __init__(
        self,
        ledger: Ledger,
        writer: IncidentWriter,
        rules: StateRules,
        *,
        people: People | None = None,
        severity_map: Mapping[str, tuple[str, str]] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.writer = writer
        self.rules = rules
        self.people = people  # [writeback] assign: Flashduty's people to sys_user by email
        self.severity_map = severity_map or {}  # [writeback] severity
        self.fields: FieldRules | None = None
        self.wall = wall
        self.log = logs.get("writeback")

    def run(self, report: WritebackReport, *, run_id: str) -> None:
        before = self.writer.requests_made
        try:
            groups = self.ledger.writeback.pending_by_incident()
            for sys_id in self.ledger.writeback.holding_incidents() & groups.keys():
                report.held += len(groups.pop(sys_id))  # behind a refused note, in order
            if groups:
                self.fields = self._field_rules(groups)
                current = self.writer.current(wants_current(groups, self.rules))
                links = self.ledger.links.get(groups)
                for planned in plan_writes(groups, current, links, self.rules, self.fields):
                    rest = self._unless_landed(planned, current, links)
                    if rest is not None:
                        self._send(rest, report, run_id)
        except (AccessDenied, TemporaryFailure) as exc:
            report.error = report.error or exc
            self.log.error("servicenow_write_failed", error=str(exc), exit_code=exc.exit_code)
        finally:
            report.servicenow_requests += self.writer.requests_made - before
            if self.people is not None:
                report.servicenow_requests += self.people.requests_made
                self.people.requests_made = 0
        oldest = self.ledger.writeback.oldest_pending_at()
        if oldest:
            age = self.wall() - datetime.fromisoformat(oldest).timestamp()
            report.lag_seconds = max(0.0, age)

    def _field_rules(self, groups: Mapping[str, list[Write]]) -> FieldRules:
        """Each assignee's ServiceNow user (one request per 100 emails, cached); the people
        who have none (or two) are counted for `status`."""
        emails = {
            w.intents.assignee.email
            for writes in groups.values()
            for w in writes
            if w.intents.assignee is not None and w.intents.assignee.email
        }
        matches = self.people.users_by_email(emails) if self.people and emails else {}
        unmatched = {email: m.problem for email, m in matches.items() if not m.sys_id}
        if unmatched:
            self.ledger.record_unmatched_people(unmatched)
            for email, why in unmatched.items():
                self.log.warning("person_unmatched", email=email, why=why)
        return FieldRules(matches, self.severity_map)

    def _unless_landed(
        self,
        planned: PlannedWrite,
        current: Mapping[str, ServiceNowNow],
        links: Mapping[str, Link],
    ) -> PlannedWrite | None:
        """A write tried before whose answer never came (a timeout, a dropped connection,
        a 5xx, a kill) may be in the journal already: its marker says so. What landed is
        recorded as written; the rest is planned again. None: nothing left to send."""
        if not planned.note or not any(w.attempts for w in planned.writes):
            return planned
        landed = self.writer.notes_landed(planned.sys_id)
        if landed is None:
            self.log.warning(
                "writeback_unverified",
                number=planned.number,
                fix="grant the integration user read access to sys_journal_field, so that a "
                "work note whose answer never came is checked before it is sent again",
            )
            return planned
        ids = {w.id for w in planned.writes}
        if not landed & ids:
            return planned
        last = max(landed & ids)
        done = [w for w in planned.writes if w.id <= last]
        now = self.writer.current([planned.sys_id]).get(planned.sys_id)
        answer = (
            {"sys_mod_count": now.mod_count, "state": now.state, "sys_updated_on": now.updated_on}
            if now is not None
            else {}
        )
        self.ledger.record_write(done, answer=answer)
        self.log.info("writeback_found_landed", number=planned.number, write_id=last)
        rest = [w for w in planned.writes if w.id > last]
        if not rest:
            return None
        (again,) = plan_writes({planned.sys_id: rest}, current, links, self.rules, self.fields)
        return again

    def _send(self, planned: PlannedWrite, report: WritebackReport, run_id: str) -> None:
        writes = planned.writes
        if not planned.body:
            self.ledger.record_write(writes, answer=None)  # nothing left to say
            return
        self.ledger.attempt_writes(writes)
        try:
            answer = self.writer.write(planned.sys_id, planned.number, planned.body)
        except WriteRefused as exc:
            if not (planned.fields and planned.note):
                self._refused(planned, exc, planned.kinds, report)
                return
            # The state change was refused: the notes still go, the state waits for retry.
            try:
                answer = self.writer.write(
                    planned.sys_id, planned.number, {"work_notes": planned.note}
                )
            except WriteRefused as again:
                self._refused(planned, again, planned.kinds, report)
                return
            state = NewWrite(
                planned.sys_id,
                planned.number,
                writes[-1].incident_id,
                "",
                planned.intents,
                ("state",),
            )
            refused = RefusedPart(state, exc.status, exc.detail)
            self.ledger.record_write(writes, answer=answer, refused=refused, run_id=run_id)
            self._report_refusal(exc, ("state",), report)
            report.written += 1
            report.tally(planned.kinds, "written")
            return
        except TemporaryFailure as exc:
            failure = Failure(None, str(exc))
            ids = [w.id for w in writes]
            self.ledger.record_failure(self.ledger.writeback, ids, dead=False, failure=failure)
            raise
        self.ledger.record_write(writes, answer=answer)
        report.written += 1
        report.tally(planned.kinds + (("state",) if planned.fields else ()), "written")
        self.log.info(
            "writeback_written",
            number=planned.number,
            kinds=list(planned.kinds),
            state=planned.fields.get("state"),
            mod_count=answer.get("sys_mod_count"),
            updated_by=answer.get("sys_updated_by"),
        )

    def _refused(
        self,
        planned: PlannedWrite,
        exc: WriteRefused,
        kinds: tuple[str, ...],
        report: WritebackReport,
    ) -> None:
        ids = [w.id for w in planned.writes]
        failure = Failure(exc.status, exc.detail)
        self.ledger.record_failure(self.ledger.writeback, ids, dead=True, failure=failure)
        self._report_refusal(exc, kinds, report)

    def _report_refusal(
        self, exc: WriteRefused, kinds: tuple[str, ...], report: WritebackReport
    ) -> None:
        report.refused.append(exc)
        report.tally(kinds, "refused")
        self.log.error("writeback_refused", number=exc.number, status=exc.status, error=exc.detail)
