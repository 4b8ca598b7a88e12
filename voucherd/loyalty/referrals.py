"""Referral programs (REFERRAL_PROGRAM campaigns, issue 9): conversions, rewards and code holders (``rh_``).

A referral code is published to its referrer (its ``holder_id``). A referee converts by redeeming the
code (``conversion_event_type: redemption``, the default) or by a custom event that names the code
(``custom_event``). Either cause writes, in its own transaction, one ``referral_conversions`` row per
program and referee (so the second redemption by the same referee converts nothing) and a
``loyalty_triggers`` row of kind ``referral.conversion``. The worker's loyalty task then gives, once:
the referee reward (``referral_program.referee_reward``: points or gift credits on the referee's card
of the named campaign, published to them when they have none) and each referrer reward (CAMPAIGN
rewards assigned to the program: points, credits or a code of the target campaign). Redis moves carry
once-guards derived from the conversion, PostgreSQL rows ids derived from it, so a replay gives nothing
twice. Referral tiers (milestones by number of referees) are not modelled: every conversion gives the
program's referrer rewards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.catalog import customers, publications
from voucherd.definitions import voucher_state
from voucherd.loyalty import cards as loyalty_cards
from voucherd.loyalty.cards import Move
from voucherd.platform import keys, listing
from voucherd.platform.errors import InvalidPayload, InvalidQueryParams, NotFound
from voucherd.platform.ids import stable_id
from voucherd.platform.listing import page_params
from voucherd.platform.scripts import SOURCES
from voucherd.platform.timeutil import iso, utcnow

CONVERSION = "referral.conversion"  # loyalty_triggers.kind
ROLES = ("REFERRER", "REFEREE")


# --- conversions: recorded with their cause ----------------------------------------------------------


async def _referral_program(
    conn: asyncpg.Connection, project_id: str, campaign_id: str | None
) -> asyncpg.Record | None:
    if not campaign_id:
        return None
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, name, referral_program FROM campaigns WHERE project_id = $1 AND id = $2 "
        "AND campaign_type = 'REFERRAL_PROGRAM' AND deleted_at IS NULL",
        project_id,
        campaign_id,
    )
    return row


def _conversion_type(program: asyncpg.Record) -> str:
    return str((program["referral_program"] or {}).get("conversion_event_type") or "redemption")


async def _convert(
    conn: asyncpg.Connection,
    project_id: str,
    program: asyncpg.Record,
    voucher: Mapping[str, Any],
    referrer_id: str,
    referee_id: str,
    source_type: str,
    source_id: str,
    order_id: str | None,
    at: datetime,
) -> bool:
    """One conversion (in the cause's transaction); False when this referee already converted here."""
    conversion_id = stable_id("rfc", project_id, program["id"], referee_id)
    inserted = await conn.fetchval(
        "INSERT INTO referral_conversions (id, project_id, campaign_id, voucher_id, code, referrer_id, referee_id, "
        "source_type, source_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT DO NOTHING RETURNING id",
        conversion_id,
        project_id,
        program["id"],
        voucher["id"],
        voucher["code"],
        referrer_id,
        referee_id,
        source_type,
        source_id,
        at,
    )
    if inserted is None:
        return False
    for customer_id, role in ((referrer_id, "REFERRER"), (referee_id, "REFEREE")):
        await _add_holder(conn, project_id, voucher, program["id"], customer_id, role, {}, at)
    entry = {
        "campaign_id": program["id"],
        "referrer_id": referrer_id,
        "related_object_id": source_id,
        "related_object_type": source_type,
        "date": iso(at),
    }
    await conn.execute(
        "UPDATE customers SET referrals = jsonb_build_object('total', coalesce((referrals->>'total')::int, 0) + 1, "
        "'campaigns', coalesce(referrals->'campaigns', '[]'::jsonb) || jsonb_build_array($3::jsonb)) "
        "WHERE project_id = $1 AND id = $2",
        project_id,
        referee_id,
        entry,
    )
    if order_id:  # the referee's order names its referrer
        await conn.execute(
            "UPDATE orders SET referrer_id = $3 WHERE project_id = $1 AND id = $2 AND referrer_id IS NULL",
            project_id,
            order_id,
            referrer_id,
        )
    await conn.execute(
        "INSERT INTO loyalty_triggers (id, project_id, kind, customer_id, data) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (id) DO NOTHING",
        stable_id("ltrg", CONVERSION, conversion_id),
        project_id,
        CONVERSION,
        referee_id,
        {
            "conversion_id": conversion_id,
            "campaign_id": program["id"],
            "voucher": {"id": voucher["id"], "code": voucher["code"]},
            "referrer_id": referrer_id,
            "referee_id": referee_id,
            "source": {"type": source_type, "id": source_id},
        },
    )
    return True


async def record_redemptions(conn: asyncpg.Connection, bodies: Iterable[dict[str, Any]]) -> None:
    """For redemption bodies just persisted (carrying ``_project_id``), in the same transaction: each
    successful redemption of a referral code by someone other than its holder converts, when the
    program converts on redemption."""
    for body in bodies:
        voucher = body.get("voucher") or {}
        referrer_id, referee_id = voucher.get("holder_id"), body.get("customer_id")
        if (
            body.get("object") != "redemption"
            or body.get("result") != "SUCCESS"
            or body.get("related_object_type") != "voucher"
            or not voucher.get("is_referral_code")
            or not referrer_id
            or not referee_id
            or referrer_id == referee_id
        ):
            continue
        project_id = body["_project_id"]
        program = await _referral_program(conn, project_id, voucher.get("campaign_id"))
        if program is None or _conversion_type(program) != "redemption":
            continue
        await _convert(
            conn,
            project_id,
            program,
            voucher,
            referrer_id,
            referee_id,
            "redemption",
            body["id"],
            (body.get("order") or {}).get("id"),
            datetime.fromisoformat(body["date"].replace("Z", "+00:00")),
        )


async def record_event(
    conn: asyncpg.Connection,
    project_id: str,
    customer_id: str,
    name: str,
    referral: dict[str, Any] | None,
    event_id: str,
) -> bool:
    """A custom event naming a referral code (call in the event's transaction); True when it converted."""
    code = (referral or {}).get("code")
    if not code:
        return False
    voucher = await conn.fetchrow(
        "SELECT id, code, campaign_id, holder_id FROM vouchers WHERE project_id = $1 AND code = $2 "
        "AND deleted_at IS NULL AND is_referral_code",
        project_id,
        code,
    )
    if voucher is None:
        return False
    program = await _referral_program(conn, project_id, voucher["campaign_id"])
    if program is None or _conversion_type(program) != "custom_event":
        return False
    wanted = (program["referral_program"] or {}).get("custom_event") or {}
    if name not in (wanted.get("name"), wanted.get("id")):
        return False
    referrer_id = voucher["holder_id"]
    named = (referral or {}).get("referrer_id")
    if not referrer_id and named:  # an unpublished code: the event may name its referrer, a known customer
        referrer_id = await conn.fetchval(
            "SELECT id FROM customers WHERE project_id = $1 AND (id = $2 OR source_id = $2) "
            "ORDER BY (id = $2) DESC LIMIT 1",
            project_id,
            named,
        )
    if not referrer_id or referrer_id == customer_id:
        return False
    return await _convert(
        conn, project_id, program, voucher, referrer_id, customer_id, "custom_event", event_id, None, utcnow()
    )


# --- rewards: given by the worker's loyalty task -----------------------------------------------------


async def _card_of(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, campaign: asyncpg.Record, customer_id: str
) -> asyncpg.Record:
    """The customer's card in a loyalty program or gift card campaign; published to them if they have none."""
    query = (
        "SELECT * FROM vouchers WHERE project_id = $1 AND campaign_id = $2 AND holder_id = $3 "
        "AND deleted_at IS NULL ORDER BY created_at, id LIMIT 1"
    )
    row = await conn.fetchrow(query, project_id, campaign["id"], customer_id)
    if row is None:
        await publications.publish(
            conn,
            redis,
            project_id,
            {"campaign": {"name": campaign["name"]}, "customer": {"id": customer_id}},
            join_once=True,
        )
        row = await conn.fetchrow(query, project_id, campaign["id"], customer_id)
    if row is None:
        raise NotFound.of("voucher", campaign["id"])
    return row


async def _add_credits(
    redis: aioredis.Redis, pool: asyncpg.Pool, project_id: str, code: str, amount: int, guard: str
) -> None:
    script = redis.register_script(SOURCES["gift_credits_once"])
    for _attempt in range(2):
        reply = [
            int(x)
            for x in await script(
                keys=[loyalty_cards.once_key(project_id), keys.voucher_state(project_id, code)], args=[guard, amount]
            )
        ]
        if reply[0] != 0:
            return
        if await voucher_state.load(redis, pool, project_id, code) is None:
            break
    raise NotFound.of("voucher", code)


async def _give(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    campaign: asyncpg.Record,
    customer_id: str,
    amount: int,
    tx_id: str,
    details: dict[str, Any],
    now: datetime,
) -> dict[str, Any] | None:
    """Points (loyalty program), credits (gift cards) or one code (any other campaign) for a customer."""
    if campaign["campaign_type"] not in ("LOYALTY_PROGRAM", "GIFT_VOUCHERS"):
        publication = await publications.publish(
            conn, redis, project_id, {"campaign": {"name": campaign["name"]}, "customer": {"id": customer_id}}
        )
        voucher: dict[str, Any] | None = publication.get("voucher")
        return voucher
    if amount <= 0:
        return None
    card = await _card_of(conn, redis, project_id, campaign, customer_id)
    if campaign["campaign_type"] == "LOYALTY_PROGRAM":
        await loyalty_cards.move(redis, pool, project_id, [Move(card["code"], amount)], guard=tx_id)
        live = (await voucher_state.live_counters(redis, project_id, [card["code"]]))[0] or {}
        await loyalty_cards.record(
            conn,
            project_id,
            card,
            tx_id=tx_id,
            tx_type="POINTS_ADDITION",
            points=amount,
            balance=live.get("points", 0),
            total=live.get("points_total", 0),
            details=details,
            expires_at=loyalty_cards.program_expiry(campaign["voucher"], now),
            source="AUTOMATIC",
        )
        return {"id": card["id"], "code": card["code"], "object": "voucher"}
    await _add_credits(redis, pool, project_id, card["code"], amount, tx_id)
    live = (await voucher_state.live_counters(redis, project_id, [card["code"]]))[0] or {}
    balance = {
        "amount": amount,
        "total": live.get("amount", 0),
        "balance": live.get("balance", 0),
        "type": "gift_voucher",
        "operation_type": "AUTOMATIC",
        "object": "balance",
        "related_object": {"type": "voucher", "id": card["id"]},
    }
    inserted = await conn.fetchval(
        "INSERT INTO voucher_transactions (id, project_id, voucher_id, campaign_id, source, type, details) "
        "VALUES ($1, $2, $3, $4, 'AUTOMATIC', 'CREDITS_ADDITION', $5) ON CONFLICT (id) DO NOTHING RETURNING id",
        tx_id,
        project_id,
        card["id"],
        card["campaign_id"],
        {"balance": balance, **details},
    )
    if inserted is not None:
        await conn.execute(
            "UPDATE vouchers SET gift_balance = coalesce(gift_balance, 0) + $2, "
            "gift_amount = coalesce(gift_amount, 0) + $2, updated_at = now() WHERE id = $1",
            card["id"],
            amount,
        )
    return {"id": card["id"], "code": card["code"], "object": "voucher"}


async def _campaign(conn: asyncpg.Connection, project_id: str, ref: Any) -> asyncpg.Record | None:
    if not isinstance(ref, str) or not ref:
        return None
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, name, campaign_type, voucher FROM campaigns WHERE project_id = $1 AND (id = $2 OR name = $2) "
        "AND deleted_at IS NULL ORDER BY (id = $2) DESC LIMIT 1",
        project_id,
        ref,
    )
    return row


