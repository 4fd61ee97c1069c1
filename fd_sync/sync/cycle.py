"""One cycle: fetch changed incidents, reconcile them page by page, deliver the outbox.

This is what ``fd-sync once`` runs and what ``fd-sync run`` repeats. The order
of writes is the safety argument:

1. a page is fetched; nothing is written yet;
2. the page's changed incidents are routed (:mod:`fd_sync.core.routing`) and
   decided; the extras their routes add (members to notify, comments) are
   looked up in batches and rendered into the events (:mod:`fd_sync.sync.enrich`);
   the decisions (ledger rows, outbox rows) and the watermark advance are
   committed together, so the watermark never passes a change whose event is
   not safely queued (the singer "bookmark after hand-off" rule);
3. the outbox is drained, even when the fetch failed part-way: what was
   queued is owed to Flashduty either way.

A crash anywhere leaves the ledger at the end of the last committed page;
the next cycle re-reads from there (minus the look-back) and decides the same
events at most once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fd_sync import logs
from fd_sync.core.watermark import advance, format_sn_time, parse_sn_time, scan_start
from fd_sync.errors import FdSyncError, Interrupted, StorageError, UsageRefused
from fd_sync.servicenow.client import ServiceNowClient
from fd_sync.store.ledger import Ledger
from fd_sync.store.state import (
    BASELINE_UNTIL,
    SCAN_FROM,
    SCAN_READ_TO_END,
    SERVICENOW_CLOCK,
    WATERMARK,
)
from fd_sync.sync.choices import refresh_choice_labels
from fd_sync.sync.commands import Commands
from fd_sync.sync.deletions import DeletionCheck
from fd_sync.sync.delivery import Deliverer
from fd_sync.sync.pacing import Pacing
from fd_sync.sync.plan import PagePlan, Planner
from fd_sync.sync.report import CycleReport, planned_events
from fd_sync.sync.tickets import FlashdutyWrites, Tickets
from fd_sync.sync.writeback import ServiceNowWrites, Writeback


def _new_run_id() -> str:
    return uuid.uuid4().hex[:12]


PlannerFactory = Callable[[str | None], Planner]
READ_TO_END = timedelta(
    minutes=10
)  # of ServiceNow's time: see Cycle._read_to_end_lately  # baseline_until -> one cycle's planner


@dataclass(frozen=True)
class CycleSettings:
    """What a cycle needs of the configuration beyond its collaborators."""

    lookback_seconds: int  # each scan re-reads this far behind the watermark
    history: timedelta = timedelta(days=30)  # what `explain` can tell: [sync] history_days


class Cycle:
    """Runs cycles against one ledger. Its collaborators are built by :mod:`fd_sync.wiring`
    and passed in, so tests can replace them."""

    def __init__(
        self,
        ledger: Ledger,
        servicenow: ServiceNowClient,
        deliverer: Deliverer,
        *,
        settings: CycleSettings,
        planners: PlannerFactory,
        deletions: DeletionCheck | None = None,
        writeback: Writeback | None = None,
        commands: Commands | None = None,
        answers: ServiceNowWrites | None = None,
        tickets: Tickets | None = None,
        flashduty_writes: FlashdutyWrites | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        pacing: Pacing | None = None,
    ) -> None:
        self.settings = settings
        self.pacing = pacing  # both APIs' budgets and the interval they allow
        self.planners = planners  # a fresh planner per cycle: people and groups change
        self.deletions = deletions  # every [sync] deletion_check_seconds; None: never
        self.writeback = writeback  # Flashduty -> ServiceNow, with [writeback] enabled
        self.commands = commands  # /flashduty work notes, with [commands] enabled
        self.answers = answers  # writes the answers when there is no write-back to do it
        self.tickets = tickets  # monitoring incidents in Flashduty open tickets: [tickets]
        self.flashduty_writes = flashduty_writes  # OpenAPI writes: [tickets], [forward]
        self.ledger = ledger
        self.servicenow = servicenow
        self.deliverer = deliverer
        self.should_stop = should_stop
        self.progress = progress  # called after each page and each event: the daemon's pulse
        self.clock = clock
        self.current: CycleReport | None = None  # the cycle in progress, for a progress line
        self.log = logs.get("cycle")

    def run(
        self,
        *,
        since: datetime | None = None,
        dry_run: bool = False,
        command: str = "once",
        fetch: bool = True,
        run_id: str | None = None,
    ) -> CycleReport:
        """One cycle. ``fetch=False`` only drains the outbox (the daemon does that while it
        waits out a ServiceNow credential problem)."""
        report = CycleReport(run_id=run_id or _new_run_id(), dry_run=dry_run)
        self.current = report
        started = self.clock()
        with logs.bound(run_id=report.run_id):
            self.log.info(
                "cycle_started",
                command=command,
                dry_run=dry_run,
                since=format_sn_time(since) if since else None,
            )
            run_row = None if dry_run else self.ledger.start_run(report.run_id, command)
            if self.writeback is not None and fetch:
                # Before the fetch, so that it sees a responder's close (see sync.writeback).
                self.writeback.observe(report.writeback, run_id=report.run_id, dry_run=dry_run)
            if self.tickets is not None and fetch:
                # Before the fetch too, so that the poll knows every ticket it reads.
                self.tickets.open(report.tickets, run_id=report.run_id, dry_run=dry_run)
            try:
                if fetch:
                    self._fetch(report, since=since, dry_run=dry_run)
            except StorageError:
                raise  # the ledger itself failed: delivering from it is not safe
            except FdSyncError as exc:
                report.error = exc
                level = self.log.info if isinstance(exc, Interrupted) else self.log.error
                level("fetch_failed", error=str(exc), exit_code=exc.exit_code)
            if self.writeback is not None and fetch and not self.should_stop():
                # What the fetch queued for incidents the read cadence skipped: read now.
                self.writeback.catch_up(report.writeback, run_id=report.run_id, dry_run=dry_run)
            if not dry_run:
                self._deliver(report, fetched=fetch)
            if self.commands is not None and fetch and not self.should_stop():
                self.commands.run(report.commands, run_id=report.run_id, dry_run=dry_run)
                if report.commands.answered:
                    self._count_outbox(report)  # a page refused now counts in this exit code
            if not dry_run:
                # After the commands' journal read: the desk's notes it found go now.
                if self.flashduty_writes is not None and not self.should_stop():
                    self.flashduty_writes.run(report.tickets)
                    report.tickets_dead = self.ledger.tickets_dead()
                if self.writeback is not None and not self.should_stop():
                    self.writeback.write(report.writeback, run_id=report.run_id)
                elif self.answers is not None and not self.should_stop():
                    self.answers.run(report.writeback, run_id=report.run_id)
                report.writeback_dead = self.ledger.writeback.counts().dead
            if self.should_stop() and report.error is None:
                # An interrupted run is never a success, even when the signal came late.
                report.error = Interrupted("stopped by a signal; the next run goes on")
            report.seconds = self.clock() - started
            report.watermark = self.ledger.state.get(WATERMARK) if not dry_run else None
            report.servicenow_requests = self.servicenow.requests_made
            if self.pacing is not None and not dry_run:
                report.interval = self.pacing.after_cycle(self.servicenow.requests_made)
                self.ledger.record_api_budgets(self.pacing.to_json())
            if run_row is not None:
                self.ledger.finish_run(
                    run_row,
                    outcome=report.outcome,
                    exit_code=report.exit_code,
                    message=report.message(),
                    stats=report.stats(),
                )
            self.log.info(
                "cycle_finished",
                outcome=report.outcome,
                exit_code=report.exit_code,
                seconds=round(report.seconds, 3),
                **report.stats(),
            )
        return report

    def _deliver(self, report: CycleReport, *, fetched: bool) -> None:
        """Deliver what is queued, even when the fetch failed part-way (it is owed to
        Flashduty either way), then keep what `status` reads of this cycle."""
        if fetched and report.error is None and self.ledger.outbox.counts().pending:
            # Hourly, one request, and only when there are events to render with them:
            # an idle cycle costs ServiceNow one request, the poll.
            refresh_choice_labels(self.ledger, self.servicenow)
        unsure = self.writeback.unsure(report.writeback) if self.writeback else frozenset()
        report.delivery = self.deliverer.drain(unsure=unsure)
        self._count_outbox(report)
        self.ledger.purge_finished(self.settings.history)
        seen = self.servicenow.last_server_now
        if seen is not None:
            whole = report.read_to_end and fetched and report.error is None
            self.ledger.record_servicenow_clock(format_sn_time(seen), read_to_end=whole)

    def _count_outbox(self, report: CycleReport) -> None:
        outbox = self.ledger.outbox.counts()
        report.pending = outbox.pending
        report.dead = outbox.dead
        report.held = outbox.blocked

    # --- fetch and reconcile ------------------------------------------------------------

    def _fetch(self, report: CycleReport, *, since: datetime | None, dry_run: bool) -> None:
        ledger = self.ledger
        lookback = self.settings.lookback_seconds
        if since is not None:
            low = format_sn_time(since)
            # The watermark never passes ServiceNow's clock: a --since in its future would
            # blind every later cycle, so it is refused (one request asks the clock).
            _, server_now = self.servicenow.newest()
            if low > format_sn_time(server_now):
                raise UsageRefused(
                    f"--since {low} UTC is later than ServiceNow's clock "
                    f"({format_sn_time(server_now)} UTC); nothing has changed after it yet: "
                    "give a moment in the past"
                )
            start = advance(None, low, server_now)
            if not dry_run:
                ledger.begin_backfill(start, low)
            watermark: str | None = start
            baseline_until = None
        else:
            watermark = ledger.state.get(WATERMARK)
            baseline_until = ledger.state.get(BASELINE_UNTIL)
            if watermark is None:
                watermark, baseline_until = self._first_run_start(dry_run)
                report.first_run = True
            low = ledger.state.get(SCAN_FROM) or scan_start(watermark, lookback)
        self.log.info("scan_started", low=low, watermark=watermark)

        planner = self.planners(baseline_until)
        until_short = since is None and self._read_to_end_lately()
        report.read_to_end = not until_short
        for page in self.servicenow.scan(low, until_short=until_short):
            report.pages += 1
            plan = planner.plan(page.records)
            report.fetched += plan.read
            report.changed += len(plan.decisions)
            report.quarantined += len(plan.bad)
            watermark = advance(watermark, page.cursor[0], page.server_now)
            report.watermark_seen = watermark
            if dry_run:
                planner.remember(plan)
                self._preview(plan, report)
            else:
                self._commit(plan, report, watermark)
            self.progress()
            self.log.debug(
                "page_done",
                page=report.pages,
                rows=page.raw_count,
                decisions=len(plan.decisions),
                watermark=watermark,
            )
            if self.should_stop():
                self.log.info("scan_interrupted", reason="stop requested", watermark=watermark)
                raise Interrupted(
                    "stopped by a signal; nothing is lost: the next run reads on from "
                    f"{watermark} and delivers what is queued"
                )
        if not dry_run:
            self._deletions(report)

    def _read_to_end_lately(self) -> bool:
        """Whether a scan went on to the empty page within READ_TO_END_SECONDS; if so, a
        short page may end this one (one request when idle). Every READ_TO_END_SECONDS
        one scan reads to the end, so rows an ACL hid at the head of the look-back window
        (ServiceNow limits before ACLs) delay the rows after them by that much at most."""
        last = self.ledger.state.get(SCAN_READ_TO_END)
        clock = self.ledger.state.get(SERVICENOW_CLOCK)
        if last is None or clock is None:
            return False
        return parse_sn_time(clock) - parse_sn_time(last) < READ_TO_END

    def _deletions(self, report: CycleReport) -> None:
        """Every deletion_check_seconds: resolve the alerts of deleted incidents."""
        if self.deletions is not None and self.deletions.due():
            report.count(self.deletions.run(run_id=report.run_id))

    def _commit(self, plan: PagePlan, report: CycleReport, watermark: str) -> None:
        """Rows, events and the watermark advance: one transaction, all or nothing."""
        counts = self.ledger.record_page(
            plan.decisions,
            extras=plan.extras,
            quarantined=plan.bad,
            watermark=watermark,
            run_id=report.run_id,
            forwards=plan.forwards,
            owed=plan.owed,
        )
        report.tickets.forwarded += counts.pop("forwarded", 0)
        report.count(counts)
        for d in plan.decisions:
            if d.cancel_pending:
                self.log.info("events_cancelled", number=d.incident.number, reason=d.why)

    def _preview(self, plan: PagePlan, report: CycleReport) -> None:
        """Dry run: count and list what would be queued."""
        report.planned.extend(planned_events(plan.decisions, plan.extras))
        for d in plan.decisions:
            for event in d.events:
                report.events[event.kind.value] += 1
            if d.cancel_pending:
                report.events["cancelled"] += 1

    def _first_run_start(self, dry_run: bool) -> tuple[str, str | None]:
        """Start at the newest change in the table: nothing before the install is pushed.

        Rows last changed up to that change (and never later than ServiceNow's
        clock, in case it is future-dated) are recorded without events.
        """
        newest, server_now = self.servicenow.newest()
        start = advance(None, newest or format_sn_time(server_now), server_now)
        baseline = min(newest, format_sn_time(server_now)) if newest else None
        self.log.info(
            "first_run_baseline",
            start=start,
            baseline_until=baseline,
            note="changes up to baseline_until are recorded without events",
        )
        if not dry_run:
            self.ledger.begin_first_run(start, baseline)
        return start, baseline
