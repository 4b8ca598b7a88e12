"""Loyalty tiers (``ltr_``) of a loyalty program (issue 9).

A member is in the tier whose ``points`` range (``from`` .. ``to``, both inclusive, ``to`` open when
absent) holds the card's live spendable balance: qualification by point balance, upgraded and downgraded
at once. Points collected in a period, tier expiration and the tier events (``customer.loyalty.tier.*``)
are not modelled. A tier maps earning rules (``ern_`` ids) and reward assignments (``rewa_`` ids) to
``{type: MULTIPLY, multiplier}`` or ``{type: CUSTOM, points}``: what a member of the tier earns by that
rule, or pays for that reward, instead of the program's value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.definitions import voucher_state
from voucherd.loyalty import rewards
from voucherd.platform.errors import InvalidPayload, InvalidQueryParams, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.listing import limit_param
from voucherd.platform.timeutil import iso

ORDERS = {
    "created_at": "created_at ASC, id ASC",
    "-created_at": "created_at DESC, id DESC",
    "updated_at": "coalesce(updated_at, created_at) ASC, id ASC",
    "-updated_at": "coalesce(updated_at, created_at) DESC, id DESC",
}


def view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    points = {"from": row["points_from"], "to": row["points_to"]}
    return {
        "id": row["id"],
        "name": row["name"],
        "campaign_id": row["campaign_id"],
        "metadata": row["metadata"] or {},
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "earning_rules": row["earning_rules"] or {},
        "rewards": row["rewards"] or {},
        "config": {"points": points},
        "points": points,
        "object": "loyalty_tier",
    }


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidPayload(f"Property {where} should be an object")
    if raw.get("type") == "MULTIPLY":
        multiplier = raw.get("multiplier")
        if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or multiplier < 0:
            raise InvalidPayload(f"Property {where}.multiplier should be a non-negative number")
        return {"type": "MULTIPLY", "multiplier": multiplier}
    if raw.get("type") == "CUSTOM":
        points = raw.get("points")
        if isinstance(points, bool) or not isinstance(points, int) or points < 0:
            raise InvalidPayload(f"Property {where}.points should be a non-negative integer")
        return {"type": "CUSTOM", "points": points}
    raise InvalidPayload(f"Property {where}.type should be MULTIPLY or CUSTOM")


def mapped(mapping: Mapping[str, Any] | None, points: int) -> int:
    """Points after a tier's mapping of one earning rule or reward (the program's value without one)."""
    if not mapping:
        return points
    if mapping.get("type") == "CUSTOM":
        return int(mapping.get("points") or 0)
    return math.floor(points * float(mapping.get("multiplier") or 0))


def _points(raw: Any, where: str) -> tuple[int, int | None]:
    if not isinstance(raw, dict):
        raise InvalidPayload(f"Property {where}.points is required and should be an object")
    low, high = raw.get("from"), raw.get("to")
    if isinstance(low, bool) or not isinstance(low, int) or low < 0:
        raise InvalidPayload(f"Property {where}.points.from should be a non-negative integer")
    if high is not None and (isinstance(high, bool) or not isinstance(high, int) or high < low):
        raise InvalidPayload(f"Property {where}.points.to should be an integer not below points.from")
    return low, high


async def _owned(conn: asyncpg.Connection, project_id: str, table: str, campaign_id: str, ids: list[str]) -> None:
    found = {
        r["id"]
        for r in await conn.fetch(
            f"SELECT id FROM {table} WHERE project_id = $1 AND campaign_id = $2 AND id = ANY($3::text[])",
            project_id,
            campaign_id,
            ids,
        )
    }
    for item in ids:
        if item not in found:
            raise NotFound.of("earning_rule" if table == "earning_rules" else "reward_assignment", item)


def _overlaps(a: tuple[int, int | None], b: tuple[int, int | None]) -> bool:
    a_high = math.inf if a[1] is None else a[1]
    b_high = math.inf if b[1] is None else b[1]
    return a[0] <= b_high and b[0] <= a_high


async def create(conn: asyncpg.Connection, project_id: str, campaign_id: str, body: Any) -> list[dict[str, Any]]:
    """``POST /v1/loyalties/{campaignId}/tiers``: an array of tiers; ranges may not overlap."""
    if not isinstance(body, list) or not body:
        raise InvalidPayload("The body should be a non-empty array of tiers")
    ranges = [
        (r["points_from"], r["points_to"])
        for r in await conn.fetch(
            "SELECT points_from, points_to FROM loyalty_tiers WHERE project_id = $1 AND campaign_id = $2",
            project_id,
            campaign_id,
        )
    ]
    rows: list[tuple[Any, ...]] = []
    for i, raw in enumerate(body):
        where = f"[{i}]"
        if not isinstance(raw, dict):
            raise InvalidPayload(f"Item {where} should be an object")
        if not isinstance(raw.get("name"), str) or not raw["name"]:
            raise InvalidPayload(f"Property {where}.name is required")
        span = _points(raw.get("points"), where)
        earning = {k: _mapping(v, f"{where}.earning_rules.{k}") for k, v in (raw.get("earning_rules") or {}).items()}
        mapped_rewards = {k: _mapping(v, f"{where}.rewards.{k}") for k, v in (raw.get("rewards") or {}).items()}
        await _owned(conn, project_id, "earning_rules", campaign_id, list(earning))
        await _owned(conn, project_id, "reward_assignments", campaign_id, list(mapped_rewards))
        if any(_overlaps(span, other) for other in ranges):
            raise InvalidPayload(f"The points range of {where} overlaps another tier of the program")
        ranges.append(span)
        metadata = raw.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidPayload(f"Property {where}.metadata should be an object")
        rows.append((new_id("ltr"), raw["name"], span[0], span[1], earning, mapped_rewards, metadata))
    out = []
    async with conn.transaction():
        for row in rows:
            created = await conn.fetchrow(
                "INSERT INTO loyalty_tiers (id, project_id, campaign_id, name, points_from, points_to, earning_rules, "
                "rewards, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
                row[0],
                project_id,
                campaign_id,
                *row[1:],
            )
            out.append(view(created))
    return out


async def fetch(conn: asyncpg.Connection, project_id: str, campaign_id: str, tier_id: str) -> asyncpg.Record:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM loyalty_tiers WHERE project_id = $1 AND campaign_id = $2 AND id = $3",
        project_id,
        campaign_id,
        tier_id,
    )
    if row is None:
        raise NotFound.of("loyalty_tier", tier_id)
    return row


async def list_page(
    conn: asyncpg.Connection, project_id: str, campaign_id: str, query: Mapping[str, str]
) -> dict[str, Any]:
    limit = limit_param(query)
    order = query.get("order", "created_at")
    if order not in ORDERS:
        raise InvalidQueryParams(f"Query param order should be one of {', '.join(ORDERS)}")
    rows = await conn.fetch(
        f"SELECT * FROM loyalty_tiers WHERE project_id = $1 AND campaign_id = $2 ORDER BY {ORDERS[order]} "
        f"LIMIT {limit}",
        project_id,
        campaign_id,
    )
    total = await conn.fetchval(
        "SELECT count(*) FROM loyalty_tiers WHERE project_id = $1 AND campaign_id = $2", project_id, campaign_id
    )
    return {"object": "list", "data_ref": "data", "data": [view(r) for r in rows], "total": total}


async def tier_of(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, card: asyncpg.Record | Mapping[str, Any]
) -> asyncpg.Record | None:
    """The tier a card's live balance places its holder in, if any."""
    live = (await voucher_state.live_counters(redis, project_id, [card["code"]]))[0] or {}
    balance = live.get("points", card["loyalty_balance"] or 0)
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM loyalty_tiers WHERE project_id = $1 AND campaign_id = $2 AND points_from <= $3 "
        "AND (points_to IS NULL OR points_to >= $3) ORDER BY points_from DESC LIMIT 1",
        project_id,
        card["campaign_id"],
        balance,
    )
    return row


