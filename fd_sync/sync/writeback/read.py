"""The write-back's first phase: read what responders did in Flashduty, before the fetch.

Find the Flashduty incident of each alert fd-sync opened (``/alert/list`` by alert_key),
read which tracked incidents changed (``/incident/list-by-ids``), read the timelines of
those (``/incident/feed``), and let :func:`fd_sync.core.turns.settle` decide what each
means; one Ledger step per incident commits that with the advanced timeline cursor.
Doing this before the fetch lets the fetch see a responder's close, so an edit in
ServiceNow does not open (and page) a new alert.

Crash contract: the cursor moves in the step that queues the write, so a crash re-reads
the entries and never skips them (:meth:`Ledger.record_flashduty_read`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fd_sync import logs
from fd_sync.core.cadence import choose
from fd_sync.core.feed import needs_read
from fd_sync.core.tickets import own_echoes
from fd_sync.core.turns import ServiceNowSide, settle
from fd_sync.core.writeback import (
    ServiceNowNow,
    StateRules,
    Turn,
    compose,
    describe_write,
    people_of,
    state_fields,
)
from fd_sync.flashduty.incidents import IncidentReader
from fd_sync.store.ledger import Ledger
from fd_sync.store.links import Link
from fd_sync.store.times import iso
from fd_sync.sync.pacing import Pacing, watch_of
from fd_sync.sync.writeback.report import WritebackReport

LINK_GIVE_UP = timedelta(days=1)  # an alert Flashduty made no incident of (excluded, dropped)
# An incident the ledger has no row of counts as open in ServiceNow, as it did before.
UNKNOWN = ServiceNowSide(alert_open=False, open_in_servicenow=True, mod_count=0)


class FlashdutyRead:
    def __init__(
        self,
        ledger: Ledger,
        reader: IncidentReader,
        rules: StateRules,
        *,
        work_notes: frozenset[str],
        ticket_channels: frozenset[int] = frozenset(),
        assign: str = "",
        severity: bool = False,
        wall: Callable[[], float] = time.time,
        pacing: Pacing | None = None,
    ) -> None:
        self.ledger = ledger
        self.reader = reader
        self.rules = rules
        self.work_notes = work_notes
        self.ticket_channels = ticket_channels  # [tickets] channel_ids: a ticket leaving them stops
        self.assign = assign  # [writeback] assign: "acknowledger", "assignee" or ""
        self.severity = severity  # [writeback] severity
        self.wall = wall
        self.pacing = pacing  # the read cadence and the OpenAPI budget; None: read all
        self.read_now: set[str] = set()  # sys_ids read this cycle (the reader is per cycle)
        self.watching: set[str] = set()  # sys_ids watched when the cycle began to read
        self.log = logs.get("writeback")

    def run(self, report: WritebackReport, *, run_id: str, dry_run: bool) -> None:
        found = self._link(report, dry_run=dry_run)
        self._read(report, run_id=run_id, dry_run=dry_run, also=found)

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
        integrations: set[int] = set()
        for key, alert in found.items():
            owner = by_key.get(key)
            if owner is not None and owner.sys_id not in linked:
                linked[owner.sys_id] = alert.incident_id
                integrations.add(alert.integration_id)
        report.linked += len(linked)
        if dry_run:
            return [replace(k, incident_id=linked[k.sys_id]) for k in links if k.sys_id in linked]
        give_up = iso(datetime.fromtimestamp(now, UTC) - LINK_GIVE_UP)
        given_up = [k for k in links if k.sys_id not in linked and k.sent_at < give_up]
        self.ledger.record_links(linked, given_up, read_at=now, integration_ids=integrations)
        for link in given_up:
            self.log.warning("flashduty_incident_not_found", number=link.number)
        return []

    def _due(self, watched: list[Link]) -> list[Link]:
        """The incidents whose cadence says read them now, within the budget (core.cadence)."""
        if self.pacing is None or not watched:
            return watched
        pacing = self.pacing
        watches = [watch_of(a) for a in self.ledger.links.activity()]
        selection = choose(
            watches,
            int(self.wall()),
            pacing.interval,
            pacing.openapi.read_capacity(pacing.interval),
        )
        pacing.selection = selection
        due = set(selection.due)
        return [link for link in watched if link.sys_id in due]

    def catch_up(self, report: WritebackReport, *, run_id: str, dry_run: bool) -> None:
        """After the fetch: read the incidents with events pending that the cadence left
        unread, so an update never reaches an alert a responder closed unseen (writes owed
        the other way need no read first: they wait for their incident's turn)."""
        if self.pacing is None:
            return
        owed = self.ledger.outbox.pending_incidents()  # events: an update could reopen
        late = (owed & self.watching) - self.read_now
        if late:
            links = self.ledger.links.get(sorted(late))
            self._read_links(
                [links[k] for k in sorted(links) if links[k].incident_id],
                report,
                run_id=run_id,
                dry_run=dry_run,
            )

    def unread(self) -> frozenset[str]:
        """Watched incidents not read this cycle: their updates wait (see Deliverer)."""
        if self.pacing is None:
            return frozenset()
        return frozenset(self.watching - self.read_now)

    def _read(
        self, report: WritebackReport, *, run_id: str, dry_run: bool, also: list[Link]
    ) -> None:
        known = {link.sys_id for link in also}
        everyone = self.ledger.links.watched()
        self.watching = {link.sys_id for link in everyone} | known
        watched = [link for link in self._due(everyone) if link.sys_id not in known]
        self._read_links(watched + also, report, run_id=run_id, dry_run=dry_run)

    def _read_links(
        self, watched: list[Link], report: WritebackReport, *, run_id: str, dry_run: bool
    ) -> None:
        if not watched:
            return
        self.read_now.update(link.sys_id for link in watched)
        infos = self.reader.incidents(link.incident_id or "" for link in watched)
        if not dry_run and self.pacing is not None:
            self.ledger.record_flashduty_checked([k.sys_id for k in watched], int(self.wall()))
        stamp = datetime.fromtimestamp(self.wall(), UTC)
        versions = self.ledger.incidents.versions(link.sys_id for link in watched)
        tickets = [link.incident_id or "" for link in watched if link.is_ticket]
        ticket_sides = self.ledger.tickets.by_incident(tickets)
        own_writes = self.ledger.flashduty_writes.unmatched(
            link.incident_id or "" for link in watched
        )
        for link in watched:
            info = infos.get(link.incident_id or "")
            if info is None:
                # Deleted in Flashduty (or merged away): nothing more to read.
                if not dry_run:
                    self._gone(link, run_id)
                continue
            moved = info.channel_id and info.channel_id not in self.ticket_channels
            if link.is_ticket and moved and not dry_run:
                why = (
                    f"The Flashduty incident {info.incident_id} moved to channel "
                    f"{info.channel_id}, which [tickets] does not watch"
                )
                self._gone(link, run_id, why)
                continue
            if not needs_read(info, link.fd_updated_at, link.read_at):
                continue  # unchanged since a read that came late enough to be sure
            read_at = int(self.wall())
            entries = self.reader.feed(info.incident_id, link.cursor)
            echoes: list[int] = []
            news = entries
            if own_writes.get(info.incident_id):  # fd-sync's own OpenAPI writes are not news
                shown = [(e.type, str(e.detail.get("comment") or "")) for e in entries]
                ours, echoes = own_echoes(shown, own_writes.get(info.incident_id, ()))
                news = [e for i, e in enumerate(entries) if i not in ours]
            people = self.reader.names(people_of(news))
            turn = compose(
                news,
                info,
                people,
                work_notes=self.work_notes,
                flashduty_born=link.is_ticket,
                assign=self.assign,
                severity=self.severity,
            )
            report.read += 1
            if dry_run:
                self._preview(link, turn, report)
                continue
            version = versions.get(link.sys_id)
            side = UNKNOWN
            if version is not None:
                side = ServiceNowSide(
                    version.alert_open, version.open_in_servicenow, version.mod_count
                )
            ticket = ticket_sides.get(info.incident_id)
            if link.is_ticket and ticket is not None:
                # No alert of fd-sync's to keep: only the version seen counts.
                side = ServiceNowSide(False, False, ticket.mod_count)
            outcome = settle(turn, info, entries, link.cursor, side, read_at=read_at)
            self.ledger.record_flashduty_read(link, outcome, run_id=run_id, echoes=echoes)
            if outcome.closed_in_flashduty:
                self.log.info("closed_in_flashduty", number=link.number, held=outcome.held)
            elif outcome.reopened_in_flashduty:
                self.log.info("reopened_in_flashduty", number=link.number)
            if outcome.intents is not None:
                report.queued += 1
        if not dry_run:
            self.ledger.record_flashduty_read_time(stamp)

    def _gone(self, link: Link, run_id: str, why: str = "") -> None:
        if not link.is_ticket:
            self.ledger.stop_watching(link, read_at=int(self.wall()))
            return
        why = why or f"The Flashduty incident {link.incident_id} was merged into another or deleted"
        self.ledger.stop_ticket(link, why, read_at=int(self.wall()), run_id=run_id)
        self.log.warning("ticket_unlinked", number=link.number, incident_id=link.incident_id)

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
        report.planned.append(
            describe_write(link.number, turn.kinds, turn.actors, fields, turn.intents)
        )
