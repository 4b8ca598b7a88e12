"""The API's timestamps: UTC, milliseconds (truncated, as Voucherify shows them) and a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from voucherd.platform.timeutil import iso, iso_us


def test_timestamps_are_utc_with_milliseconds_and_z() -> None:
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC)) == "2026-01-02T03:04:05.999Z"
    assert iso(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"
    plus_five = timezone(timedelta(hours=5, minutes=30))
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 1_000, tzinfo=plus_five)) == "2026-01-01T21:34:05.001Z"
    assert iso(None) is None
    assert iso_us(datetime(2026, 1, 2, 3, 4, 5, 42, tzinfo=UTC)) == "2026-01-02T03:04:05.000042Z"
