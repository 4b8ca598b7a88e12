"""Rewards (``rew_``: CAMPAIGN, COIN = pay with points, MATERIAL) and their assignments (``rewa_``)
to loyalty programs, which set how many points a member pays for them.

Every change bumps the project's definitions version: the hot path resolves pay-with-points
rewards from the definitions cached per process (voucherd/checkout/hot_definitions.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from voucherd.platform.errors import InvalidPayload, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.listing import page_params
from voucherd.platform.timeutil import iso

TYPES = ("CAMPAIGN", "COIN", "MATERIAL")


def view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "stock": row["stock"],
        "redeemed": row["redeemed"],
        "attributes": row["attributes"] or {},
        "metadata": row["metadata"] or {},
        "type": row["type"],
        "parameters": row["parameters"] or {},
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "reward",
    }


def assignment_view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "reward_id": row["reward_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "reward_assignment",
        "related_object_id": row["campaign_id"],
        "related_object_type": "campaign",
    }
    if row["points"] is not None:
        out["parameters"] = {"loyalty": {"points": row["points"], "auto_redeem": row["auto_redeem"]}}
    return out


def _positive_number(value: Any, name: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidPayload(f"Property .{name} should be a positive number")
    return value


def _parameters(raw: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise InvalidPayload("Property .parameters is required and should be an object")
    if isinstance(raw.get("coin"), dict):
        coin = raw["coin"]
        return "COIN", {
            "coin": {
                "exchange_ratio": _positive_number(coin.get("exchange_ratio"), "parameters.coin.exchange_ratio"),
                "points_ratio": _positive_number(coin.get("points_ratio", 1), "parameters.coin.points_ratio"),
            }
        }
    if isinstance(raw.get("campaign"), dict):
        campaign = raw["campaign"]
        if not isinstance(campaign.get("id"), str):
            raise InvalidPayload("Property .parameters.campaign.id is required")
        out: dict[str, Any] = {"id": campaign["id"]}
        for name in ("balance", "type"):
            if campaign.get(name) is not None:
                out[name] = campaign[name]
        return "CAMPAIGN", {"campaign": out}
    if isinstance(raw.get("product"), dict):
        product = raw["product"]
        if not isinstance(product.get("id"), str):
            raise InvalidPayload("Property .parameters.product.id is required")
        return "MATERIAL", {"product": {"id": product["id"], "sku_id": product.get("sku_id")}}
    raise InvalidPayload("Property .parameters should hold one of campaign, coin or product")


def _fields(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "name" in body or not partial:
        if not isinstance(body.get("name"), str) or not body["name"]:
            raise InvalidPayload("Property .name is required and should be a non-empty string")
        fields["name"] = body["name"]
    if "parameters" in body or not partial:
        fields["type"], fields["parameters"] = _parameters(body.get("parameters"))
    if body.get("stock") is not None:
        stock = body["stock"]
        if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
            raise InvalidPayload("Property .stock should be a non-negative integer")
        fields["stock"] = stock
    for name in ("attributes", "metadata"):
        if body.get(name) is not None:
            if not isinstance(body[name], dict):
                raise InvalidPayload(f"Property .{name} should be an object")
            fields[name] = body[name]
    return fields


async def _campaign_exists(conn: asyncpg.Connection, project_id: str, campaign_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT id, campaign_type FROM campaigns WHERE project_id = $1 AND (id = $2 OR name = $2) "
        "AND deleted_at IS NULL",
        project_id,
        campaign_id,
    )
    if row is None:
        raise NotFound.of("campaign", campaign_id)
    return row


async def create(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    fields = _fields(body, partial=False)
    if fields["type"] == "CAMPAIGN":
        await _campaign_exists(conn, project_id, fields["parameters"]["campaign"]["id"])
    values = {"id": new_id("rew"), "project_id": project_id, **fields}
    row = await conn.fetchrow(
        f"INSERT INTO rewards ({', '.join(values)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(values)))}) "
        "RETURNING *",
        *values.values(),
    )
    return view(row)


async def fetch(conn: asyncpg.Connection, project_id: str, reward_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM rewards WHERE project_id = $1 AND id = $2", project_id, reward_id)
    if row is None:
        raise NotFound.of("reward", reward_id)
    return row


async def get(conn: asyncpg.Connection, project_id: str, reward_id: str) -> dict[str, Any]:
    return view(await fetch(conn, project_id, reward_id))


async def update(conn: asyncpg.Connection, project_id: str, reward_id: str, body: dict[str, Any]) -> dict[str, Any]:
    current = await fetch(conn, project_id, reward_id)
    fields = _fields(body, partial=True)
    if "type" in fields and fields["type"] != current["type"]:
        raise InvalidPayload(f"A {current['type']} reward cannot become {fields['type']}")
    if not fields:
        return view(current)
    sets = ", ".join(f"{name} = ${i + 3}" for i, name in enumerate(fields))
    row = await conn.fetchrow(
        f"UPDATE rewards SET {sets}, updated_at = now() WHERE project_id = $1 AND id = $2 RETURNING *",
        project_id,
        reward_id,
        *fields.values(),
    )
    return view(row)


async def delete(conn: asyncpg.Connection, project_id: str, reward_id: str) -> None:
    await fetch(conn, project_id, reward_id)
    await conn.execute("DELETE FROM rewards WHERE project_id = $1 AND id = $2", project_id, reward_id)


async def list_page(conn: asyncpg.Connection, project_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    limit, offset = page_params(query)
    rows = await conn.fetch(
        "SELECT *, count(*) OVER () AS total FROM rewards WHERE project_id = $1 ORDER BY created_at, id "
        "LIMIT $2 OFFSET $3",
        project_id,
        limit,
        offset,
    )
    total = (
        rows[0]["total"]
        if rows
        else await conn.fetchval("SELECT count(*) FROM rewards WHERE project_id = $1", project_id)
    )
    return {"object": "list", "data_ref": "data", "data": [view(r) for r in rows], "total": total}


# --- assignments -----------------------------------------------------------------------------------


def _loyalty_parameters(reward_type: str, raw: Any) -> tuple[int | None, bool]:
    """(points, auto_redeem): a member pays points for campaign and material rewards; COIN sets its own rate."""
    if reward_type == "COIN":
        return None, False
    loyalty = (raw or {}).get("loyalty") if isinstance(raw, dict) else None
    if not isinstance(loyalty, dict):
        raise InvalidPayload("Property .parameters.loyalty.points is required for this reward")
    points = loyalty.get("points")
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise InvalidPayload("Property .parameters.loyalty.points should be a non-negative integer")
    auto = loyalty.get("auto_redeem", False)
    if not isinstance(auto, bool):
        raise InvalidPayload("Property .parameters.loyalty.auto_redeem should be a boolean")
    return points, auto


async def assign(
    conn: asyncpg.Connection, project_id: str, reward_id: str, campaign_ref: Any, parameters: Any
) -> dict[str, Any]:
    reward = await fetch(conn, project_id, reward_id)
    if not isinstance(campaign_ref, str):
        raise InvalidPayload("Property .campaign is required")
    campaign = await _campaign_exists(conn, project_id, campaign_ref)
    if campaign["campaign_type"] == "REFERRAL_PROGRAM":
        # Referrer rewards (issue 9): given on each conversion, so they cost no points.
        if reward["type"] != "CAMPAIGN":
            raise InvalidPayload("Only CAMPAIGN rewards are assigned to referral programs")
        points, auto = None, False
    elif campaign["campaign_type"] != "LOYALTY_PROGRAM":
        raise InvalidPayload("Rewards are assigned to loyalty and referral programs")
    else:
        points, auto = _loyalty_parameters(reward["type"], parameters)
    row = await conn.fetchrow(
        "INSERT INTO reward_assignments (id, project_id, reward_id, campaign_id, points, auto_redeem) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, reward_id, campaign_id) DO NOTHING RETURNING *",
        new_id("rewa"),
        project_id,
        reward_id,
        campaign["id"],
        points,
        auto,
    )
    if row is None:
        raise InvalidPayload(f"Reward {reward_id} is already assigned to campaign {campaign['id']}")
    return assignment_view(row)


async def fetch_assignment(
    conn: asyncpg.Connection,
    project_id: str,
    assignment_id: str,
    *,
    reward_id: str | None = None,
    campaign_id: str | None = None,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM reward_assignments WHERE project_id = $1 AND id = $2", project_id, assignment_id
    )
    if (
        row is None
        or (reward_id and row["reward_id"] != reward_id)
        or (campaign_id and row["campaign_id"] != campaign_id)
    ):
        raise NotFound.of("reward_assignment", assignment_id)
    return row


async def update_assignment(
    conn: asyncpg.Connection, project_id: str, row: asyncpg.Record, body: dict[str, Any]
) -> dict[str, Any]:
    reward = await fetch(conn, project_id, row["reward_id"])
    if body.get("parameters") is None:
        return assignment_view(row)
    points, auto = _loyalty_parameters(reward["type"], body["parameters"])
    updated = await conn.fetchrow(
        "UPDATE reward_assignments SET points = $3, auto_redeem = $4, updated_at = now() "
        "WHERE project_id = $1 AND id = $2 RETURNING *",
        project_id,
        row["id"],
        points,
        auto,
    )
    return assignment_view(updated)


async def delete_assignment(conn: asyncpg.Connection, project_id: str, row: asyncpg.Record) -> None:
    await conn.execute("DELETE FROM reward_assignments WHERE project_id = $1 AND id = $2", project_id, row["id"])


async def list_assignments(
    conn: asyncpg.Connection,
    project_id: str,
    query: Mapping[str, str],
    *,
    reward_id: str | None = None,
    campaign_id: str | None = None,
) -> dict[str, Any]:
    limit, offset = page_params(query)
    where, args = ["project_id = $1"], [project_id]
    if reward_id is not None:
        args.append(reward_id)
        where.append(f"reward_id = ${len(args)}")
    if campaign_id is not None:
        args.append(campaign_id)
        where.append(f"campaign_id = ${len(args)}")
    clause = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM reward_assignments WHERE {clause}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM reward_assignments WHERE {clause} ORDER BY created_at, id LIMIT {limit} OFFSET {offset}",
        *args,
    )
    return {"object": "list", "data_ref": "data", "data": [assignment_view(r) for r in rows], "total": total}


async def member_rewards(conn: asyncpg.Connection, project_id: str, campaign_id: str) -> dict[str, Any]:
    rows = await conn.fetch(
        "SELECT a.*, r.id AS r_id, r.name, r.stock, r.redeemed, r.attributes, r.metadata, r.type, r.parameters, "
        "r.created_at AS r_created_at, r.updated_at AS r_updated_at FROM reward_assignments a "
        "JOIN rewards r ON r.id = a.reward_id WHERE a.project_id = $1 AND a.campaign_id = $2 "
        "ORDER BY a.created_at, a.id",
        project_id,
        campaign_id,
    )
    data = []
    for row in rows:
        reward = view(
            {**dict(row), "id": row["r_id"], "created_at": row["r_created_at"], "updated_at": row["r_updated_at"]}
        )
        data.append({"reward": reward, "assignment": assignment_view(row), "object": "loyalty_reward"})
    return {"object": "list", "data_ref": "data", "data": data, "total": len(data)}