async def reward(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    trigger: asyncpg.Record,
    now: datetime,
) -> None:
    """Give a conversion's referee and referrer rewards (in the trigger's transaction, once)."""
    data = trigger["data"] or {}
    conversion_id = data["conversion_id"]
    program = await conn.fetchrow(
        "SELECT id, name, referral_program FROM campaigns WHERE project_id = $1 AND id = $2",
        project_id,
        data["campaign_id"],
    )
    if program is None:
        return
    details = {"referral": {"conversion_id": conversion_id, "campaign_id": program["id"], **data["source"]}}
    referee_reward = (program["referral_program"] or {}).get("referee_reward") or {}
    parent = referee_reward.get("related_object_parent") or {}
    target = await _campaign(conn, project_id, parent.get("id") or parent.get("name"))
    wanted_type = {"LOYALTY_CARD": "LOYALTY_PROGRAM", "GIFT_VOUCHER": "GIFT_VOUCHERS"}.get(
        str(referee_reward.get("type"))
    )
    if target is not None and target["campaign_type"] == (wanted_type or target["campaign_type"]):
        await _give(
            conn,
            redis,
            pool,
            project_id,
            target,
            data["referee_id"],
            int(referee_reward.get("amount") or 0),
            stable_id("vtx", conversion_id, "referee"),
            details,
            now,
        )
    assignments = await conn.fetch(
        "SELECT r.id, r.name, r.parameters FROM reward_assignments a JOIN rewards r ON r.id = a.reward_id "
        "WHERE a.project_id = $1 AND a.campaign_id = $2 AND r.type = 'CAMPAIGN' ORDER BY a.created_at, a.id",
        project_id,
        program["id"],
    )
    for row in assignments:
        parameters = (row["parameters"] or {}).get("campaign") or {}
        target = await _campaign(conn, project_id, parameters.get("id"))
        if target is None:
            continue
        given = await _give(
            conn,
            redis,
            pool,
            project_id,
            target,
            data["referrer_id"],
            int(parameters.get("balance") or 0),
            stable_id("vtx", conversion_id, "referrer", row["id"]),
            details,
            now,
        )
        await customers.record_activity(
            conn,
            project_id,
            data["referrer_id"],
            "customer.rewarded",
            {
                "customer": {"id": data["referrer_id"], "object": "customer"},
                "reward": {"id": row["id"], "name": row["name"], "type": "CAMPAIGN", "object": "reward"},
                "voucher": given,
                "referral": details["referral"],
            },
        )


