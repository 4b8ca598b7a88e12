"""Query-string parameters with casts; a bad value is 400 ``invalid_query_params``."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from voucherd.platform.errors import InvalidQueryParams


def int_param(request: Request, name: str, default: int, *, minimum: int = 1, maximum: int = 100) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidQueryParams(f"Query parameter {name} should be an integer") from None
    if not minimum <= value <= maximum:
        raise InvalidQueryParams(f"Query parameter {name} should be between {minimum} and {maximum}")
    return value


def date_param(request: Request, name: str) -> datetime | None:
    """An ISO 8601 date or date-time (``2016-11-16`` or ``2016-11-16T14:14:31Z``), as UTC."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    return parse_datetime(raw, name)


def parse_datetime(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidQueryParams(f"Query parameter {name} should be an ISO 8601 date") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
