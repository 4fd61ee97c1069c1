"""``fd-sync adopt``: take over alerts opened before fd-sync (by fd-servicenow, say).

A fresh ledger knows nothing of the alerts already open in Flashduty, so it would never
resolve them. Adopting lists the open alerts (``/alert/list`` with ``is_active``, in
31-day windows), matches each to a ServiceNow incident by its alert_key (a ``sys_id``,
else an incident number), and records the matched ones as open alerts at the destination
their route chooses, with an empty fingerprint: the incident's next change in ServiceNow
updates or resolves them. An incident already closed in ServiceNow is reported; with
``resolve_closed`` its resolve is queued now.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from fd_sync.config import Config
from fd_sync.core import decide, routing
from fd_sync.core.decide import DEFAULT_DESTINATION, Decision
from fd_sync.core.feed import FeedCursor
from fd_sync.core.incident import Incident, parse_record
from fd_sync.errors import BadRecord
from fd_sync.flashduty.incidents import FoundAlert, IncidentReader
from fd_sync.servicenow.client import ServiceNowClient
from fd_sync.store.ledger import AdoptedAlert, Ledger

SYS_ID = re.compile(r"[0-9a-f]{32}")
BATCH = 100


@dataclass
class AdoptReport:
    adopted: list[tuple[Incident, str]] = field(default_factory=list)  # (incident, destination)
    already: list[Incident] = field(default_factory=list)  # the ledger has its alert open
    closed: list[Incident] = field(default_factory=list)  # closed in ServiceNow
    resolving: list[Incident] = field(default_factory=list)  # closed, and its resolve queued
    unmatched: list[FoundAlert] = field(default_factory=list)


def adopt(
    config: Config,
    ledger: Ledger,
    reader: IncidentReader,
    servicenow: ServiceNowClient,
    *,
    days: int,
    integration_ids: tuple[int, ...] = (),
    resolve_closed: bool = False,
    notes_since: int | None = None,
    dry_run: bool = False,
    wall: Callable[[], float] = time.time,
) -> AdoptReport:
    now = int(wall())
    alerts = reader.active_alerts(
        start=now - days * 86400, end=now + 60, integration_ids=integration_ids
    )
    incidents = _match(servicenow, config, alerts)
    report = AdoptReport()
    entries = ledger.entries(i.sys_id for i in incidents.values())
    decisions: list[Decision] = []
    adopted: list[AdoptedAlert] = []
    for alert in alerts:
        incident = incidents.get(alert.alert_key)
        if incident is None:
            report.unmatched.append(alert)
            continue
        entry = entries.get(incident.sys_id)
        if entry is not None and entry.alert_open:
            report.already.append(incident)  # fd-sync keeps this alert already
            continue
        target = routing.route(incident, config.routing).target or DEFAULT_DESTINATION
        if incident.is_open:
            decisions.append(decide.adopted(incident, target))
            report.adopted.append((incident, target))
        elif resolve_closed:
            decision = decide.adopted_closed(incident, target)
            if decision is not None:
                decisions.append(decision)
            report.resolving.append(incident)
        else:
            report.closed.append(incident)
            continue
        adopted.append(
            AdoptedAlert(
                incident.sys_id, incident.number, alert.alert_key, target, alert.incident_id
            )
        )
    if dry_run or not decisions:
        return report
    adopted = [_from_adoption(reader, a, now, notes_since) for a in adopted]
    ledger.record_adoption(decisions, adopted)
    return report


def _from_adoption(
    reader: IncidentReader, alert: AdoptedAlert, now: int, since: int | None
) -> AdoptedAlert:
    """The write-back of an adopted incident starts at the adoption: its timeline so far was
    the old integration's to write (or another ledger's), and writing it again would
    duplicate every note; ``since`` (Unix seconds, --notes-since) opts older entries in."""
    start_ms = (now if since is None else since) * 1000
    if not alert.incident_id:  # found later: read from the adoption (or since) on
        return replace(alert, cursor=FeedCursor(start_ms - 1))
    entries = reader.feed(alert.incident_id, FeedCursor())  # everything there now
    if since is not None:
        entries = [e for e in entries if e.created_at < start_ms]
    return replace(alert, cursor=FeedCursor().past(entries))


def _match(
    client: ServiceNowClient, config: Config, alerts: list[FoundAlert]
) -> dict[str, Incident]:
    """alert_key -> the ServiceNow incident it names (by sys_id, else by number)."""
    keys = list(dict.fromkeys(a.alert_key for a in alerts))
    by_sys_id = [k for k in keys if SYS_ID.fullmatch(k)]
    by_number = [k for k in keys if not SYS_ID.fullmatch(k)]
    found: dict[str, Incident] = {}
    for column, wanted in (("sys_id", by_sys_id), ("number", by_number)):
        for first in range(0, len(wanted), BATCH):
            chunk = wanted[first : first + BATCH]
            rows, _ = client.table_get(
                {
                    "sysparm_query": f"{column}IN" + ",".join(chunk),
                    "sysparm_fields": ",".join(client.fields),
                    "sysparm_limit": str(len(chunk)),
                }
            )
            for row in rows:
                try:
                    incident = parse_record(row, config.servicenow.extra_fields)
                except BadRecord:
                    continue
                found[incident.sys_id if column == "sys_id" else incident.number] = incident
    return found