# --- holders -----------------------------------------------------------------------------------------


def holder_view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": iso(row["created_at"]),
        "redeemable_id": row["voucher_id"],
        "redeemable_object": "voucher",
        "customer_id": row["customer_id"],
        "holder_role": row["holder_role"],
        "campaign_id": row["campaign_id"],
        "campaign_type": "REFERRAL_PROGRAM",
        "voucher_type": "DISCOUNT_VOUCHER",
        "metadata": row["metadata"] or {},
        "object": "redeemable_holder",
    }


async def _add_holder(
    conn: asyncpg.Connection,
    project_id: str,
    voucher: Mapping[str, Any],
    campaign_id: str,
    customer_id: str,
    role: str,
    metadata: dict[str, Any],
    at: datetime | None = None,
) -> asyncpg.Record:
    await conn.execute(
        "INSERT INTO referral_holders (id, project_id, voucher_id, code, campaign_id, customer_id, holder_role, "
        "metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, now())) ON CONFLICT DO NOTHING",
        stable_id("rh", voucher["id"], customer_id, role),
        project_id,
        voucher["id"],
        voucher["code"],
        campaign_id,
        customer_id,
        role,
        metadata,
        at,
    )
    row: asyncpg.Record = await conn.fetchrow(
        "SELECT * FROM referral_holders WHERE project_id = $1 AND voucher_id = $2 AND customer_id = $3 "
        "AND holder_role = $4",
        project_id,
        voucher["id"],
        customer_id,
        role,
    )
    return row


