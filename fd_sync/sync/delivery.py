"""Drain the outbox to Flashduty, oldest event first.

Concurrency contract: one drain per ledger at a time; the caller holds the run
lock (:mod:`fd_sync.store.lock`). The drain is sequential over one keep-alive
connection per destination, which keeps per-incident order trivially true.

Ordering contract: one incident's events leave strictly in the order they were
queued, whatever their destinations (a route move resolves at one integration
and creates at another). When one of them cannot be delivered (Flashduty
refused it for good, or its retries ran out) the incident's later events wait
behind it, so a resolve never overtakes its create. Other incidents go on past
a refused event; but when retries run out the endpoint itself is down, and the
drain stops for that destination: the next run continues where this one stopped.

Crash contract: an event is marked attempted (committed) before it is sent and
delivered after Flashduty acknowledged it; the delivered mark rides in the commit of
the next event's attempt, or in the drain's last commit (see :mod:`fd_sync.store.outbox`).
A crash after a send and before that commit sends that one event again on the next run,
and nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fd_sync import logs
from fd_sync.core import payloads
from fd_sync.core.choices import ChoiceLabels
from fd_sync.core.decide import Kind
from fd_sync.core.routing import PushFormat
from fd_sync.errors import FatalAPIError, Interrupted, RetriableAPIError
from fd_sync.flashduty.push import FlashdutyClient, describe
from fd_sync.store.ledger import Ledger
from fd_sync.store.outbox import Acknowledged, OutboxEvent
from fd_sync.store.queue import Failure
from fd_sync.sync.choices import cached_choice_labels

BATCH = 500


@dataclass(frozen=True)
class Destination:
    """A Flashduty integration events can be sent to, and its push format."""

    name: str
    client: FlashdutyClient
    push_format: PushFormat


@dataclass
class DeliveryReport:
    delivered: int = 0
    dead: int = 0  # refused for good during this drain
    held: int = 0  # left pending behind an undeliverable event of the same incident
    deferred: int = 0  # updates (and what follows them) kept while Flashduty's side is unknown
    down: dict[str, str] = field(default_factory=dict)  # destination -> why it is down
    stopped: bool = False  # asked to stop before the outbox was empty


class Deliverer:
    def __init__(
        self,
        ledger: Ledger,
        destinations: Mapping[str, Destination],
        *,
        instance_url: str,
        table: str,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[], None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.destinations = destinations
        self.instance_url = instance_url
        self.table = table
        self.should_stop = should_stop
        self.progress = progress
        self.log = logs.get("delivery")
        self._acknowledged: Acknowledged | None = None  # its delivered mark is not committed yet

    def drain(
        self, *, only: str | None = None, unsure: frozenset[str] = frozenset()
    ) -> DeliveryReport:
        """Deliver pending events in order; with ``only`` (a sys_id), that incident's alone.

        ``unsure``: incidents whose alert a responder may have closed in Flashduty, unseen
        because the write-back could not read Flashduty this cycle. Their updates wait (an
        update to a closed alert opens a new one and pages again), unless a resolve follows,
        which makes them moot.
        """
        try:
            return self._drain(only, unsure)
        finally:
            self.ledger.record_acknowledged(self._acknowledged)
            self._acknowledged = None

    def _drain(self, only: str | None, unsure: frozenset[str]) -> DeliveryReport:
        report = DeliveryReport()
        waiting: set[str] = set()  # unsure incidents whose events wait for the next cycle
        choices = cached_choice_labels(self.ledger)  # the instance's labels, read hourly
        held = self.ledger.outbox.dead_incidents()  # earlier refusals still hold their incidents
        after_id = 0
        while True:
            batch = self.ledger.outbox.pending(after_id=after_id, limit=BATCH, sys_id=only)
            if not batch:
                return report
            # The newest resolve per incident in this batch: what makes an update moot.
            last_resolve = {e.sys_id: e.id for e in batch if e.kind is Kind.RESOLVE}
            for event in batch:
                after_id = event.id
                if self.should_stop():
                    report.stopped = True
                    return report
                if event.sys_id in held:
                    report.held += 1
                    continue
                if event.sys_id in waiting or (
                    event.sys_id in unsure and event.kind is Kind.UPDATE
                ):
                    if event.kind is Kind.UPDATE and last_resolve.get(event.sys_id, 0) > event.id:
                        self.ledger.cancel_event(event.id)  # a resolve follows: moot
                        continue
                    waiting.add(event.sys_id)
                    report.deferred += 1
                    continue
                destination = self.destinations.get(event.destination)
                if destination is None:
                    # Its route was removed from the configuration: keep it, say so.
                    self.log.warning(
                        "event_destination_unknown",
                        event_id=event.id,
                        number=event.number,
                        destination=event.destination,
                    )
                    held.add(event.sys_id)
                    report.held += 1
                    continue
                if destination.name in report.down:
                    held.add(event.sys_id)  # its later events may go elsewhere: keep the order
                    continue
                try:
                    self._deliver(event, destination, choices, report, held)
                except Interrupted:
                    # Stopping mid-retry: the event stays pending (marked attempted).
                    report.stopped = True
                    return report
                self.progress()

    def _deliver(
        self,
        event: OutboxEvent,
        destination: Destination,
        choices: ChoiceLabels,
        report: DeliveryReport,
        held: set[str],
    ) -> None:
        body = payloads.build(
            destination.push_format,
            event.kind,
            event.incident,
            instance_url=self.instance_url,
            table=self.table,
            extras=event.extras,
            choices=choices,
        )
        self.ledger.attempt(event, acknowledging=self._acknowledged)
        self._acknowledged = None
        try:
            receipt = destination.client.push(body)
        except FatalAPIError as exc:
            # Flashduty refused this event for good: keep it as dead for an operator.
            reason = self._failed(event, exc, dead=True, held=held)
            report.dead += 1
            self.log.error(
                "event_dead",
                event_id=event.id,
                number=event.number,
                kind=event.kind.value,
                error=reason,
                request_id=exc.request_id,
            )
            return
        except RetriableAPIError as exc:
            # Retries ran out: the endpoint is down; stop sending to it this run.
            reason = self._failed(event, exc, dead=False, held=held)
            report.down[destination.name] = reason
            self.log.error(
                "flashduty_unavailable",
                destination=destination.name,
                number=event.number,
                error=reason,
            )
            return
        self._acknowledged = Acknowledged(
            event, receipt.status, receipt.request_id, receipt.alert_key
        )
        report.delivered += 1
        self.log.info(
            "event_delivered",
            event_id=event.id,
            number=event.number,
            kind=event.kind.value,
            request_id=receipt.request_id,
        )

    def _failed(
        self,
        event: OutboxEvent,
        exc: FatalAPIError | RetriableAPIError,
        *,
        dead: bool,
        held: set[str],
    ) -> str:
        """Record why an attempt failed; the incident's later events wait behind it."""
        reason = describe(exc)
        failure = Failure(exc.status, reason, error_code=exc.code, request_id=exc.request_id)
        self.ledger.record_failure(self.ledger.outbox, [event.id], dead=dead, failure=failure)
        held.add(event.sys_id)
        return reason
