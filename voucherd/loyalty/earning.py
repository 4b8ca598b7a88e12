"""Earning rules (``ern_``) and the follow-ups that turn facts into points "a couple of seconds later".

A fact (an order paid, by redemption or over ``/v1/orders``; a custom event) is recorded as a row of
``loyalty_triggers`` in the transaction that records the fact itself, with an id derived from it (an
order is paid once, whichever path paid it). The worker's ``loyalty`` task (rung by a message on the
project's ``loyalty`` stream) then, per trigger: finds the programs whose earning rules match, the
customer's card in each, computes the points and either adds them in Redis (Lua, once per trigger
and rule) or records them as pending points; then marks the trigger done. It also activates pending
points that fell due and expires points by the programs' rules.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

import engine
from voucherd.catalog.activity import ORDER_PAID, SEGMENT_ENTERED, record_triggers, ring
from voucherd.definitions import vouchers
from voucherd.loyalty import cards as loyalty_cards
from voucherd.loyalty import referrals
from voucherd.loyalty import tiers as loyalty_tiers
from voucherd.loyalty.cards import Move
from voucherd.platform import keys
from voucherd.platform.errors import InvalidPayload, NotFound
from voucherd.platform.ids import new_id, stable_id
from voucherd.platform.listing import page_params
from voucherd.platform.timeutil import iso, utcnow

logger = logging.getLogger(__name__)

CALCULATIONS = {
    "ORDER_AMOUNT": ("order", "amount"),
    "ORDER_TOTAL_AMOUNT": ("order", "total_amount"),
    "ORDER_METADATA": ("order", "metadata"),
    "ORDER_ITEMS_QUANTITY": ("order_items", "quantity"),
    "ORDER_ITEMS_AMOUNT": ("order_items", "amount"),
    "ORDER_ITEMS_SUBTOTAL_AMOUNT": ("order_items", "subtotal_amount"),
    "CUSTOMER_METADATA": ("customer", "metadata"),
    "CUSTOM_EVENT_METADATA": ("custom_event", "metadata"),
}


# --- earning rules over the API --------------------------------------------------------------------


def rule_view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "validation_rule_id": row["validation_rule_id"],
        "loyalty": row["loyalty"],
        "event": row["event"],
        "source": {**(row["source"] or {}), "object_id": row["campaign_id"], "object_type": "campaign"},
        "active": row["active"],
        "start_date": iso(row["start_date"]),
        "expiration_date": iso(row["expiration_date"]),
        "validity_timeframe": row["validity_timeframe"],
        "validity_day_of_week": row["validity_day_of_week"],
        "validity_hours": row["validity_hours"],
        "metadata": row["metadata"] or {},
        "object": "earning_rule",
    }
    for name in ("custom_event", "segment", "loyalty_tier", "pending_points", "expiration_rules"):
        if row[name] is not None:
            out[name] = row[name]
    return out


def _check_section(section: Any, where: str, *, needs_property: bool) -> None:
    if not isinstance(section, dict):
        raise InvalidPayload(f"Property .{where} should be an object")
    for name in ("every", "points"):
        value = section.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidPayload(f"Property .{where}.{name} should be a positive integer")
    if needs_property and not isinstance(section.get("property"), str):
        raise InvalidPayload(f"Property .{where}.property is required")


def check_loyalty(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidPayload("Property .loyalty is required and should be an object")
    if raw.get("type") == "FIXED":
        points = raw.get("points")
        if isinstance(points, bool) or not isinstance(points, int) or points < 0:
            raise InvalidPayload("Property .loyalty.points should be a non-negative integer")
        return {"type": "FIXED", "points": points}
    if raw.get("type") != "PROPORTIONAL":
        raise InvalidPayload("Property .loyalty.type should be FIXED or PROPORTIONAL")
    calculation = raw.get("calculation_type")
    if calculation not in CALCULATIONS:
        raise InvalidPayload(f"Property .loyalty.calculation_type should be one of {', '.join(CALCULATIONS)}")
    group, name = CALCULATIONS[calculation]
    section = (raw.get(group) or {}).get(name) if isinstance(raw.get(group), dict) else None
    _check_section(section, f"loyalty.{group}.{name}", needs_property=name == "metadata")
    return {"type": "PROPORTIONAL", "calculation_type": calculation, group: {name: section}}


def _fields(conn_campaign: str, raw: Any, *, partial: bool) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidPayload("Each earning rule should be an object")
    fields: dict[str, Any] = {}
    if "event" in raw or not partial:
        event = raw.get("event")
        if not isinstance(event, str) or not event:
            raise InvalidPayload("Property .event is required")
        fields["event"] = event
        if event == SEGMENT_ENTERED and not isinstance(raw.get("segment"), dict):
            raise InvalidPayload("An earning rule on customer.segment.entered needs .segment{id}")
        custom = event not in (ORDER_PAID, SEGMENT_ENTERED) and not event.startswith("customer.loyalty.tier.")
        if custom and not isinstance(raw.get("custom_event"), dict):
            raise InvalidPayload("An earning rule on a custom event needs .custom_event{schema_id}")
    if "loyalty" in raw or not partial:
        fields["loyalty"] = check_loyalty(raw.get("loyalty"))
    for name in ("custom_event", "segment", "loyalty_tier", "expiration_rules", "source", "metadata"):
        if raw.get(name) is not None:
            if not isinstance(raw[name], dict):
                raise InvalidPayload(f"Property .{name} should be an object")
            fields[name] = raw[name]
    if "source" in fields:
        fields["source"] = {"banner": fields["source"].get("banner")}
    if raw.get("pending_points") is not None:
        pending = raw["pending_points"]
        value = pending.get("period_value") if isinstance(pending, dict) else None
        if (
            not isinstance(pending, dict)
            or pending.get("period_type", "DAY") != "DAY"
            or not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 90)
        ):
            raise InvalidPayload("Property .pending_points should be {period_type: DAY, period_value: 1-90}")
        fields["pending_points"] = {"period_type": "DAY", "period_value": value}
    if raw.get("validation_rule_id") is not None:
        if not isinstance(raw["validation_rule_id"], str):
            raise InvalidPayload("Property .validation_rule_id should be a string")
        fields["validation_rule_id"] = raw["validation_rule_id"]
    if raw.get("active") is not None:
        fields["active"] = vouchers.check_bool(raw["active"], "active")
    validity = vouchers.check_validity(raw)
    fields.update({k: v for k, v in validity.items() if k in raw})
    return fields


async def _program(conn: asyncpg.Connection, project_id: str, ref: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM campaigns WHERE project_id = $1 AND (id = $2 OR name = $2) AND deleted_at IS NULL "
        "AND campaign_type = 'LOYALTY_PROGRAM'",
        project_id,
        ref,
    )
    if row is None:
        raise NotFound.of("campaign", ref)
    return row


async def create_rules(conn: asyncpg.Connection, project_id: str, campaign_ref: str, body: Any) -> list[dict[str, Any]]:
    program = await _program(conn, project_id, campaign_ref)
    items = body if isinstance(body, list) else [body]
    checked = [_fields(program["id"], item, partial=False) for item in items]
    out = []
    async with conn.transaction():
        for fields in checked:
            if fields.get("validation_rule_id"):
                exists = await conn.fetchval(
                    "SELECT 1 FROM validation_rules WHERE project_id = $1 AND id = $2",
                    project_id,
                    fields["validation_rule_id"],
                )
                if not exists:
                    raise NotFound.of("validation_rule", fields["validation_rule_id"])
            values = {"id": new_id("ern"), "project_id": project_id, "campaign_id": program["id"], **fields}
            row = await conn.fetchrow(
                f"INSERT INTO earning_rules ({', '.join(values)}) "
                f"VALUES ({', '.join(f'${i + 1}' for i in range(len(values)))}) RETURNING *",
                *values.values(),
            )
            out.append(rule_view(row))
    return out


async def fetch_rule(conn: asyncpg.Connection, project_id: str, campaign_ref: str, rule_id: str) -> asyncpg.Record:
    program = await _program(conn, project_id, campaign_ref)
    row = await conn.fetchrow(
        "SELECT * FROM earning_rules WHERE project_id = $1 AND campaign_id = $2 AND id = $3",
        project_id,
        program["id"],
        rule_id,
    )
    if row is None:
        raise NotFound.of("earning_rule", rule_id)
    return row


async def update_rule(
    conn: asyncpg.Connection, project_id: str, campaign_ref: str, rule_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    row = await fetch_rule(conn, project_id, campaign_ref, rule_id)
    fields = _fields(row["campaign_id"], body, partial=True)
    if not fields:
        return rule_view(row)
    sets = ", ".join(f"{name} = ${i + 3}" for i, name in enumerate(fields))
    updated = await conn.fetchrow(
        f"UPDATE earning_rules SET {sets}, updated_at = now() WHERE project_id = $1 AND id = $2 RETURNING *",
        project_id,
        rule_id,
        *fields.values(),
    )
    return rule_view(updated)


async def set_rule_active(
    conn: asyncpg.Connection, project_id: str, campaign_ref: str, rule_id: str, active: bool
) -> dict[str, Any]:
    await fetch_rule(conn, project_id, campaign_ref, rule_id)
    row = await conn.fetchrow(
        "UPDATE earning_rules SET active = $3, updated_at = now() WHERE project_id = $1 AND id = $2 RETURNING *",
        project_id,
        rule_id,
        active,
    )
    return rule_view(row)


async def delete_rule(conn: asyncpg.Connection, project_id: str, campaign_ref: str, rule_id: str) -> None:
    await fetch_rule(conn, project_id, campaign_ref, rule_id)
    await conn.execute("DELETE FROM earning_rules WHERE project_id = $1 AND id = $2", project_id, rule_id)


async def list_rules(
    conn: asyncpg.Connection, project_id: str, campaign_ref: str, query: Mapping[str, str]
) -> dict[str, Any]:
    program = await _program(conn, project_id, campaign_ref)
    limit, offset = page_params(query)
    rows = await conn.fetch(
        "SELECT * FROM earning_rules WHERE project_id = $1 AND campaign_id = $2 ORDER BY created_at, id "
        "LIMIT $3 OFFSET $4",
        project_id,
        program["id"],
        limit,
        offset,
    )
    total = await conn.fetchval(
        "SELECT count(*) FROM earning_rules WHERE project_id = $1 AND campaign_id = $2", project_id, program["id"]
    )
    return {"object": "list", "data_ref": "data", "data": [rule_view(r) for r in rows], "total": total}


async def rules_by_id(conn: asyncpg.Connection, project_id: str, campaign_id: str, ids: list[str]) -> dict[str, Any]:
    """The program's earning rules among ``ids`` (a loyalty tier's mapped rules), as a list."""
    rows = await conn.fetch(
        "SELECT * FROM earning_rules WHERE project_id = $1 AND campaign_id = $2 AND id = ANY($3::text[]) "
        "ORDER BY created_at, id",
        project_id,
        campaign_id,
        ids,
    )
    return {"object": "list", "data_ref": "data", "data": [rule_view(r) for r in rows], "total": len(rows)}


# --- triggers: recorded with their fact ------------------------------------------------------------


def _tx_type(body: dict[str, Any]) -> tuple[str, int] | None:
    rollback = body.get("object") == "redemption_rollback"
    credits = int((body.get("gift") or {}).get("amount") or 0)
    points = int((body.get("loyalty_card") or {}).get("points") or 0)
    if credits:
        return ("CREDITS_REFUND" if rollback else "CREDITS_REDEMPTION"), abs(credits) * (1 if rollback else -1)
    if points:
        return ("POINTS_REFUND" if rollback else "POINTS_REDEMPTION"), abs(points) * (1 if rollback else -1)
    return None


async def record_redemptions(conn: asyncpg.Connection, bodies: Iterable[dict[str, Any]]) -> None:
    """For redemption and rollback bodies just persisted (carrying ``_project_id``), in the same transaction:
    the gift credits / loyalty points transaction of each voucher child, and the ``order.paid`` trigger of
    each successful top-level redemption with an order and a customer. One round trip for each kind of row."""
    transactions: list[tuple[Any, ...]] = []
    triggers: list[tuple[str, str, str, str | None, Any]] = []
    for body in bodies:
        project_id = body["_project_id"]
        voucher = body.get("voucher") or {}
        kind = _tx_type(body) if body.get("related_object_type") == "voucher" else None
        if kind is not None and voucher.get("id"):
            tx_type, amount = kind
            is_gift = tx_type.startswith("CREDITS")
            details: dict[str, Any] = {
                "balance": {
                    "type": "gift_voucher" if is_gift else "loyalty_card",
                    "amount" if is_gift else "points": amount,
                    "object": "balance",
                    "operation_type": "AUTOMATIC",
                    "related_object": {"type": "voucher", "id": voucher["id"]},
                },
                "order": {
                    "id": (body.get("order") or {}).get("id"),
                    "source_id": (body.get("order") or {}).get("source_id"),
                },
                ("rollback" if body.get("object") == "redemption_rollback" else "redemption"): {"id": body["id"]},
            }
            if body.get("reward"):
                details["reward"] = {"id": body["reward"].get("id"), "name": body["reward"].get("name")}
            transactions.append((
                stable_id("vtx", body["id"]),
                project_id,
                voucher["id"],
                voucher.get("campaign_id"),
                tx_type,
                details,
                datetime.fromisoformat(body["date"].replace("Z", "+00:00")),
            ))  # fmt: skip
        top_level = body.get("redemption") is None or body.get("related_object_type") == "redemption"
        order = body.get("order") or {}
        if (
            body.get("object") == "redemption"
            and body.get("result") == "SUCCESS"
            and top_level
            and order.get("id")
            and body.get("customer_id")
        ):
            trigger_id = stable_id("ltrg", ORDER_PAID, order["id"])
            data = {"order": order, "redemption_id": body["id"]}
            triggers.append((trigger_id, project_id, ORDER_PAID, body["customer_id"], data))
    if triggers:
        earning = await _earning_on_order_paid(conn, {t[1] for t in triggers})
        triggers = [t for t in triggers if t[1] in earning]
    if transactions:
        await conn.executemany(
            "INSERT INTO voucher_transactions (id, project_id, voucher_id, campaign_id, source, type, details, "
            "created_at) VALUES ($1, $2, $3, $4, 'API', $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            transactions,
        )
    await record_triggers(conn, triggers)


async def _earning_on_order_paid(conn: asyncpg.Connection, project_ids: set[str]) -> set[str]:
    """Of these projects, those with an active program earning on ``order.paid``: only their redemptions
    leave a trigger. Writing one per redemption, then reading it back only to mark it done, was about a
    quarter of PostgreSQL's statement time per redemption in a project with no such rule."""
    rows = await conn.fetch(
        "SELECT DISTINCT e.project_id FROM earning_rules e JOIN campaigns c ON c.id = e.campaign_id "
        "WHERE e.project_id = ANY($1::text[]) AND e.event = $2 AND e.active AND c.active AND c.deleted_at IS NULL",
        sorted(project_ids),
        ORDER_PAID,
    )
    return {row["project_id"] for row in rows}