async def member_code(
    conn: asyncpg.Connection, project_id: str, member_id: str, campaign_ref: str | None = None
) -> asyncpg.Record:
    """A referral code by code or id (of the campaign named, when one is); its referrer is a holder."""
    voucher = await conn.fetchrow(
        "SELECT v.id, v.code, v.campaign_id, v.holder_id FROM vouchers v "
        "JOIN campaigns c ON c.id = v.campaign_id AND c.campaign_type = 'REFERRAL_PROGRAM' "
        "WHERE v.project_id = $1 AND (v.code = $2 OR v.id = $2) AND v.deleted_at IS NULL "
        "AND ($3::text IS NULL OR c.id = $3 OR c.name = $3)",
        project_id,
        member_id,
        campaign_ref,
    )
    if voucher is None:
        if campaign_ref is not None and await _campaign(conn, project_id, campaign_ref) is None:
            raise NotFound.of("campaign", campaign_ref)
        raise NotFound.of("voucher", member_id)
    if voucher["holder_id"]:
        await _add_holder(conn, project_id, voucher, voucher["campaign_id"], voucher["holder_id"], "REFERRER", {})
    return voucher


async def add_holders(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    voucher: asyncpg.Record,
    body: dict[str, Any],
) -> dict[str, Any]:
    """``POST …/holders``: customers (upserted) become referee holders of the code."""
    holders = body.get("holders")
    if not isinstance(holders, list) or not holders or not all(isinstance(h, dict) for h in holders):
        raise InvalidPayload("Property .holders should be a non-empty array of customers")
    metadata = listing.checked_metadata(body.get("metadata")) or {}
    out = []
    async with conn.transaction():
        for raw in holders:
            customer = await customers.upsert_from_request(conn, project_id, raw, redis=redis)
            if customer["id"] == voucher["holder_id"]:
                raise InvalidPayload(f"Customer {customer['id']} is the referrer of {voucher['code']}")
            row = await _add_holder(
                conn, project_id, voucher, voucher["campaign_id"], customer["id"], "REFEREE", metadata
            )
            out.append(holder_view(row))
    return {"holders": out}


