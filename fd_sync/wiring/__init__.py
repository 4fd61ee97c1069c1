"""Wiring: from a validated configuration to the collaborators a command needs.

The one construction point: commands (``once``, ``run``, ``dispatch``,
``explain``, ``check``, the demo) differ in how they drive a cycle, not in how
its parts are built, and tests build the same graph with their own sleep or
pacing clock.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from datetime import timedelta

from fd_sync.config import Config
from fd_sync.core.feed import Person
from fd_sync.core.writeback import StateRules
from fd_sync.flashduty.incidents import IncidentReader
from fd_sync.flashduty.openapi import OpenAPIClient
from fd_sync.http.ratelimit import SlidingWindowLimiter
from fd_sync.servicenow.client import ServiceNowClient
from fd_sync.servicenow.lookups import Lookups
from fd_sync.servicenow.people import shared_people
from fd_sync.servicenow.writer import IncidentWriter
from fd_sync.store.ledger import Ledger
from fd_sync.sync.commands import Commands
from fd_sync.sync.cycle import Cycle, CycleSettings, PlannerFactory
from fd_sync.sync.deletions import DeletionCheck
from fd_sync.sync.delivery import Deliverer, Destination
from fd_sync.sync.dispatch import Dispatcher
from fd_sync.sync.enrich import Enricher
from fd_sync.sync.forward import AssignmentForwarder
from fd_sync.sync.pacing import Pacing
from fd_sync.sync.plan import Planner
from fd_sync.sync.tickets.forward import TicketForwarder
from fd_sync.sync.writeback import FlashdutyRead, ServiceNowWrites, Writeback
from fd_sync.wiring.common import Sleep, never, nothing, session
from fd_sync.wiring.flashduty import (
    deliverer,
    destinations,
    flashduty_writes,
    incident_reader,
    openapi_client,
    push_client,
    tickets,
)

__all__ = [
    "Sleep",
    "commands",
    "cycle",
    "deletion_check",
    "deliverer",
    "destinations",
    "dispatcher",
    "flashduty_writes",
    "incident_reader",
    "incident_writer",
    "lookups",
    "openapi_client",
    "pacing",
    "planners",
    "push_client",
    "servicenow_client",
    "session",
    "tickets",
    "writeback",
]


def servicenow_client(
    config: Config,
    *,
    sleep: Sleep = time.sleep,
    max_attempts: int | None = None,
    pacing: Pacing | None = None,
) -> ServiceNowClient:
    """``max_attempts`` overrides the configured one (``check`` tries each step once);
    ``pacing`` brings the process's ServiceNow budget (else the client has its own)."""
    settings = config.servicenow
    if max_attempts is not None:
        settings = dataclasses.replace(settings, max_attempts=max_attempts)
    budget = pacing.servicenow if pacing is not None else None
    return ServiceNowClient(settings, session=session(config), sleep=sleep, budget=budget)


def pacing(config: Config, ledger: Ledger | None = None) -> Pacing:
    """Both APIs' budgets for this process; the ServiceNow hour the ledger kept is counted."""
    made = Pacing(
        poll_interval=config.sync.poll_interval_seconds,
        servicenow_per_hour=config.servicenow.max_requests_per_hour,
        openapi_per_minute=config.flashduty.max_openapi_requests_per_minute,
    )
    if ledger is not None:
        saved = ledger.api_budgets()
        made.servicenow.load(saved.get("servicenow"))
        made.openapi.load(saved.get("openapi"), made.servicenow.clock())
    return made


def lookups(config: Config, *, sleep: Sleep = time.sleep) -> Lookups:
    return Lookups(servicenow_client(config, sleep=sleep))


def cycle(
    config: Config,
    ledger: Ledger,
    *,
    sleep: Sleep = time.sleep,
    to: Mapping[str, Destination] | None = None,
    should_stop: Callable[[], bool] = never,
    progress: Callable[[], None] = nothing,
    wall: Callable[[], float] = time.time,
    people: dict[int, Person] | None = None,
    paced: Pacing | None = None,
) -> Cycle:
    """A cycle over this ledger with its own clients; ``sleep`` is every retry's wait,
    ``wall`` the Unix clock the write-back compares with Flashduty's times, ``paced`` the
    daemon's budgets (``once`` makes its own)."""
    paced = paced or pacing(config, ledger)
    client = servicenow_client(config, sleep=sleep, pacing=paced)
    delivery = deliverer(
        config, ledger, sleep=sleep, to=to, should_stop=should_stop, progress=progress
    )
    limiter = paced.openapi.limiter
    back = writeback(config, ledger, client, sleep=sleep, wall=wall, people=people, pacing=paced)
    return Cycle(
        ledger,
        client,
        delivery,
        settings=CycleSettings(
            lookback_seconds=config.sync.lookback_seconds,
            history=timedelta(days=config.sync.history_days),
        ),
        planners=planners(config, ledger, client),
        deletions=deletion_check(config, ledger, client, progress=progress),
        writeback=back,
        commands=commands(config, ledger, client, delivery, sleep=sleep, limiter=limiter),
        tickets=tickets(config, ledger, client, sleep=sleep, wall=wall, limiter=limiter),
        flashduty_writes=flashduty_writes(config, ledger, sleep=sleep, limiter=limiter),
        answers=(
            ServiceNowWrites(ledger, IncidentWriter(client), StateRules(), wall=wall)
            if back is None and config.commands.enabled
            else None
        ),
        should_stop=should_stop,
        progress=progress,
        pacing=paced,
    )