def timer_key() -> str:
    """Set for most of one interval by the worker whose timer rang, so N workers ring once per interval."""
    return f"{keys.PREFIX}:loyaltytimer"


async def tick(redis: aioredis.Redis, pool: asyncpg.Pool, interval_ms: int) -> list[str]:
    """The worker's periodic wake-up: ring the loyalty task of every project with a live loyalty program,
    so pending points fall due and points expire without waiting for a redemption or a paid order.
    At most once per interval across workers; returns the projects rung (none when another worker did)."""
    if not await redis.set(timer_key(), "1", nx=True, px=max(1, interval_ms * 9 // 10)):
        return []
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT project_id FROM campaigns WHERE campaign_type = 'LOYALTY_PROGRAM' AND deleted_at IS NULL"
        )
    project_ids = sorted(r["project_id"] for r in rows)
    await ring(redis, project_ids)
    return project_ids


# --- the worker side -------------------------------------------------------------------------------


def _order_amount(order: dict[str, Any], name: str) -> int:
    amount = int(order.get("amount") or 0)
    if name == "amount":
        return amount
    discount = int(order.get("discount_amount") or order.get("total_discount_amount") or 0)
    if order.get("total_amount") is not None:
        return int(order["total_amount"])
    return amount - discount


def _item_matches(item: dict[str, Any], section: dict[str, Any]) -> bool:
    wanted = section.get("id")
    if not wanted:
        return True
    return wanted in (
        item.get("product_id"),
        item.get("sku_id"),
        (item.get("product") or {}).get("id"),
        (item.get("sku") or {}).get("id"),
        item.get("source_id"),
    )


def points_for(loyalty: dict[str, Any], facts: dict[str, Any]) -> int:
    """Points an earning rule gives for the facts: ``order``, ``customer``, ``event_metadata``."""
    if loyalty.get("type") == "FIXED":
        return int(loyalty.get("points") or 0)
    calculation = loyalty.get("calculation_type")
    if calculation not in CALCULATIONS:
        return 0
    group, name = CALCULATIONS[calculation]
    section = loyalty[group][name]
    order = facts.get("order") or {}
    value: float = 0
    if group == "order" and name in ("amount", "total_amount"):
        value = _order_amount(order, name)
    elif group == "order":
        value = _number((order.get("metadata") or {}).get(section["property"]))
    elif group == "order_items":
        for item in order.get("items") or []:
            if not _item_matches(item, section):
                continue
            if name == "quantity":
                value += int(item.get("quantity") or 0)
            elif name == "amount":
                value += int(item.get("amount") or (item.get("price") or 0) * (item.get("quantity") or 1))
            else:
                value += int(item.get("subtotal_amount") or item.get("amount") or 0)
    elif group == "customer":
        value = _number(((facts.get("customer") or {}).get("metadata") or {}).get(section["property"]))
    else:
        value = _number((facts.get("event_metadata") or {}).get(section["property"]))
    return int(value // section["every"]) * int(section["points"]) if value > 0 else 0


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0


def _rule_applies(rule: asyncpg.Record, trigger: asyncpg.Record, now: datetime) -> bool:
    if not rule["active"]:
        return False
    if rule["start_date"] is not None and now < rule["start_date"]:
        return False
    if rule["expiration_date"] is not None and now > rule["expiration_date"]:
        return False
    data = trigger["data"] or {}
    if trigger["kind"] == ORDER_PAID:
        return bool(rule["event"] == ORDER_PAID)
    if trigger["kind"] == "custom_event":
        schema = (rule["custom_event"] or {}).get("schema_id")
        name = (rule["custom_event"] or {}).get("name")
        return rule["event"] == data.get("event") or data.get("event") in (schema, name)
    if trigger["kind"] == SEGMENT_ENTERED:
        return rule["event"] == SEGMENT_ENTERED and (rule["segment"] or {}).get("id") == data.get("segment_id")
    return False


async def _validation_ok(
    conn: asyncpg.Connection, project_id: str, rule: asyncpg.Record, facts: dict[str, Any], now: datetime
) -> bool:
    if not rule["validation_rule_id"]:
        return True
    raw = await conn.fetchrow(
        "SELECT * FROM validation_rules WHERE project_id = $1 AND id = $2", project_id, rule["validation_rule_id"]
    )
    if raw is None:
        return False
    compiled = engine.compile_rules(
        {
            "id": raw["id"],
            "rules": raw["rules"] or {},
            "bundle_rules": raw["bundle_rules"] or {},
            "error": raw["error"],
            "applicable_to": raw["applicable_to"] or {},
        }
    )
    ctx = {
        "order": facts.get("order") or {},
        "customer": facts.get("customer") or {},
        "now": now,
        "custom_event_metadata": facts.get("event_metadata") or {},
    }
    try:
        return bool(compiled.evaluate(ctx)["ok"])
    except engine.EngineInputError:
        return False


async def _member_card(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    program: asyncpg.Record,
    customer_id: str,
    code: str | None,
) -> asyncpg.Record | None:
    if code:
        row = await conn.fetchrow(
            "SELECT * FROM vouchers WHERE project_id = $1 AND code = $2 AND campaign_id = $3 AND deleted_at IS NULL",
            project_id,
            code,
            program["id"],
        )
        if row is not None:
            return row
    row = await conn.fetchrow(
        "SELECT * FROM vouchers WHERE project_id = $1 AND campaign_id = $2 AND holder_id = $3 "
        "AND deleted_at IS NULL ORDER BY created_at LIMIT 1",
        project_id,
        program["id"],
        customer_id,
    )
    if row is not None or not program["auto_join"]:
        return row
    from voucherd.catalog import publications  # joins the customer to the program (publishes a card)

    await publications.publish(
        conn,
        redis,
        project_id,
        {"campaign": {"name": program["name"]}, "customer": {"id": customer_id}},
        join_once=True,
    )
    return await conn.fetchrow(
        "SELECT * FROM vouchers WHERE project_id = $1 AND campaign_id = $2 AND holder_id = $3 "
        "AND deleted_at IS NULL ORDER BY created_at LIMIT 1",
        project_id,
        program["id"],
        customer_id,
    )


async def _active_rules(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    rules: list[asyncpg.Record] = await conn.fetch(
        "SELECT e.*, c.name AS program_name FROM earning_rules e JOIN campaigns c ON c.id = e.campaign_id "
        "WHERE e.project_id = $1 AND c.deleted_at IS NULL AND c.active ORDER BY e.created_at, e.id",
        project_id,
    )
    return rules


async def _earn(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    trigger: asyncpg.Record,
    now: datetime,
    rules: list[asyncpg.Record],
) -> None:
    """Points for one trigger from the project's active earning ``rules`` (read once per batch of triggers)."""
    data = trigger["data"] or {}
    customer_id = trigger["customer_id"]
    # Every redemption leaves an order-paid trigger; most projects have no rule for most triggers, and then
    # nothing more is read.
    applying = [rule for rule in rules if _rule_applies(rule, trigger, now)]
    if not customer_id or not applying:
        return
    customer = await conn.fetchrow(
        "SELECT id, source_id, metadata FROM customers WHERE project_id = $1 AND id = $2", project_id, customer_id
    )
    facts = {
        "order": data.get("order") or {},
        "customer": {"id": customer_id, "metadata": (customer["metadata"] if customer else None) or {}},
        "event_metadata": data.get("metadata") or {},
    }
    for rule in applying:
        if not await _validation_ok(conn, project_id, rule, facts, now):
            continue
        points = points_for(rule["loyalty"], facts)
        if points <= 0:
            continue
        program = await conn.fetchrow("SELECT * FROM campaigns WHERE id = $1", rule["campaign_id"])
        card = await _member_card(
            conn, redis, project_id, program, customer_id, (data.get("loyalty") or {}).get("code")
        )
        if card is None:
            continue
        tier = await loyalty_tiers.tier_of(conn, redis, project_id, card)  # a member's tier may remap the rule
        if tier is not None:
            points = loyalty_tiers.mapped((tier["earning_rules"] or {}).get(rule["id"]), points)
            if points <= 0:
                continue
        order = data.get("order") or {}
        details: dict[str, Any] = {
            "earning_rule": {"id": rule["id"], "source": {"banner": (rule["source"] or {}).get("banner")}},
            "event": {"id": trigger["id"], "type": trigger["kind"]},
        }
        if order.get("id"):
            details["order"] = {"id": order["id"], "source_id": order.get("source_id")}
        expires_at = loyalty_cards.expiry_from_rules(rule["expiration_rules"], now) or loyalty_cards.program_expiry(
            program["voucher"], now
        )
        if rule["pending_points"]:
            await conn.execute(
                "INSERT INTO loyalty_pending_points (id, project_id, voucher_id, code, campaign_id, customer_id, "
                "order_id, points, activates_at, expires_at, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                "$10, $11) ON CONFLICT (id) DO NOTHING",
                stable_id("lopp", trigger["id"], rule["id"]),
                project_id,
                card["id"],
                card["code"],
                program["id"],
                customer_id,
                order.get("id"),
                points,
                now + timedelta(days=int(rule["pending_points"]["period_value"])),
                expires_at,
                details,
            )
            continue
        tx_id = stable_id("vtx", trigger["id"], rule["id"])
        await loyalty_cards.move(redis, pool, project_id, [Move(card["code"], points)], guard=tx_id)
        live = await _live(redis, project_id, card["code"])
        await loyalty_cards.record(
            conn,
            project_id,
            card,
            tx_id=tx_id,
            tx_type="POINTS_ACCRUAL",
            points=points,
            balance=live.get("points", 0),
            total=live.get("points_total", 0),
            details=details,
            expires_at=expires_at,
            source="AUTOMATIC",
        )


async def _live(redis: aioredis.Redis, project_id: str, code: str) -> dict[str, int]:
    from voucherd.definitions import voucher_state

    return (await voucher_state.live_counters(redis, project_id, [code]))[0] or {}


async def activate(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    row: asyncpg.Record,
) -> dict[str, Any]:
    """Move one PENDING entry's points into its card (once, guarded by its id); the balance object."""
    card = await loyalty_cards.card_row(conn, project_id, row["voucher_id"])
    tx_id = stable_id("vtx", row["id"])
    await loyalty_cards.move(redis, pool, project_id, [Move(card["code"], int(row["points"]))], guard=tx_id)
    live = await _live(redis, project_id, card["code"])
    async with conn.transaction():
        await loyalty_cards.record(
            conn,
            project_id,
            card,
            tx_id=tx_id,
            tx_type="PENDING_POINTS_ACTIVATION",
            points=int(row["points"]),
            balance=live.get("points", 0),
            total=live.get("points_total", 0),
            details={"pending_points": pending_view(row), **(row["details"] or {})},
            expires_at=row["expires_at"],
            source="AUTOMATIC",
        )
        await conn.execute(
            "UPDATE loyalty_pending_points SET status = 'ACTIVATED', updated_at = now() WHERE id = $1", row["id"]
        )
    return loyalty_cards.balance_object(
        int(row["points"]), live.get("points", 0), live.get("points_total", 0), card["id"], "MANUAL"
    )


def pending_view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "voucher_id": row["voucher_id"],
        "campaign_id": row["campaign_id"],
        "customer_id": row["customer_id"],
        "order_id": row["order_id"],
        "points": row["points"],
        "activates_at": iso(row["activates_at"]),
        "details": row["details"] or {},
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "loyalty_pending_points",
    }


async def process(redis: aioredis.Redis, pool: asyncpg.Pool, project_id: str, now: datetime | None = None) -> int:
    """Run a project's open triggers, then due pending points and due expiries; returns triggers done."""
    now = now or utcnow()
    done = 0
    async with pool.acquire() as conn:
        while True:
            async with conn.transaction():
                triggers = await conn.fetch(
                    "SELECT * FROM loyalty_triggers WHERE project_id = $1 AND done_at IS NULL ORDER BY created_at "
                    "LIMIT 100 FOR UPDATE SKIP LOCKED",
                    project_id,
                )
                rules = await _active_rules(conn, project_id) if triggers else []
                for trigger in triggers:
                    if trigger["kind"] == referrals.CONVERSION:  # referee and referrer rewards
                        await referrals.reward(conn, redis, pool, project_id, trigger, now)
                    else:
                        await _earn(conn, redis, pool, project_id, trigger, now, rules)
                if triggers:
                    await conn.execute(
                        "UPDATE loyalty_triggers SET done_at = now() WHERE id = ANY($1::text[])",
                        [trigger["id"] for trigger in triggers],
                    )
            done += len(triggers)
            if len(triggers) < 100:
                break
        for row in await conn.fetch(
            "SELECT * FROM loyalty_pending_points WHERE project_id = $1 AND status = 'PENDING' AND activates_at <= $2",
            project_id,
            now,
        ):
            await activate(conn, redis, pool, project_id, row)
        await loyalty_cards.expire_due(conn, redis, pool, project_id, now)
    return done
