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

import requests

from fd_sync.config import Config
from fd_sync.core.decide import DEFAULT_DESTINATION
from fd_sync.core.feed import Person
from fd_sync.core.routing import PushFormat
from fd_sync.core.writeback import StateRules
from fd_sync.errors import ConfigError
from fd_sync.flashduty.incidents import IncidentReader
from fd_sync.flashduty.openapi import OpenAPIClient
from fd_sync.flashduty.push import FlashdutyClient
from fd_sync.flashduty.tickets import FlashdutyTickets
from fd_sync.http.ratelimit import SlidingWindowLimiter, flashduty_limiter
from fd_sync.http.transport import make_session
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
from fd_sync.sync.plan import Planner
from fd_sync.sync.tickets import FlashdutyWrites, TicketCreator, TicketFinder, Tickets
from fd_sync.sync.tickets.forward import TicketForwarder
from fd_sync.sync.writeback import FlashdutyRead, ServiceNowWrites, Writeback

Sleep = Callable[[float], None]


def _never() -> bool:
    return False


def _nothing() -> None:
    return None


def session(config: Config) -> requests.Session:
    """A keep-alive session with the operator's CA bundle and proxy."""
    return make_session(ca_bundle=config.http.ca_bundle, proxy=config.http.proxy)


def servicenow_client(
    config: Config, *, sleep: Sleep = time.sleep, max_attempts: int | None = None
) -> ServiceNowClient:
    """``max_attempts`` overrides the configured one (``check`` tries each step once)."""
    settings = config.servicenow
    if max_attempts is not None:
        settings = dataclasses.replace(settings, max_attempts=max_attempts)
    return ServiceNowClient(settings, session=session(config), sleep=sleep)


def lookups(config: Config, *, sleep: Sleep = time.sleep) -> Lookups:
    return Lookups(servicenow_client(config, sleep=sleep))


def destinations(
    config: Config,
    *,
    sleep: Sleep = time.sleep,
    pacing_clock: Callable[[], float] = time.monotonic,
    pacing_sleep: Sleep = time.sleep,
) -> dict[str, Destination]:
    """Every Flashduty integration events may go to, keyed by the name the outbox stores.

    Each push URL gets one client and one rate limiter, however many routes
    use it; every route's own name is an alias of its destination.
    ``pacing_clock``/``pacing_sleep`` drive the rate limiters; tests pass fake time
    (the same to the receiver) to check the pacing of thousands of pushes at once.
    """
    fd = config.flashduty

    def destination(name: str, push_url: str, push_format: PushFormat) -> Destination:
        # Real time for the limiter even when tests replace the retry sleep: its
        # clock and its sleep must agree, or it would spin.
        limiter = flashduty_limiter(
            fd.max_requests_per_minute, clock=pacing_clock, sleep=pacing_sleep
        )
        client = push_client(config, push_url, sleep=sleep, limiter=limiter)
        return Destination(name, client, push_format)

    out = {DEFAULT_DESTINATION: destination(DEFAULT_DESTINATION, fd.push_url, fd.push_format)}
    for route_destination in config.routing.destinations:
        out[route_destination.name] = destination(
            route_destination.name, route_destination.push_url, route_destination.push_format
        )
    for alias, name in config.routing.aliases.items():
        out.setdefault(alias, out[name])
    return out


def push_client(
    config: Config,
    push_url: str,
    *,
    sleep: Sleep = time.sleep,
    limiter: SlidingWindowLimiter | None = None,
    max_attempts: int | None = None,
) -> FlashdutyClient:
    """A client for one push URL; ``check`` probes with one attempt and no pacing."""
    fd = config.flashduty
    return FlashdutyClient(
        push_url,
        timeout=fd.timeout_seconds,
        max_attempts=max_attempts or fd.max_attempts,
        limiter=limiter,
        ca_bundle=config.http.ca_bundle,
        proxy=config.http.proxy,
        sleep=sleep,
    )


def deliverer(
    config: Config,
    ledger: Ledger,
    *,
    sleep: Sleep = time.sleep,
    to: Mapping[str, Destination] | None = None,
    should_stop: Callable[[], bool] = _never,
    progress: Callable[[], None] = _nothing,
) -> Deliverer:
    """The outbox's consumer; ``to`` replaces the destinations (tests that pace by hand)."""
    return Deliverer(
        ledger,
        to if to is not None else destinations(config, sleep=sleep),
        instance_url=config.servicenow.instance_url,
        table=config.servicenow.table,
        should_stop=should_stop,
        progress=progress,
    )


