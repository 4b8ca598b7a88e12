"""Query parameters and small input checks shared by the listing endpoints of many resources.

They live here, apart from any one resource, so that modules which import each other
(customers, segments, loyalty, referrals) can all use them without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from voucherd.platform.errors import InvalidPayload, InvalidQueryParams


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidQueryParams(f"Query param {name} should be an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidQueryParams(f"Query param {name} should be {bound}")
    return value


def page_params(query: Mapping[str, str], *, max_page: int | None = None) -> tuple[int, int]:
    """``limit`` 1-100 (default 10) and ``page`` from 1: returns (limit, offset)."""
    limit = _int_param(query, "limit", 10, 1, 100)
    page = _int_param(query, "page", 1, 1, max_page)
    return limit, (page - 1) * limit


def limit_param(query: Mapping[str, str]) -> int:
    return _int_param(query, "limit", 10, 1, 100)


def time_param(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise InvalidQueryParams(f"Query param {name} should be an ISO-8601 date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.now().astimezone().tzinfo).astimezone()
    return value


def order_param(query: Mapping[str, str], allowed: Mapping[str, str], default: str) -> str:
    raw = query.get("order") or default
    if raw not in allowed:
        raise InvalidQueryParams(f"Query param order should be one of {', '.join(allowed)}")
    return allowed[raw]


def parse_date(value: Any, field: str) -> date | None:
    """A date-only input: ``2016-11-16`` or a date-time whose date part is taken."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise InvalidPayload(f"Property .{field} should be a date (YYYY-MM-DD)")


def checked_metadata(value: Any, field: str = "metadata") -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidPayload(f"Property .{field} should be an object")
    return value


def merge_metadata(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Keys sent replace stored ones; a key sent as null is removed."""
    merged = {**current, **update}
    return {k: v for k, v in merged.items() if v is not None}
