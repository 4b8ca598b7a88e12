"""Loyalty programs over ``/v1/loyalties``: programs (LOYALTY_PROGRAM campaigns), members (a card
published to each customer), their balance, transfers, transactions, pending points and rewards.

Points move in Redis only (voucherd/loyalty_cards.py, ``counters.apply`` for reward redemptions);
PostgreSQL records each move afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd import (
    campaigns,
    counters,
    keys,
    loyalty_cards,
    loyalty_earning,
    loyalty_tiers,
    pending_redemptions,
    publications,
    redemption_records,
    voucher_state,
    vouchers,
)
from voucherd import rewards as rewards_module
from voucherd.checkout import Services
from voucherd.counters import Group, Op
from voucherd.customers import simple_view
from voucherd.errors import InvalidPayload, NotFound
from voucherd.ids import new_id
from voucherd.listing import page_params
from voucherd.timeutil import iso, utcnow


class InvalidPendingPointsState(InvalidPayload):
    key = "invalid_pending_points_state"
    message = "Invalid pending points state"


# --- programs --------------------------------------------------------------------------------------


async def program_row(conn: asyncpg.Connection, project_id: str, ref: str) -> asyncpg.Record:
    row = await campaigns.fetch_row(conn, project_id, ref)
    if row["campaign_type"] != "LOYALTY_PROGRAM":
        raise NotFound.of("campaign", ref)
    return row


async def create_program(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, body: dict[str, Any], request_id: str | None
) -> dict[str, Any]:
    voucher: dict[str, Any] = body["voucher"] if isinstance(body.get("voucher"), dict) else {}
    request = {**body, "campaign_type": "LOYALTY_PROGRAM", "voucher": {**voucher, "type": "LOYALTY_CARD"}}
    return await campaigns.create(conn, redis, project_id, request, request_id)


async def list_programs(conn: asyncpg.Connection, project_id: str, query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    params = [(k, v) for k, v in query if k != "campaign_type"] + [("campaign_type", "LOYALTY_PROGRAM")]
    items, total = await campaigns.list_page(conn, project_id, params)
    return {"object": "list", "data_ref": "campaigns", "campaigns": items, "total": total}


# --- members ---------------------------------------------------------------------------------------


async def member_view(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, card: asyncpg.Record
) -> dict[str, Any]:
    view = await vouchers.get(conn, redis, project_id, card["code"])
    summary = await loyalty_cards.card_summary(conn, redis, project_id, card)
    view["loyalty_card"] = {**(view.get("loyalty_card") or {}), **summary}
    return view


async def member_card(
    conn: asyncpg.Connection, project_id: str, member_id: str, program_ref: str | None = None
) -> asyncpg.Record:
    card = await loyalty_cards.card_row(conn, project_id, member_id)
    if program_ref is not None:
        program = await program_row(conn, project_id, program_ref)
        if card["campaign_id"] != program["id"]:
            raise NotFound.of("voucher", member_id)
    return card


async def add_member(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, program_ref: str, body: dict[str, Any]
) -> dict[str, Any]:
    program = await program_row(conn, project_id, program_ref)
    request: dict[str, Any] = {k: body[k] for k in ("customer", "metadata", "source_id", "channel") if k in body}
    if body.get("voucher") is not None:
        card = await loyalty_cards.card_row(conn, project_id, body["voucher"])
        if card["campaign_id"] != program["id"]:
            raise InvalidPayload(f"Card {body['voucher']} is not a card of program {program['id']}")
        request["voucher"] = card["code"]
    else:
        request["campaign"] = {"name": program["name"]}
    publication = await publications.publish(conn, redis, project_id, request, join_once=True)
    code = publication.get("voucher", {}).get("code") if isinstance(publication.get("voucher"), dict) else None
    if code is None:
        code = (publication.get("vouchers") or [None])[0]
    if code is None:
        raise NotFound.of("voucher", program["id"])
    return await member_view(conn, redis, project_id, await loyalty_cards.card_row(conn, project_id, code))


async def list_members(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, program_ref: str, query: Mapping[str, str]
) -> dict[str, Any]:
    program = await program_row(conn, project_id, program_ref)
    limit, offset = page_params(query)
    rows = await conn.fetch(
        "SELECT * FROM vouchers WHERE project_id = $1 AND campaign_id = $2 AND holder_id IS NOT NULL "
        "AND deleted_at IS NULL ORDER BY created_at, id LIMIT $3 OFFSET $4",
        project_id,
        program["id"],
        limit,
        offset,
    )
    total = await conn.fetchval(
        "SELECT count(*) FROM vouchers WHERE project_id = $1 AND campaign_id = $2 AND holder_id IS NOT NULL "
        "AND deleted_at IS NULL",
        project_id,
        program["id"],
    )
    members = [await member_view(conn, redis, project_id, row) for row in rows]
    return {"object": "list", "data_ref": "vouchers", "vouchers": members, "total": total}


async def _template(conn: asyncpg.Connection, card: asyncpg.Record) -> dict[str, Any] | None:
    if card["campaign_id"] is None:
        return None
    template: dict[str, Any] | None = await conn.fetchval(
        "SELECT voucher FROM campaigns WHERE id = $1", card["campaign_id"]
    )
    if card["loyalty_card"] is not None:
        return {**(template or {}), "loyalty_card": card["loyalty_card"]}
    return template


async def adjust_balance(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    card: asyncpg.Record,
    body: dict[str, Any],
) -> dict[str, Any]:
    if not card["holder_id"]:
        raise InvalidPayload(f"Card {card['code']} is not published to a customer")
    return await loyalty_cards.adjust(conn, redis, pool, project_id, card, await _template(conn, card), body)


async def transfer(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    card: asyncpg.Record,
    body: Any,
) -> dict[str, Any]:
    if not isinstance(body, list):
        raise InvalidPayload("Send an array of {code, points, reason?, source_id?}")
    await loyalty_cards.transfer(conn, redis, pool, project_id, card, await _template(conn, card), body)
    return await member_view(conn, redis, project_id, card)


async def transactions(
    conn: asyncpg.Connection, project_id: str, card: asyncpg.Record, query: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    items, has_more = await vouchers.list_transactions(conn, project_id, card["code"], query)
    body: dict[str, Any] = {"object": "list", "data_ref": "data", "data": items, "has_more": has_more}
    if has_more and items:
        body["more_starting_after"] = items[-1]["id"]
    return body


async def program_transactions(
    conn: asyncpg.Connection, project_id: str, program_ref: str, query: Mapping[str, str]
) -> dict[str, Any]:
    program = await program_row(conn, project_id, program_ref)
    limit, _offset = page_params(query)
    rows = await conn.fetch(
        "SELECT * FROM voucher_transactions WHERE project_id = $1 AND campaign_id = $2 ORDER BY seq DESC LIMIT $3",
        project_id,
        program["id"],
        limit + 1,
    )
    items = [vouchers.transaction_view(r) for r in rows[:limit]]
    return {"object": "list", "data_ref": "data", "data": items, "has_more": len(rows) > limit}


async def activity(conn: asyncpg.Connection, project_id: str, card: asyncpg.Record) -> dict[str, Any]:
    """A member's activity: the card's transactions, as events of its holder."""
    rows = await conn.fetch(
        "SELECT * FROM voucher_transactions WHERE project_id = $1 AND voucher_id = $2 ORDER BY seq DESC LIMIT 100",
        project_id,
        card["id"],
    )
    data = [
        {
            "id": row["id"],
            "type": f"customer.loyalty.{row['type'].lower()}",
            "data": vouchers.transaction_view(row),
            "created_at": iso(row["created_at"]),
        }
        for row in rows
    ]
    return {"object": "list", "data_ref": "data", "data": data, "total": len(data)}


# --- pending points --------------------------------------------------------------------------------


async def list_pending(
    conn: asyncpg.Connection,
    project_id: str,
    *,
    card: asyncpg.Record | None = None,
    campaign_id: str | None = None,
    query: Mapping[str, str],
) -> dict[str, Any]:
    limit, _offset = page_params(query)
    column, value = ("voucher_id", card["id"]) if card is not None else ("campaign_id", campaign_id)
    rows = await conn.fetch(
        f"SELECT * FROM loyalty_pending_points WHERE project_id = $1 AND {column} = $2 AND status = 'PENDING' "
        "ORDER BY created_at, id LIMIT $3",
        project_id,
        value,
        limit + 1,
    )
    data = [loyalty_earning.pending_view(r) for r in rows[:limit]]
    return {"object": "list", "data_ref": "data", "data": data, "has_more": len(rows) > limit}


async def _pending_row(
    conn: asyncpg.Connection, project_id: str, card: asyncpg.Record, pending_id: str, *, lock: bool = False
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM loyalty_pending_points WHERE project_id = $1 AND id = $2 AND voucher_id = $3"
        + (" FOR UPDATE" if lock else ""),
        project_id,
        pending_id,
        card["id"],
    )
    if row is None:
        raise NotFound.of("pending_points", pending_id)
    if row["status"] != "PENDING":
        raise InvalidPendingPointsState(f"Pending points {pending_id} are {row['status']}, not PENDING")
    return row


async def activate_pending(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    card: asyncpg.Record,
    pending_id: str,
) -> dict[str, Any]:
    row = await _pending_row(conn, project_id, card, pending_id)
    return await loyalty_earning.activate(conn, redis, pool, project_id, row)


async def cancel_pending(conn: asyncpg.Connection, project_id: str, card: asyncpg.Record, pending_id: str) -> None:
    async with conn.transaction():
        await _pending_row(conn, project_id, card, pending_id, lock=True)
        await conn.execute(
            "UPDATE loyalty_pending_points SET status = 'CANCELED', updated_at = now() WHERE id = $1", pending_id
        )


async def adjust_pending(
    conn: asyncpg.Connection, project_id: str, card: asyncpg.Record, pending_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    points = body.get("points")
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidPayload("Property .points should be a non-zero integer")
    async with conn.transaction():
        row = await _pending_row(conn, project_id, card, pending_id, lock=True)
        if row["points"] + points < 0:
            raise InvalidPayload(f"Pending points {pending_id} hold {row['points']} points")
        updated = await conn.fetchrow(
            "UPDATE loyalty_pending_points SET points = points + $2, updated_at = now() WHERE id = $1 RETURNING *",
            pending_id,
            points,
        )
    return loyalty_earning.pending_view(updated)


# --- rewards for members ---------------------------------------------------------------------------


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


async def member_rewards(conn: asyncpg.Connection, project_id: str, card: asyncpg.Record) -> dict[str, Any]:
    return await rewards_module.member_rewards(conn, project_id, card["campaign_id"])