def cycle(
    config: Config,
    ledger: Ledger,
    *,
    sleep: Sleep = time.sleep,
    to: Mapping[str, Destination] | None = None,
    should_stop: Callable[[], bool] = _never,
    progress: Callable[[], None] = _nothing,
    wall: Callable[[], float] = time.time,
    people: dict[int, Person] | None = None,
) -> Cycle:
    """A cycle over this ledger with its own clients; ``sleep`` is every retry's wait,
    ``wall`` the Unix clock the write-back compares with Flashduty's times."""
    client = servicenow_client(config, sleep=sleep)
    delivery = deliverer(
        config, ledger, sleep=sleep, to=to, should_stop=should_stop, progress=progress
    )
    back = writeback(config, ledger, client, sleep=sleep, wall=wall, people=people)
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
        commands=commands(config, ledger, client, delivery, sleep=sleep),
        tickets=tickets(config, ledger, client, sleep=sleep, wall=wall),
        flashduty_writes=flashduty_writes(config, ledger, sleep=sleep),
        answers=(
            ServiceNowWrites(ledger, IncidentWriter(client), StateRules(), wall=wall)
            if back is None and config.commands.enabled
            else None
        ),
        should_stop=should_stop,
        progress=progress,
    )


def commands(
    config: Config,
    ledger: Ledger,
    client: ServiceNowClient,
    delivery: Deliverer,
    *,
    sleep: Sleep = time.sleep,
) -> Commands | None:
    """Paging from the incident form, with [commands] enabled; pages go through the
    cycle's own deliverer (one rate limit per push URL). The same journal read forwards the
    desk's work notes, with [forward] work_notes."""
    if not (config.commands.enabled or config.forward.work_notes):
        return None

    def openapi() -> OpenAPIClient:
        return openapi_client(config, purpose="/flashduty commands", sleep=sleep)

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


def flashduty_writes(
    config: Config, ledger: Ledger, *, sleep: Sleep = time.sleep
) -> FlashdutyWrites | None:
    """The OpenAPI writes owed to Flashduty's incidents: tickets' changes, the desk's
    reassignments and work notes ([tickets], [forward])."""
    forward = config.forward
    if not (config.tickets.enabled or forward.assignment or forward.work_notes):
        return None
    openapi = openapi_client(config, purpose="[tickets] and [forward]", sleep=sleep)
    return FlashdutyWrites(ledger, FlashdutyTickets(openapi))


def tickets(
    config: Config,
    ledger: Ledger,
    client: ServiceNowClient,
    *,
    sleep: Sleep = time.sleep,
    wall: Callable[[], float] = time.time,
) -> Tickets | None:
    """Monitoring incidents in Flashduty open ServiceNow tickets, with [tickets] enabled."""
    if not config.tickets.enabled:
        return None
    flashduty = FlashdutyTickets(openapi_client(config, purpose="[tickets]", sleep=sleep))
    finder = TicketFinder(
        ledger,
        flashduty,
        config.tickets,
        lookback_seconds=config.sync.lookback_seconds,
        wall=wall,
    )
    writer = IncidentWriter(client)
    return Tickets(finder, TicketCreator(ledger, writer), FlashdutyWrites(ledger, flashduty))


def deletion_check(
    config: Config,
    ledger: Ledger,
    client: ServiceNowClient,
    *,
    progress: Callable[[], None] = _nothing,
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
) -> Writeback | None:
    """The Flashduty -> ServiceNow direction, when [writeback] enabled is on; ``people``
    caches Flashduty's names across cycles."""
    if not config.writeback.enabled:
        return None
    settings = config.writeback
    reader = incident_reader(config, purpose="[writeback]", sleep=sleep, people=people)
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


def openapi_client(config: Config, *, purpose: str, sleep: Sleep = time.sleep) -> OpenAPIClient:
    """The Flashduty OpenAPI client; ``purpose`` names the command in the error."""
    fd = config.flashduty
    if not fd.app_key:
        raise ConfigError(
            f"{config.path}: [flashduty] app_key is required for {purpose}: set app_key, "
            "app_key_file, or FD_SYNC_FLASHDUTY_APP_KEY (Flashduty: Account > APP Key)"
        )
    return OpenAPIClient(
        fd.api_url,
        fd.app_key,
        session=session(config),
        max_attempts=fd.max_attempts,
        sleep=sleep,
        key_source=dict(config.secret_sources).get("[flashduty] app_key", "[flashduty] app_key"),
    )


def incident_reader(
    config: Config,
    *,
    purpose: str,
    sleep: Sleep = time.sleep,
    people: dict[int, Person] | None = None,
) -> IncidentReader:
    """Flashduty's incidents, read through the OpenAPI (``purpose`` names the command)."""
    return IncidentReader(openapi_client(config, purpose=purpose, sleep=sleep), people)


def incident_writer(config: Config, *, max_attempts: int | None = None) -> IncidentWriter:
    """ServiceNow's incidents, written through the Table API."""
    return IncidentWriter(servicenow_client(config, max_attempts=max_attempts))
