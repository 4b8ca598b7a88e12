"""A loyalty member pays points for a reward (``POST /v1/loyalties/…/members/…/redemption``).

It is a redemption like any other: the points leave the card in the same ``apply_counters`` step that
appends the redemption to the project's redemptions stream, so it lives with the checkout.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from voucherd.catalog import publications
from voucherd.catalog.customer_views import simple_view
from voucherd.checkout import counters, pending_redemptions, redemption_records
from voucherd.checkout.counters import Group, Op
from voucherd.checkout.service import Services
from voucherd.definitions import campaigns, voucher_state, vouchers
from voucherd.loyalty import cards as loyalty_cards
from voucherd.loyalty import rewards as rewards_module
from voucherd.loyalty import tiers as loyalty_tiers
from voucherd.platform import keys
from voucherd.platform.errors import InvalidPayload, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso, utcnow


async def redeem_reward(
    conn: asyncpg.Connection,
    services: Services,
    project_id: str,
    card: asyncpg.Record,
    body: dict[str, Any],
    *,
    request_id: str,
) -> dict[str, Any]:
    """A member pays points for a MATERIAL or CAMPAIGN reward assigned to the card's program, once.

    The points leave the card in the same ``apply_counters`` step that appends the redemption to the
    project's redemptions stream (guard: never below what other sessions reserved, never below zero).
    """
    reward_ref = body.get("reward")
    if not isinstance(reward_ref, dict) or not isinstance(reward_ref.get("id"), str):
        raise InvalidPayload("Property .reward.id is required")
    if not card["holder_id"]:
        raise InvalidPayload(f"Card {card['code']} is not published to a customer")
    reward = await rewards_module.fetch(conn, project_id, reward_ref["id"])
    assignment = await conn.fetchrow(
        "SELECT * FROM reward_assignments WHERE project_id = $1 AND reward_id = $2 AND campaign_id = $3",
        project_id,
        reward["id"],
        card["campaign_id"],
    )
    if assignment is None:
        raise NotFound.of("reward", reward["id"])
    if reward["type"] == "COIN":
        raise InvalidPayload("Pay-with-points rewards are used as a redeemable of a stacked redemption")
    points = int(assignment["points"] or 0)
    tier = await loyalty_tiers.tier_of(conn, services.redis, project_id, card)  # a member's tier may reprice it
    if tier is not None:
        points = loyalty_tiers.mapped((tier["rewards"] or {}).get(assignment["id"]), points)
    if reward_ref.get("points") is not None and reward_ref["points"] != points:
        raise InvalidPayload(f"Reward {reward['id']} costs {points} points")
    taken = await conn.fetchval(
        "UPDATE rewards SET redeemed = redeemed + 1 WHERE id = $1 AND (stock IS NULL OR redeemed < stock) "
        "RETURNING redeemed",
        reward["id"],
    )
    if taken is None:
        raise InvalidPayload(f"Reward {reward['id']} is out of stock")
    now = utcnow()
    customer_row = await conn.fetchrow(
        "SELECT * FROM customers WHERE project_id = $1 AND id = $2", project_id, card["holder_id"]
    )
    customer = simple_view(customer_row) if customer_row is not None else None
    redemption_id = new_id("r")
    child: dict[str, Any] = {
        "id": redemption_id,
        "object": "redemption",
        "date": iso(now),
        "customer_id": card["holder_id"],
        "tracking_id": f"track_{card['holder_id']}",
        "metadata": body.get("metadata") or {},
        "amount": points,
        "redemption": None,
        "result": "SUCCESS",
        "status": "SUCCEEDED",
        "related_redemptions": {"rollbacks": [], "redemptions": []},
        "channel": {"channel_id": None, "channel_type": "API"},
        "customer": customer,
        "related_object_type": "voucher",
        "related_object_id": card["id"],
        "voucher": {
            "id": card["id"],
            "code": card["code"],
            "type": "LOYALTY_CARD",
            "campaign_id": card["campaign_id"],
            "holder_id": card["holder_id"],
            "is_referral_code": False,
            "object": "voucher",
        },
        "loyalty_card": {"points": points},
        "reward": {
            **rewards_module.view(reward),
            "assignment_id": assignment["id"],
            "customer": customer,
        },
    }
    state_key = keys.voucher_state(project_id, card["code"])
    ops = [
        Op(
            state_key,
            "points",
            -points,
            min=0,
            lock_key=keys.voucher_locks(project_id, card["code"]),
            lock_amounts_key=keys.voucher_lock_amounts(project_id, card["code"]),
        )
    ]
    event: dict[str, Any] = {
        "type": "redemption",
        "project_id": project_id,
        "request_id": request_id,
        "date": child["date"],
        # A parent only stores with two or more children (redemption_records.finalize); its id names the
        # pending event, so the redemption is readable before the worker persists it (issue 17).
        "parent": {"id": new_id("r")},
        "customer": customer,
        "order": None,
    }
    stream_key = await services.streams.stream_key(redemption_records.STREAM, project_id)
    if await voucher_state.load(services.redis, services.pool, project_id, card["code"]) is None:
        raise NotFound.of("voucher", card["code"])
    outcome = await counters.apply(
        services.scripts,
        "ALL",
        [Group("loyalty_card_points_exceeded", ops, child)],
        now_ms=int(now.timestamp() * 1000),
        pending=pending_redemptions.record(event),
        stream_key=stream_key,
        event=event,
    )
    if outcome[0] != counters.OK:
        await conn.execute("UPDATE rewards SET redeemed = redeemed - 1 WHERE id = $1", reward["id"])
        raise loyalty_cards.NotEnoughPoints(f"Loyalty card {card['code']} has fewer than {points} points")
    if reward["type"] == "CAMPAIGN":
        child["reward"]["voucher"] = await _campaign_reward(conn, services, project_id, reward, card)
    return child


async def _campaign_reward(
    conn: asyncpg.Connection, services: Services, project_id: str, reward: asyncpg.Record, card: asyncpg.Record
) -> dict[str, Any] | None:
    """What a CAMPAIGN reward gives: points on the member's card of a loyalty program, or a code."""
    target = (reward["parameters"] or {}).get("campaign") or {}
    program = await campaigns.fetch_row(conn, project_id, target["id"])
    customer = {"id": card["holder_id"]}
    if program["campaign_type"] == "LOYALTY_PROGRAM":
        publication = await publications.publish(
            conn,
            services.redis,
            project_id,
            {"campaign": {"name": program["name"]}, "customer": customer},
            join_once=True,
        )
        code = str((publication.get("voucher") or {}).get("code"))
        target_card = await loyalty_cards.card_row(conn, project_id, code)
        await loyalty_cards.adjust(
            conn,
            services.redis,
            services.pool,
            project_id,
            target_card,
            program["voucher"],
            {"points": int(target.get("balance") or 0), "reason": f"reward {reward['id']}"},
        )
        return dict(await vouchers.get(conn, services.redis, project_id, code))
    publication = await publications.publish(
        conn, services.redis, project_id, {"campaign": {"name": program["name"]}, "customer": customer}
    )
    voucher: dict[str, Any] | None = publication.get("voucher")
    return voucher
