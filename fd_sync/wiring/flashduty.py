"""Wiring, the Flashduty side: push clients and their limits, the OpenAPI clients (which
share the process's budget), and the parts of a cycle that write to Flashduty."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from fd_sync.config import Config
from fd_sync.core.decide import DEFAULT_DESTINATION
from fd_sync.core.feed import Person
from fd_sync.core.routing import PushFormat
from fd_sync.errors import ConfigError
from fd_sync.flashduty.budget import OpenAPIBudget
from fd_sync.flashduty.incidents import IncidentReader
from fd_sync.flashduty.openapi import OpenAPIClient
from fd_sync.flashduty.push import FlashdutyClient
from fd_sync.flashduty.tickets import FlashdutyTickets
from fd_sync.http.ratelimit import SlidingWindowLimiter, flashduty_limiter
from fd_sync.servicenow.client import ServiceNowClient
from fd_sync.servicenow.writer import IncidentWriter
from fd_sync.store.ledger import Ledger
from fd_sync.sync.delivery import Deliverer, Destination
from fd_sync.sync.tickets import FlashdutyWrites, TicketCreator, TicketFinder, Tickets
from fd_sync.wiring.common import Sleep, never, nothing, session


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
    should_stop: Callable[[], bool] = never,
    progress: Callable[[], None] = nothing,
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


def flashduty_writes(
    config: Config,
    ledger: Ledger,
    *,
    sleep: Sleep = time.sleep,
    limiter: SlidingWindowLimiter | None = None,
) -> FlashdutyWrites | None:
    """The OpenAPI writes owed to Flashduty's incidents: tickets' changes, the desk's
    reassignments and work notes ([tickets], [forward])."""
    forward = config.forward
    if not (config.tickets.enabled or forward.assignment or forward.work_notes):
        return None
    purpose = "[tickets] and [forward]"
    openapi = openapi_client(config, purpose=purpose, sleep=sleep, limiter=limiter)
    return FlashdutyWrites(ledger, FlashdutyTickets(openapi))


def tickets(
    config: Config,
    ledger: Ledger,
    client: ServiceNowClient,
    *,
    sleep: Sleep = time.sleep,
    wall: Callable[[], float] = time.time,
    limiter: SlidingWindowLimiter | None = None,
) -> Tickets | None:
    """Monitoring incidents in Flashduty open ServiceNow tickets, with [tickets] enabled."""
    if not config.tickets.enabled:
        return None
    openapi = openapi_client(config, purpose="[tickets]", sleep=sleep, limiter=limiter)
    flashduty = FlashdutyTickets(openapi)
    finder = TicketFinder(
        ledger,
        flashduty,
        config.tickets,
        lookback_seconds=config.sync.lookback_seconds,
        wall=wall,
    )
    writer = IncidentWriter(client)
    return Tickets(finder, TicketCreator(ledger, writer), FlashdutyWrites(ledger, flashduty))


def openapi_client(
    config: Config,
    *,
    purpose: str,
    sleep: Sleep = time.sleep,
    limiter: SlidingWindowLimiter | None = None,
) -> OpenAPIClient:
    """The Flashduty OpenAPI client; ``purpose`` names the command in the error; ``limiter``
    is the cycle's shared budget (else the client keeps [flashduty]
    max_openapi_requests_per_minute alone)."""
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
        limiter=limiter or OpenAPIBudget(fd.max_openapi_requests_per_minute).limiter,
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
