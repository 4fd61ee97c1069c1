"""Open the queued tickets: one POST each, exactly once.

Crash contract: the attempt is committed before the POST and the ticket after the answer
(:meth:`Ledger.attempt_create`, :meth:`Ledger.record_ticket_opened`). A create tried
before (a kill between the two, a timeout, a dropped connection, a 5xx) is looked up by
``correlation_id`` before it is posted again, so no Flashduty incident gets two tickets.
A refusal (an ACL, a data policy, an invalid reference) is kept dead with ServiceNow's
words; it is not tried again until an operator's ``outbox retry``.
"""

from __future__ import annotations

from collections.abc import Callable

from fd_sync import logs
from fd_sync.core.tickets import link_back
from fd_sync.errors import AccessDenied, TemporaryFailure
from fd_sync.servicenow.writer import IncidentWriter, WriteRefused
from fd_sync.store.ledger import Ledger
from fd_sync.store.queue import Failure
from fd_sync.store.tickets import TicketCreate
from fd_sync.sync.tickets.report import TicketsReport


def ticket_url(instance_url: str, sys_id: str) -> str:
    return f"{instance_url.rstrip('/')}/nav_to.do?uri=incident.do?sys_id={sys_id}"


class TicketCreator:
    def __init__(self, ledger: Ledger, writer: IncidentWriter) -> None:
        self.ledger = ledger
        self.writer = writer
        self.log = logs.get("tickets")

    def run(
        self, report: TicketsReport, progress: Callable[[int, int], None] | None = None
    ) -> None:
        """Open every queued ticket; ``progress(done, of)`` after each (a terminal's line)."""
        before = self.writer.requests_made
        try:
            pending = self.ledger.ticket_creates.pending()
            for done, item in enumerate(pending, 1):
                self._open(item, report)
                if progress is not None:
                    progress(done, len(pending))
        except (AccessDenied, TemporaryFailure) as exc:
            report.error = report.error or exc
            self.log.error("ticket_create_failed", error=str(exc), exit_code=exc.exit_code)
        finally:
            report.servicenow_requests += self.writer.requests_made - before

    def _open(self, item: TicketCreate, report: TicketsReport) -> None:
        if item.attempts and self._found(item, report):
            return  # an earlier attempt whose answer never came did create it
        self.ledger.attempt_create(item)
        try:
            title = item.fields.get("short_description", "")
            record = self.writer.create(f'Flashduty {item.number} "{title}"', item.fields)
        except WriteRefused as exc:
            failure = Failure(exc.status, exc.detail)
            self.ledger.record_failure(
                self.ledger.ticket_creates, [item.id], dead=True, failure=failure
            )
            report.refused.append(exc)
            report.tally("refused")
            self.log.error(
                "ticket_refused",
                incident_id=item.incident_id,
                incident=f'Flashduty {item.number} "{title}"',
                status=exc.status,
                error=exc.detail,
            )
            return
        except TemporaryFailure as exc:
            # It may have landed: look now, so that this cycle's poll knows the ticket.
            if not self._found(item, report):
                self.ledger.record_failure(
                    self.ledger.ticket_creates,
                    [item.id],
                    dead=False,
                    failure=Failure(None, str(exc)),
                )
                raise
            return
        self._opened(item, record, report)

    def _found(self, item: TicketCreate, report: TicketsReport) -> bool:
        record = self.writer.find_tickets([item.incident_id]).get(item.incident_id)
        if record is None:
            return False
        self.log.info(
            "ticket_found_created", incident_id=item.incident_id, number=record.get("number")
        )
        self._opened(item, record, report)
        return True

    def _opened(self, item: TicketCreate, record: dict[str, object], report: TicketsReport) -> None:
        sys_id, number = str(record.get("sys_id") or ""), str(record.get("number") or "")
        url = ticket_url(self.writer.client.base, sys_id)
        self.ledger.record_ticket_opened(item, record, link_back=link_back(number, url))
        report.opened += 1
        report.tally("opened")
        self.log.info("ticket_opened", incident_id=item.incident_id, number=number, sys_id=sys_id)
