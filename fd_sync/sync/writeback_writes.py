"""The write-back's second phase: one PATCH per incident with everything queued for it.

A state change is decided at this point, against the incident as ServiceNow has it now
(one batched GET), and the version the PATCH produced is recorded as handled when it is
exactly one more than the version the ledger had; otherwise a person changed it too and
the next poll decides it as usual. A refused state change is kept apart (dead, with
ServiceNow's message) and the notes are written on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from fd_sync import logs
from fd_sync.core.writeback import Intents, StateRules, state_fields
from fd_sync.errors import AccessDenied, TemporaryFailure
from fd_sync.servicenow.writer import IncidentWriter, WriteRefused
from fd_sync.store.ledger import Ledger
from fd_sync.store.writeback import Write
from fd_sync.sync.writeback_report import WritebackReport


class ServiceNowWrites:
    def __init__(
        self,
        ledger: Ledger,
        writer: IncidentWriter,
        rules: StateRules,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.writer = writer
        self.rules = rules
        self.wall = wall
        self.log = logs.get("writeback")

    def write(self, report: WritebackReport, *, run_id: str) -> None:
        before = self.writer.requests_made
        try:
            self._write(report, run_id)
        except (AccessDenied, TemporaryFailure) as exc:
            report.error = report.error or exc
            self.log.error("servicenow_write_failed", error=str(exc), exit_code=exc.exit_code)
        finally:
            report.servicenow_requests += self.writer.requests_made - before
        self.ledger.writeback.purge_finished()
        left = self.ledger.writeback.pending()
        if left:
            oldest = datetime.fromisoformat(min(w.created_at for w in left))
            report.lag_seconds = max(0.0, self.wall() - oldest.timestamp())

    def _write(self, report: WritebackReport, run_id: str) -> None:
        groups: dict[str, list[Write]] = {}
        for write in self.ledger.writeback.pending():
            groups.setdefault(write.sys_id, []).append(write)
        if not groups:
            return
        wants_state = bool(self.rules.acknowledge_state or self.rules.resolve_state)
        stateful = [
            s
            for s, ws in groups.items()
            if wants_state and any(w.intents.ack_at_ms is not None or w.intents.close for w in ws)
        ]
        current = self.writer.current(stateful) if stateful else {}
        links = self.ledger.links.get(groups)
        for sys_id, writes in groups.items():
            intents = Intents()
            for w in writes:
                intents = intents.merged(w.intents)
            note = "\n".join(w.note for w in writes if w.note)
            now = current.get(sys_id)
            link = links.get(sys_id)
            fields: dict[str, str] = {}
            if now is not None:
                own = link.own_mod_count if link else None
                fields, _ = state_fields(intents, now, self.rules, own_mod_count=own)
            self._send(sys_id, writes, note, fields, intents, report, run_id)

    def _send(
        self,
        sys_id: str,
        writes: list[Write],
        note: str,
        fields: dict[str, str],
        intents: Intents,
        report: WritebackReport,
        run_id: str,
    ) -> None:
        ids = [w.id for w in writes]
        number = writes[-1].number
        kinds = tuple(k for w in writes for k in w.kinds)
        if not note and not fields:
            with self.ledger.transaction("record a write-back"):
                self.ledger.writeback.mark_delivered(ids, http_status=0)  # nothing left to say
            return
        body = {**({"work_notes": note} if note else {}), **fields}
        self.ledger.writeback.mark_attempt(ids)
        try:
            result = self.writer.write(sys_id, number, body)
        except WriteRefused as exc:
            if not (fields and note):
                self.ledger.writeback.mark_failed(
                    ids, dead=True, http_status=exc.status, message=exc.detail
                )
                self._refused(exc, kinds, report)
                return
            # The state change was refused: the notes still go, the state waits for retry.
            try:
                result = self.writer.write(sys_id, number, {"work_notes": note})
            except WriteRefused as again:
                self.ledger.writeback.mark_failed(
                    ids, dead=True, http_status=again.status, message=again.detail
                )
                self._refused(again, kinds, report)
                return
            with self.ledger.transaction("record a write-back"):
                self.ledger.writeback.mark_delivered(ids, http_status=200)
                self.ledger.writeback.refused_part(
                    writes[-1], intents, http_status=exc.status, message=exc.detail, run_id=run_id
                )
                self._own_version(sys_id, result)
            self._refused(exc, ("state",), report)
            report.written += 1
            report.tally(kinds, "written")
            return
        except TemporaryFailure as exc:
            self.ledger.writeback.mark_failed(ids, dead=False, http_status=None, message=str(exc))
            raise
        with self.ledger.transaction("record a write-back"):
            self.ledger.writeback.mark_delivered(ids, http_status=200)
            self._own_version(sys_id, result)
        report.written += 1
        report.tally(kinds + (("state",) if fields else ()), "written")
        self.log.info(
            "writeback_written",
            number=number,
            kinds=list(kinds),
            state=fields.get("state"),
            mod_count=result.get("sys_mod_count"),
            updated_by=result.get("sys_updated_by"),
        )

    def _refused(self, exc: WriteRefused, kinds: tuple[str, ...], report: WritebackReport) -> None:
        report.refused.append(exc)
        report.tally(kinds, "refused")
        self.log.error("writeback_refused", number=exc.number, status=exc.status, error=exc.detail)

    def _own_version(self, sys_id: str, result: dict[str, object]) -> None:
        """The version this PATCH produced is handled, if it is the only change since the
        version the ledger has; otherwise a person changed it too and the poll decides."""
        try:
            mod_count = int(str(result.get("sys_mod_count")))
        except ValueError:
            return
        self.ledger.links.own_write(sys_id, mod_count)
        snapshot = self.ledger.incidents.snapshots([sys_id]).get(sys_id)
        entry = self.ledger.incidents.entries([sys_id]).get(sys_id)
        if snapshot is None or entry is None or mod_count != entry.mod_count + 1:
            return
        ours = replace(
            snapshot,
            state=str(result.get("state") or snapshot.state),
            updated_on=str(result.get("sys_updated_on") or snapshot.updated_on),
            mod_count=mod_count,
        )
        self.ledger.incidents.own_version(ours, held=entry.held and ours.is_open)
