"""What a customer holds, summed up for a person: each code with its balance, and their loyalty points.

Built on ``customer_wallet.list_page`` (``GET /v1/customers/{id}/redeemables``), so the console shows the
same codes, statuses and live balances as the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.checkout import customer_wallet

MAX_SHOWN = 100


@dataclass(frozen=True)
class Holding:
    code: str
    voucher_type: str
    campaign: str | None
    campaign_id: str | None
    status: str
    discount: dict[str, Any] | None
    gift_balance: int | None  # minor units
    gift_amount: int | None
    loyalty_balance: int | None  # points
    redeemed_quantity: int
    quantity: int | None


@dataclass(frozen=True)
class Holdings:
    items: list[Holding] = field(default_factory=list)
    has_more: bool = False

    @property
    def points(self) -> int:
        """The loyalty points of every card the customer holds."""
        return sum(h.loyalty_balance or 0 for h in self.items)

    @property
    def gift_balance(self) -> int:
        return sum(h.gift_balance or 0 for h in self.items)


def _holding(entry: dict[str, Any]) -> Holding:
    voucher = entry["redeemable"]["voucher"]
    gift = voucher.get("gift") or {}
    card = voucher.get("loyalty_card") or {}
    redemption = voucher.get("redemption") or {}
    return Holding(
        code=voucher["code"],
        voucher_type=voucher["type"],
        campaign=voucher.get("campaign"),
        campaign_id=voucher.get("campaign_id"),
        status=entry["redeemable"]["status"],
        discount=voucher.get("discount"),
        gift_balance=gift.get("balance") if voucher["type"] == "GIFT_VOUCHER" else None,
        gift_amount=gift.get("amount") if voucher["type"] == "GIFT_VOUCHER" else None,
        loyalty_balance=card.get("balance") if voucher["type"] == "LOYALTY_CARD" else None,
        redeemed_quantity=int(redemption.get("redeemed_quantity") or 0),
        quantity=redemption.get("quantity"),
    )


async def of_customer(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, customer_ref: str, *, limit: int = MAX_SHOWN
) -> Holdings:
    """The newest ``limit`` codes the customer holds (404 ``not_found`` for an unknown customer)."""
    page = await customer_wallet.list_page(
        conn, redis, project_id, customer_ref, limit=limit, starting_after_id=None, descending=True
    )
    return Holdings([_holding(entry) for entry in page["data"]], bool(page["has_more"]))
