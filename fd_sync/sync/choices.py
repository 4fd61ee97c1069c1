"""Keeping the instance's choice labels: read at most hourly, cached in the ledger.

Every body is built with the cached labels (delivery, dispatch, explain), so a
cycle costs no ``sys_choice`` request except the hourly refresh.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fd_sync import logs
from fd_sync.core.choices import BASE, BASE_CHOICES, ChoiceLabels
from fd_sync.errors import AccessDenied, RemoteRejected, TemporaryFailure
from fd_sync.servicenow.choices import CHOICE_TABLE, read_choice_labels
from fd_sync.servicenow.client import ServiceNowClient
from fd_sync.store.ledger import Ledger
from fd_sync.store.state import CHOICE_LABELS
from fd_sync.store.times import iso

REFRESH = timedelta(hours=1)


def cached_choice_labels(ledger: Ledger) -> ChoiceLabels:
    """What the last refresh found; a base instance's labels before the first one."""
    return ChoiceLabels.from_json(ledger.state.get_json(CHOICE_LABELS))


def refresh_choice_labels(ledger: Ledger, servicenow: ServiceNowClient) -> ChoiceLabels:
    """The labels, read again when the cached ones are an hour old (one request)."""
    cached = ledger.state.get_json(CHOICE_LABELS)
    now = ledger.clock()
    if isinstance(cached, dict) and _fresh(cached.get("fetched_at"), now):
        return ChoiceLabels.from_json(cached)
    log = logs.get("choices")
    try:
        labels = read_choice_labels(servicenow)
    except (AccessDenied, RemoteRejected) as exc:
        labels = BASE_CHOICES
        if not isinstance(cached, dict) or cached.get("source") != BASE:
            # Said once, when the labels fall back; check says it too.
            log.warning(
                "choice_labels_unreadable",
                error=str(exc),
                fix=f"grant the integration user read access to {CHOICE_TABLE}; until then "
                "a base instance's labels are sent",
            )
    except TemporaryFailure as exc:
        log.info("choice_labels_not_refreshed", error=str(exc))
        return ChoiceLabels.from_json(cached)  # tried again next cycle
    ledger.record_choice_labels({**labels.to_json(), "fetched_at": iso(now)})
    return labels


def _fresh(fetched_at: object, now: datetime) -> bool:
    if not isinstance(fetched_at, str):
        return False
    try:
        age = now - datetime.fromisoformat(fetched_at)
    except ValueError:
        return False
    return timedelta(0) <= age < REFRESH
