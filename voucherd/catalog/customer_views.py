"""A customer row as the API shows it: the full object and the short one that events and orders embed.

Apart from voucherd/catalog/customers.py so that segments, which customers use, can read views too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def customer_view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "name": row["name"],
        "description": row["description"],
        "email": row["email"],
        "phone": row["phone"],
        "birthdate": row["birthdate"].isoformat() if row["birthdate"] else None,
        "birthday": row["birthday"].isoformat() if row["birthday"] else None,
        "address": row["address"],
        "summary": _summary(row),
        "loyalty": row["loyalty"],
        "referrals": row["referrals"],
        "metadata": row["metadata"],
        "system_metadata": row["system_metadata"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "customer",
    }


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