async def member_tiers(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, card: asyncpg.Record
) -> dict[str, Any]:
    """``GET /v1/loyalties/members/{memberId}/tiers``: the member's current tier (none below every range)."""
    tier = await tier_of(conn, redis, project_id, card)
    data = []
    if tier is not None:
        data.append(
            {
                **view(tier),
                "expiration": {
                    "customer_id": card["holder_id"],
                    "campaign_id": card["campaign_id"],
                    "tier_id": tier["id"],
                    "start_date": None,
                    "expiration_date": None,  # qualification by balance: the tier lasts while the balance does
                    "created_at": iso(tier["created_at"]),
                    "updated_at": iso(tier["updated_at"]),
                },
            }
        )
    return {"object": "list", "data_ref": "data", "data": data, "total": len(data)}


async def tier_rewards(conn: asyncpg.Connection, project_id: str, tier: asyncpg.Record) -> dict[str, Any]:
    """``GET …/tiers/{id}/rewards``: the program's rewards the tier maps, as ``loyalty_tier_reward`` items."""
    mapping = tier["rewards"] or {}
    listed = await rewards.member_rewards(conn, project_id, tier["campaign_id"])
    data = []
    for item in listed["data"]:
        assignment = item["assignment"]
        if assignment["id"] not in mapping:
            continue
        loyalty = ((assignment.get("parameters") or {}).get("loyalty")) or {}
        if loyalty.get("points") is not None:
            loyalty = {**loyalty, "points": mapped(mapping[assignment["id"]], int(loyalty["points"]))}
            assignment = {**assignment, "parameters": {"loyalty": loyalty}}
        data.append({"reward": item["reward"], "assignment": assignment, "object": "loyalty_tier_reward"})
    return {"object": "list", "data_ref": "data", "data": data, "total": len(data)}