def commands(
    config: Config,
    ledger: Ledger,
    client: ServiceNowClient,
    delivery: Deliverer,
    *,
    sleep: Sleep = time.sleep,
    limiter: SlidingWindowLimiter | None = None,
) -> Commands | None:
    """Paging from the incident form, with [commands] enabled; pages go through the
    cycle's own deliverer (one rate limit per push URL). The same journal read forwards the
    desk's work notes, with [forward] work_notes."""
    if not (config.commands.enabled or config.forward.work_notes):
        return None

    def openapi() -> OpenAPIClient:
        return openapi_client(config, purpose="/flashduty commands", sleep=sleep, limiter=limiter)

    has_key = bool(config.flashduty.app_key)
    return Commands(
        ledger,
        client,
        Dispatcher(config, ledger, Lookups(client), delivery, openapi=openapi if has_key else None),
        default_channel=config.flashduty.channel_id,
        allowed_groups=config.commands.allowed_groups,
        lookback_seconds=config.sync.lookback_seconds,
        openapi=openapi if has_key else None,
        act=config.commands.enabled,
        forward_notes=config.forward.work_notes,
    )


def planners(config: Config, ledger: Ledger, client: ServiceNowClient) -> PlannerFactory:
    """A planner per cycle, with a fresh cache of people and groups (they change)."""

    def planner(baseline_until: str | None) -> Planner:
        enricher = Enricher(
            Lookups(client),
            sync_comments=config.servicenow.sync_comments,
            severity_by=config.routing.severity_by,
        )
        forwarder = None
        people = shared_people(client) if config.forward.assignment else None
        if config.tickets.enabled:
            forwarder = TicketForwarder(
                ledger,
                enricher.lookups,
                config.tickets.severity,
                extra_fields=config.servicenow.extra_fields,
                people=people,
            )
        return Planner(
            ledger,
            config.routing,
            enricher,
            extra_fields=config.servicenow.extra_fields,
            baseline_until=baseline_until,
            tickets=forwarder,
            assignments=AssignmentForwarder(ledger, people) if people is not None else None,
        )

    return planner


def deletion_check(
    config: Config,
    ledger: Ledger,
    client: ServiceNowClient,
    *,
    progress: Callable[[], None] = nothing,
) -> DeletionCheck | None:
    if not config.sync.deletion_check_seconds:
        return None
    return DeletionCheck(
        ledger,
        client,
        table=config.servicenow.table,
        interval_seconds=config.sync.deletion_check_seconds,
        lookback_seconds=config.sync.lookback_seconds,
        progress=progress,
    )


def writeback(
    config: Config,
    ledger: Ledger,
    client: ServiceNowClient,
    *,
    sleep: Sleep = time.sleep,
    wall: Callable[[], float] = time.time,
    people: dict[int, Person] | None = None,
    pacing: Pacing | None = None,
) -> Writeback | None:
    """The Flashduty -> ServiceNow direction, when [writeback] enabled is on; ``people``
    caches Flashduty's names across cycles; ``pacing`` sets the read cadence."""
    if not config.writeback.enabled:
        return None
    settings = config.writeback
    limiter = pacing.openapi.limiter if pacing is not None else None
    openapi = openapi_client(config, purpose="[writeback]", sleep=sleep, limiter=limiter)
    reader = IncidentReader(openapi, people)
    rules = StateRules(
        settings.acknowledge_state,
        settings.resolve_state,
        settings.close_code,
        settings.close_notes,
    )
    reads = FlashdutyRead(
        ledger,
        reader,
        rules,
        work_notes=settings.work_notes,
        ticket_channels=frozenset(config.tickets.channel_ids),
        assign=settings.assign,
        severity=settings.severity,
        wall=wall,
        pacing=pacing,
    )
    writes = ServiceNowWrites(
        ledger,
        IncidentWriter(client),
        rules,
        people=shared_people(client) if settings.assign else None,
        severity_map=config.tickets.severity if settings.severity else None,
        wall=wall,
    )
    return Writeback(reads, writes, hold_seconds=settings.hold_seconds)


def dispatcher(config: Config, ledger: Ledger, *, sleep: Sleep = time.sleep) -> Dispatcher:
    """What ``fd-sync dispatch`` runs; the OpenAPI client is built only for --rule-name."""

    def openapi() -> OpenAPIClient:
        return openapi_client(config, purpose="--rule-name", sleep=sleep)

    return Dispatcher(
        config,
        ledger,
        lookups(config, sleep=sleep),
        deliverer(config, ledger, sleep=sleep),
        openapi=openapi,
    )


def incident_writer(config: Config, *, max_attempts: int | None = None) -> IncidentWriter:
    """ServiceNow's incidents, written through the Table API."""
    return IncidentWriter(servicenow_client(config, max_attempts=max_attempts))