async def remove_holder(conn: asyncpg.Connection, project_id: str, voucher: asyncpg.Record, holder_id: str) -> None:
    row = await conn.fetchrow(
        "SELECT * FROM referral_holders WHERE project_id = $1 AND voucher_id = $2 AND id = $3",
        project_id,
        voucher["id"],
        holder_id,
    )
    if row is None:
        raise NotFound.of("redeemable_holder", holder_id)
    if row["holder_role"] == "REFERRER":
        raise InvalidPayload("The referrer of a referral code cannot be removed from its holders")
    await conn.execute("DELETE FROM referral_holders WHERE id = $1", holder_id)


_FILTER = re.compile(r"^filters\[(\w+)\]\[conditions\]\[(\$\w+)\](?:\[\d*\])?$")


def _filters(query: Iterable[tuple[str, str]]) -> tuple[str, list[Any]]:
    """``filters[<field>][conditions][$op]`` on ``holder_role``, ``customer_id`` and ``id`` (AND)."""
    conditions: dict[tuple[str, str], list[str]] = {}
    for key, value in query:
        if not key.startswith("filters["):
            continue
        match = _FILTER.match(key)
        if match is None:
            if key == "filters[junction]":
                continue
            raise InvalidQueryParams(f"Unsupported filter {key}")
        field, op = match.groups()
        if field not in ("holder_role", "customer_id", "id") or op not in ("$is", "$is_not", "$in", "$not_in"):
            raise InvalidQueryParams(f"Unsupported filter {key}")
        conditions.setdefault((field, op), []).extend(v for v in value.split(",") if v)
    clauses, args = [], []
    for (field, op), values in conditions.items():
        args.append(values)
        negate = "NOT " if op in ("$is_not", "$not_in") else ""
        clauses.append(f" AND {negate}({field} = ANY(${{}}::text[]))")
    return "".join(clauses), args


async def list_holders(
    conn: asyncpg.Connection, project_id: str, voucher: asyncpg.Record, query: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    """``GET …/holders``: ``limit``, ``order`` (created_at, -created_at), ``starting_after_id``, ``filters``."""
    pairs = list(query)
    params = dict(pairs)
    limit, _ = page_params(params)
    order = params.get("order", "created_at")
    if order not in ("created_at", "-created_at"):
        raise InvalidQueryParams("Query param order should be created_at or -created_at")
    direction = "DESC" if order.startswith("-") else "ASC"
    clause, filter_args = _filters(pairs)
    args: list[Any] = [project_id, voucher["id"], *filter_args]
    clause = clause.format(*range(3, 3 + len(filter_args)))
    total = await conn.fetchval(
        f"SELECT count(*) FROM referral_holders WHERE project_id = $1 AND voucher_id = $2{clause}", *args
    )
    after = ""
    if params.get("starting_after_id"):
        anchor = await conn.fetchrow(
            "SELECT created_at, id FROM referral_holders WHERE project_id = $1 AND id = $2",
            project_id,
            params["starting_after_id"],
        )
        if anchor is None:
            raise InvalidQueryParams(f"Unknown starting_after_id {params['starting_after_id']}")
        args += [anchor["created_at"], anchor["id"]]
        cmp = "<" if direction == "DESC" else ">"
        after = f" AND (created_at, id) {cmp} (${len(args) - 1}, ${len(args)})"
    rows = await conn.fetch(
        f"SELECT * FROM referral_holders WHERE project_id = $1 AND voucher_id = $2{clause}{after} "
        f"ORDER BY created_at {direction}, id {direction} LIMIT {limit + 1}",
        *args,
    )
    data = [holder_view(r) for r in rows[:limit]]
    has_more = len(rows) > limit
    return {
        "object": "list",
        "data_ref": "data",
        "data": data,
        "total": total,
        "has_more": has_more,
        "more_starting_after": data[-1]["id"] if has_more and data else None,
    }
