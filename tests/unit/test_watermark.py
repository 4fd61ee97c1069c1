"""Watermark arithmetic: ServiceNow's time only, never backwards, never past its clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd_sync.core.watermark import (
    CLOCK_MARGIN,
    advance,
    format_sn_time,
    parse_since,
    parse_sn_time,
    scan_start,
)

NOW = datetime(2026, 11, 1, 8, 0, 0, tzinfo=UTC)


def test_advance_moves_to_the_newest_row():
    assert advance("2026-11-01 07:00:00", "2026-11-01 07:30:00", NOW) == "2026-11-01 07:30:00"


def test_advance_never_moves_backwards():
    # A look-back page holds rows older than the watermark.
    assert advance("2026-11-01 07:30:00", "2026-11-01 07:25:00", NOW) == "2026-11-01 07:30:00"


def test_a_future_row_cannot_blind_the_poller():
    future = "2027-01-01 00:00:00"
    assert advance("2026-11-01 07:00:00", future, NOW) == format_sn_time(NOW - CLOCK_MARGIN)


def test_scan_starts_lookback_before_the_watermark():
    assert scan_start("2026-11-01 08:00:00", 300) == "2026-11-01 07:55:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:30:00", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T08:30:00Z", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:00+01:00", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01 08:30", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_since_is_utc_unless_it_has_an_offset(text, expected):
    assert parse_since(text) == expected


def test_since_rejects_garbage_with_examples():
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_since("yesterday")


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)


@given(moments, moments)
def test_text_order_is_time_order(a, b):
    """The watermark is compared as text; that is only right if the format sorts like time."""
    assert (format_sn_time(a) < format_sn_time(b)) == (a < b)
    assert parse_sn_time(format_sn_time(a)) == a


@given(st.lists(moments, min_size=1, max_size=20), moments)
def test_advance_is_monotonic_and_capped(rows, now):
    watermark = None
    for row in rows:
        new = advance(watermark, format_sn_time(row), now)
        if watermark is not None:
            assert new >= watermark
        assert new <= max(watermark or "", format_sn_time(now - CLOCK_MARGIN))
        watermark = new
