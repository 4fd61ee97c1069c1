"""What a cycle did, for the log, the runs table, the CLI and the metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fd_sync.core.decide import DEFAULT_DESTINATION, Decision, Kind
from fd_sync.core.payloads import NO_EXTRAS, Extras
from fd_sync.errors import EX_OK, EX_PROTOCOL, EX_TEMPFAIL, FdSyncError, Interrupted, outcome, worst
from fd_sync.sync.commands import CommandsReport
from fd_sync.sync.delivery import DeliveryReport
from fd_sync.sync.tickets.report import TicketsReport
from fd_sync.sync.writeback.report import WritebackReport


@dataclass(frozen=True)
class PlannedEvent:
    """An event as --dry-run prints it."""

    number: str
    kind: Kind
    severity: str
    destination: str = DEFAULT_DESTINATION

    def line(self) -> str:
        where = "" if self.destination == DEFAULT_DESTINATION else f" -> {self.destination}"
        return f"{self.number} {self.kind.value} {self.severity}{where}"


def planned_events(
    decisions: Sequence[Decision], extras: Mapping[str, Extras]
) -> list[PlannedEvent]:
    """The events of these decisions as --dry-run lists them."""
    planned = []
    for d in decisions:
        severity = extras.get(d.incident.sys_id, NO_EXTRAS).severity
        for event in d.events:
            shown = "Ok" if event.kind is Kind.RESOLVE else severity or "Warning"
            planned.append(PlannedEvent(d.incident.number, event.kind, shown, event.destination))
    return planned


def _no_events() -> dict[str, int]:
    return {"create": 0, "update": 0, "resolve": 0, "cancelled": 0}


@dataclass
class CycleReport:
    run_id: str
    dry_run: bool = False
    pages: int = 0
    fetched: int = 0  # rows read, including look-back re-reads
    changed: int = 0  # rows newer than the ledger's version
    quarantined: int = 0
    events: dict[str, int] = field(default_factory=_no_events)  # queued, by kind
    planned: list[PlannedEvent] = field(default_factory=list)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    pending: int = 0
    dead: int = 0
    held: int = 0
    writeback_dead: int = 0  # write-backs ServiceNow refused, kept for an operator (all cycles)
    watermark: str | None = None
    watermark_seen: str | None = None  # how far the scan has read, while it reads
    error: FdSyncError | None = None
    seconds: float = 0.0
    first_run: bool = False  # no watermark yet: the present state is the baseline
    writeback: WritebackReport = field(default_factory=WritebackReport)
    commands: CommandsReport = field(default_factory=CommandsReport)
    tickets: TicketsReport = field(default_factory=TicketsReport)
    tickets_dead: int = 0  # ticket creates and OpenAPI writes refused, kept (all cycles)
    servicenow_requests: int = 0  # what the cycle cost the instance's hourly budget
    read_to_end: bool = False  # the scan went on to the empty page, past any short one
    interval: float | None = None  # seconds until the next cycle, as the budgets allow

    def count(self, counts: dict[str, int]) -> None:
        for kind, n in counts.items():
            self.events[kind] += n

    @property
    def exit_code(self) -> int:
        codes = [EX_OK]
        if self.error is not None:
            codes.append(self.error.exit_code)
        if self.dead or self.held:
            codes.append(EX_PROTOCOL)
        if self.pending - self.held > 0 and not self.dry_run:
            codes.append(EX_TEMPFAIL)
        if self.writeback.error is not None:
            codes.append(self.writeback.error.exit_code)
        if self.commands.error is not None:
            codes.append(self.commands.error.exit_code)
        if self.writeback.refused or self.writeback_dead:
            codes.append(EX_PROTOCOL)  # someone's action never reached ServiceNow
        if self.tickets.error is not None:
            codes.append(self.tickets.error.exit_code)
        if self.tickets.refused or self.tickets.dead or self.tickets_dead:
            codes.append(EX_PROTOCOL)  # a ticket or a ticket's change never arrived
        return worst(codes)

    @property
    def outcome(self) -> str:
        if isinstance(self.error, Interrupted) or self.delivery.stopped:
            return "interrupted"
        return outcome(self.exit_code)

    def problems(self) -> list[str]:
        """Why the cycle did not end clean, one phrase each: the CLI's error line and the
        runs table's message say the same."""
        parts = [str(self.error)] if self.error is not None else []
        parts += [f"Flashduty ({n}) unavailable: {why}" for n, why in self.delivery.down.items()]
        if self.delivery.stopped and not isinstance(self.error, Interrupted):
            parts.append("stopped by a signal; the next run delivers what is left")
        if self.dead or self.held:
            parts.append(
                f"{self.dead} dead event(s) refused by Flashduty and {self.held} held "
                "behind them; see fd-sync status"
            )
        if self.writeback.error is not None and self.writeback.error is not self.error:
            parts.append(str(self.writeback.error))
        parts += [str(refused) for refused in self.writeback.refused[:3]]
        if len(self.writeback.refused) > 3:
            parts.append(f"and {len(self.writeback.refused) - 3} more refused write-back(s)")
        tickets = self.tickets
        if tickets.error is not None and tickets.error not in (self.error, self.writeback.error):
            parts.append(str(tickets.error))
        parts += [str(refused) for refused in tickets.refused[:3]]
        earlier_tickets = self.tickets_dead - len(tickets.refused) - tickets.dead
        if earlier_tickets > 0:
            parts.append(
                f"{earlier_tickets} ticket create(s) or Flashduty write(s) refused earlier wait "
                "for an operator; see fd-sync outbox list --dead"
            )
        earlier = self.writeback_dead - len(self.writeback.refused)
        if earlier > 0:
            parts.append(
                f"{earlier} write-back(s) ServiceNow refused earlier wait for an operator; "
                "see fd-sync outbox list --dead"
            )
        return parts

    def failure(self) -> FdSyncError | None:
        """The one error the CLI prints for a non-zero exit, None when all went well."""
        if self.error is not None:
            return self.error
        if not self.exit_code:
            return None
        return FdSyncError("; ".join(self.problems()) or self.outcome, exit_code=self.exit_code)

    def message(self) -> str:
        return "; ".join(self.problems()) or self.summary()

    def stats(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "fetched": self.fetched,
            "changed": self.changed,
            "quarantined": self.quarantined,
            **self.events,
            "delivered": self.delivery.delivered,
            "dead": self.dead,
            "writeback_dead": self.writeback_dead,
            "commands_answered": self.commands.answered,
            "pending": self.pending,
            "writeback_read": self.writeback.read,
            "writeback_written": self.writeback.written,
            "writeback_refused": len(self.writeback.refused),
            "openapi_requests": self.writeback.openapi_requests + self.tickets.openapi_requests,
            "servicenow_requests": self.servicenow_requests,
            "tickets_opened": self.tickets.opened,
            "tickets_refused": len(self.tickets.refused),
            "flashduty_writes": self.tickets.written,
        }

    def summary(self) -> str:
        e = self.events
        text = (
            f"read {self.fetched} incident(s) in {self.pages} page(s), {self.changed} changed; "
            f"queued {e['create']} create, {e['update']} update, {e['resolve']} resolve"
        )
        if e["cancelled"]:
            text += f", cancelled {e['cancelled']}"
        if self.first_run:
            what = "would record" if self.dry_run else "recorded"
            sent = "send" if self.dry_run else "sent"
            text += (
                f"; first run: {what} the present state of ServiceNow and {sent} nothing "
                "(fd-sync once --since DATE backfills)"
            )
        if self.dry_run:
            return text + " (dry run: nothing sent, ledger unchanged)"
        text += f"; delivered {self.delivery.delivered}, pending {self.pending}, dead {self.dead}"
        if self.quarantined:
            text += f"; quarantined {self.quarantined} bad row(s)"
        wb = self.writeback
        if wb.read or wb.written or wb.linked:
            text += f"; write-back: read {wb.read} Flashduty incident(s), wrote {wb.written}"
        t = self.tickets
        if t.opened or t.written or t.forwarded:
            text += f"; tickets: opened {t.opened}, Flashduty writes {t.written}"
        return text
