"""A customer row as the API shows it: the full object and the short one that events and orders embed.

Apart from voucherd/catalog/customers.py so that segments, which customers use, can read views too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import asyncpg

from voucherd.platform.timeutil import iso


def _summary(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    count = row["orders_total_count"]
    return {
        "redemptions": {
            "total_redeemed": row["redemptions_total_redeemed"],
            "total_failed": row["redemptions_total_failed"],
            "total_succeeded": row["redemptions_total_succeeded"],
            "total_rolled_back": row["redemptions_total_rolled_back"],
            "total_rollback_failed": row["redemptions_total_rollback_failed"],
            "total_rollback_succeeded": row["redemptions_total_rollback_succeeded"],
            "gift": {"redeemed_amount": row["gift_redeemed_amount"], "amount_to_go": row["gift_amount_to_go"]},
            "loyalty_card": {
                "redeemed_points": row["loyalty_redeemed_points"],
                "points_to_go": row["loyalty_points_to_go"],
            },
        },
        "orders": {
            "total_amount": row["orders_total_amount"],
            "total_count": count,
            "average_amount": row["orders_total_amount"] // count if count else 0,
            "last_order_amount": row["orders_last_amount"],
            "last_order_date": iso(row["orders_last_date"]),
        },
    }


Row: TypeAlias = asyncpg.Record | Mapping[str, Any]


def _date(name: str) -> Callable[[Row], Any]:
    return lambda row: row[name].isoformat() if row[name] else None


def _time(name: str) -> Callable[[Row], Any]:
    return lambda row: iso(row[name])


def _column(name: str) -> Callable[[Row], Any]:
    return lambda row: row[name]


# Each field of the customer object, from its row, in the object's order.
_FIELDS: dict[str, Callable[[Row], Any]] = {
    **{name: _column(name) for name in ("id", "source_id", "name", "description", "email", "phone")},
    "birthdate": _date("birthdate"),
    "birthday": _date("birthday"),
    "address": _column("address"),
    "summary": _summary,
    **{name: _column(name) for name in ("loyalty", "referrals", "metadata", "system_metadata")},
    "created_at": _time("created_at"),
    "updated_at": _time("updated_at"),
}


def customer_view(row: Row) -> dict[str, Any]:
    view = {name: field(row) for name, field in _FIELDS.items()}
    view["object"] = "customer"
    return view


def facts_reader(names: Iterable[str]) -> Callable[[Row], dict[str, Any]]:
    """Only the named top-level fields of ``customer_view(row)``: what a segment filter reads of a customer
    (a bulk job evaluates 100,000 customers, and the summary and dates are most of a view's cost)."""
    fields = [(name, _FIELDS[name]) for name in names if name in _FIELDS]
    return lambda row: {name: field(row) for name, field in fields}


def simple_view(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The short customer object that events and orders embed."""
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "name": row["name"],
        "email": row["email"],
        "metadata": row["metadata"],
        "object": "customer",
    }
