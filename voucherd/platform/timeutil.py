"""UTC timestamps in the API's format: ISO-8601 with milliseconds and ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_us(value: datetime) -> str:
    """Microsecond precision, where creation times must tell rows of one transaction apart."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_now() -> str:
    return _format(utcnow())


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return _format(value)


def _format(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is a C call (strftime and an f-string took twice as long); in UTC it ends in "+00:00".
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"
