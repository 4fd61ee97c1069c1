"""Flashduty -> ServiceNow: what responders did, written to the incident, outbound only.

Two phases in every cycle, around ServiceNow's fetch and Flashduty's delivery:

1. :meth:`Writeback.observe`, before the fetch: find the Flashduty incident of each alert
   fd-sync opened (``/alert/list`` by alert_key), read which tracked incidents changed
   (``/incident/list-by-ids``), read the timelines of those (``/incident/feed``), and commit,
   per incident, the write owed with the advanced timeline cursor and what Flashduty's
   close or reopen means for the alert. Doing this before the fetch lets the fetch see a
   responder's close, so an edit in ServiceNow does not open (and page) a new alert.
2. :meth:`Writeback.write`, after delivery: one PATCH per incident with everything
   queued for it; a state change is decided then, against the incident as ServiceNow has
   it, and the version the PATCH produced is recorded as handled when it is exactly one
   more than the version the ledger had (otherwise a person changed it too, and the next
   poll decides it as usual).

Crash contract: as the outbox (:mod:`fd_sync.store.writeback`): a crash between a PATCH
and its commit repeats that one work note; nothing read is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fd_sync import logs
from fd_sync.config.model import WritebackConfig
from fd_sync.core.decide import Decision, Event, Kind
from fd_sync.core.feed import (
    SETTLE_SECONDS,
    WATCH_AFTER_CLOSE,
    FeedEntry,
    FlashdutyIncident,
    needs_read,
)
from fd_sync.core.incident import CLOSED_STATES
from fd_sync.core.writeback import (
    ServiceNowNow,
    StateRules,
    Turn,
    compose,
    describe_write,
    people_of,
    state_fields,
)
from fd_sync.errors import AccessDenied, TemporaryFailure
from fd_sync.flashduty.incidents import IncidentReader
from fd_sync.servicenow.writer import IncidentWriter
from fd_sync.store.ledger import Ledger
from fd_sync.store.links import Link
from fd_sync.store.state import FLASHDUTY_READ
from fd_sync.store.times import iso
from fd_sync.sync.writeback_report import WritebackReport
from fd_sync.sync.writeback_writes import ServiceNowWrites

LINK_GIVE_UP = timedelta(days=1)  # an alert Flashduty made no incident of (excluded, dropped)


class Writeback:
    def __init__(
        self,
        config: WritebackConfig,
        ledger: Ledger,
        reader: IncidentReader,
        writer: IncidentWriter,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.reader = reader
        self.writer = writer
        self.wall = wall
        self.rules = StateRules(
            config.acknowledge_state, config.resolve_state, config.close_code, config.close_notes
        )
        self.log = logs.get("writeback")
        self.writes = ServiceNowWrites(ledger, writer, self.rules, wall=wall)

    def unsure(self, report: WritebackReport) -> frozenset[str]:
        """Incidents whose Flashduty side is unknown because reading it failed for now
        (a refused key is not temporary: then nothing waits, or ServiceNow's closes would
        never resolve alerts)."""
        if not isinstance(report.error, TemporaryFailure):
            return frozenset()
        return frozenset(link.sys_id for link in self.ledger.links.watched())

    # --- phase 1: read Flashduty ------------------------------------------------------------

    def observe(self, report: WritebackReport, *, run_id: str, dry_run: bool = False) -> None:
        before = self.reader.requests_made
        try:
            found = self._link(report, dry_run=dry_run)
            self._read(report, run_id=run_id, dry_run=dry_run, also=found)
        except (AccessDenied, TemporaryFailure) as exc:
            report.error = exc  # the rest of the cycle goes on
            self.log.error("flashduty_read_failed", error=str(exc), exit_code=exc.exit_code)
        finally:
            report.openapi_requests += self.reader.requests_made - before

    def _link(self, report: WritebackReport, *, dry_run: bool) -> list[Link]:
        """Find the incident of each alert sent since the last cycle; a dry run returns them
        (the ledger is not written, and they are read all the same)."""
        links = self.ledger.links.unlinked()
        if not links:
            return []
        now = int(self.wall())
        oldest = min(int(datetime.fromisoformat(link.sent_at).timestamp()) for link in links)
        by_key: dict[str, Link] = {}
        for link in links:
            # The standard format's alert_key is the sys_id; for the ServiceNow format
            # Flashduty's choice is undocumented: the push answer's, the sys_id, the number.
            for key in (link.alert_key, link.sys_id, link.number):
                if key:
                    by_key.setdefault(key, link)
        found = self.reader.alerts(list(by_key), start=oldest - 3600, end=now + 60)
        linked: dict[str, str] = {}
        for key, alert in found.items():
            owner = by_key.get(key)
            if owner is not None and owner.sys_id not in linked:
                linked[owner.sys_id] = alert.incident_id
        if dry_run:
            report.linked += len(linked)
            return [replace(k, incident_id=linked[k.sys_id]) for k in links if k.sys_id in linked]
        give_up = iso(datetime.fromtimestamp(now, UTC) - LINK_GIVE_UP)
        with self.ledger.transaction("record Flashduty incidents"):
            for sys_id, incident_id in linked.items():
                self.ledger.links.link(sys_id, incident_id)
            for link in links:
                if link.sys_id not in linked and link.sent_at < give_up:
                    self.ledger.links.read(
                        link.sys_id,
                        progress="",
                        updated_at=0,
                        read_at=now,
                        cursor=link.cursor,
                        watching=False,
                    )
                    self.log.warning("flashduty_incident_not_found", number=link.number)
        report.linked += len(linked)
        return []

    def _read(
        self, report: WritebackReport, *, run_id: str, dry_run: bool, also: list[Link]
    ) -> None:
        watched = self.ledger.links.watched() + also
        if not watched:
            return
        infos = self.reader.incidents(link.incident_id or "" for link in watched)
        stamp = datetime.fromtimestamp(self.wall(), UTC)
        for link in watched:
            info = infos.get(link.incident_id or "")
            if info is None:
                # Deleted in Flashduty (or merged away): nothing more to read.
                if not dry_run:
                    with self.ledger.transaction("record a Flashduty incident"):
                        self.ledger.links.read(
                            link.sys_id,
                            progress="",
                            updated_at=0,
                            read_at=int(self.wall()),
                            cursor=link.cursor,
                            watching=False,
                        )
                continue
            if not needs_read(info, link.fd_updated_at, link.read_at):
                continue  # unchanged since a read that came late enough to be sure
            read_at = int(self.wall())
            entries = self.reader.feed(info.incident_id, link.cursor)
            people = self.reader.names(people_of(entries))
            turn = compose(entries, info, people, work_notes=self.config.work_notes)
            report.read += 1
            if dry_run:
                self._preview(link, turn, report)
                continue
            self._commit(link, info, read_at, entries, turn, run_id, report)
        if not dry_run:
            with self.ledger.transaction("record the write-back's read"):
                self.ledger.state.set(FLASHDUTY_READ, iso(stamp))

    def _commit(
        self,
        link: Link,
        info: FlashdutyIncident,
        read_at: int,
        entries: list[FeedEntry],
        turn: Turn,
        run_id: str,
        report: WritebackReport,
    ) -> None:
        versions = self.ledger.incidents.versions([link.sys_id])
        _, seen_mod_count, state, alert_open = versions.get(link.sys_id, ("", 0, "", False))
        sn_open = state not in CLOSED_STATES
        held = False
        with self.ledger.transaction("queue a write-back"):
            if turn.closed and (alert_open or sn_open):
                # A responder (or Flashduty itself) closed it: no alert is open any more, and
                # while ServiceNow keeps it open an edit must not page again.
                held = sn_open
                self.ledger.incidents.closed_in_flashduty(link.sys_id, held=held)
                self.ledger.outbox.cancel_updates(link.sys_id)
                alert_open = False
                self.log.info("closed_in_flashduty", number=link.number, held=held)
            elif turn.reopened:
                self.ledger.incidents.reopened_in_flashduty(link.sys_id, link.destination)
                alert_open = True
                self.log.info("reopened_in_flashduty", number=link.number)
                if not sn_open:
                    # ServiceNow, the record of what is open, has it closed: close it again.
                    reopened_at = max(e.created_at for e in entries if e.type == "i_reopen")
                    self._resolve_again(link, run_id, reopened_at)
                    alert_open = False
            settled = read_at >= info.updated_at + SETTLE_SECONDS
            quiet = read_at >= info.close_time + WATCH_AFTER_CLOSE
            done = info.closed and not alert_open and not held and settled and quiet
            self.ledger.links.read(
                link.sys_id,
                progress=info.progress,
                updated_at=info.updated_at,
                read_at=read_at,
                cursor=link.cursor.past(entries),
                watching=not done,
            )
            if turn.worth_writing:
                self.ledger.writeback.queue(
                    link.sys_id,
                    link.number,
                    link.incident_id or "",
                    note=turn.note,
                    intents=replace(turn.intents, seen_mod_count=seen_mod_count),
                    kinds=turn.kinds,
                    run_id=run_id,
                )
                report.queued += 1

    def _resolve_again(self, link: Link, run_id: str, reopened_at: int) -> None:
        snapshot = self.ledger.incidents.snapshots([link.sys_id]).get(link.sys_id)
        entry = self.ledger.incidents.entries([link.sys_id]).get(link.sys_id)
        if snapshot is None or entry is None:
            return
        where = link.destination or entry.destination or "default"
        closed = replace(entry, alert_open=False, destination=None, held=False, pinned=False)
        why = "reopened in Flashduty, closed in ServiceNow"
        # Flashduty discards an event identical to an earlier one: this one says why and when.
        when = datetime.fromtimestamp(reopened_at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        again = replace(
            snapshot,
            comment=f"[fd-sync] reopened in Flashduty at {when} UTC, but {snapshot.number} "
            "is closed in ServiceNow: closed again",
        )
        resolve = Decision(again, closed, (Event(Kind.RESOLVE, where),), False, why)
        self.ledger.record([resolve], run_id=run_id)

    def _preview(self, link: Link, turn: Turn, report: WritebackReport) -> None:
        if not turn.worth_writing:
            return
        snapshot = self.ledger.incidents.snapshots([link.sys_id]).get(link.sys_id)
        fields: dict[str, str] = {}
        if snapshot is not None:
            now = ServiceNowNow(
                link.number, snapshot.state, snapshot.updated_on, snapshot.mod_count
            )
            fields, _ = state_fields(
                turn.intents, now, self.rules, own_mod_count=link.own_mod_count
            )
        report.planned.append(describe_write(link.number, turn.kinds, turn.lines, fields))

    # --- phase 2: write ServiceNow ----------------------------------------------------------

    def write(self, report: WritebackReport, *, run_id: str) -> None:
        self.writes.write(report, run_id=run_id)
