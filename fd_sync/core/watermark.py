"""Where a scan starts and how far the watermark may advance. Pure functions.

The watermark is the newest ``sys_updated_on`` that ServiceNow has shown us,
never a reading of the local clock (pollers that stepped "now + interval"
created blind spots). It is capped a few seconds behind ServiceNow's own clock
(its ``Date`` header), so one row dated in the future cannot make every later
change look old. Each scan starts ``lookback_seconds`` before the watermark,
because a row committed in a long transaction can become visible after rows
with later timestamps; the ledger makes the re-read harmless.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

SN_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CLOCK_MARGIN = timedelta(seconds=5)


def parse_sn_time(text: str) -> datetime:
    """A ServiceNow ``YYYY-MM-DD HH:MM:SS`` value (UTC with display values off)."""
    return datetime.strptime(text, SN_TIME_FORMAT).replace(tzinfo=UTC)


def format_sn_time(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(SN_TIME_FORMAT)


def parse_since(text: str) -> datetime:
    """An ISO-8601 date or date-time from the command line; UTC when it has no offset."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {text!r} is not an ISO-8601 date or date-time "
            "(examples: 2026-11-01, 2026-11-01T08:30:00, 2026-11-01T08:30:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def scan_start(watermark: str, lookback_seconds: int) -> str:
    """The lower bound of the next scan: the watermark minus the look-back window."""
    return format_sn_time(parse_sn_time(watermark) - timedelta(seconds=lookback_seconds))


def advance(current: str | None, page_newest: str, server_now: datetime) -> str:
    """The watermark after a page whose newest row is ``page_newest``.

    Never backwards (a look-back page re-reads older rows), never past
    ServiceNow's clock minus a margin (a future-dated row must not blind us).
    """
    ceiling = format_sn_time(server_now - CLOCK_MARGIN)
    candidate = min(page_newest, ceiling)  # the format sorts like the time it encodes
    if current is None:
        return candidate
    return max(current, candidate)
