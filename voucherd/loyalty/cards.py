"""Loyalty card points: moved in Redis by Lua, then recorded in PostgreSQL.

Every move is one ``loyalty_points.lua`` call (guards: the card exists, a removal never goes below
what other live sessions reserved nor below zero, an optional once-guard) followed by one PostgreSQL
transaction that writes the transaction row (``vtx_``), the points bucket that will expire, and
PostgreSQL's copy of the balance. Rows take ids derived from what caused the move, so a replayed
cause writes nothing twice; a request whose PostgreSQL write fails gives the points back.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.definitions import voucher_state
from voucherd.platform import keys
from voucherd.platform.errors import InvalidPayload, NotFound, VoucherdError
from voucherd.platform.ids import new_id, stable_id
from voucherd.platform.scripts import SOURCES
from voucherd.platform.timeutil import utcnow

EXPIRATION_TYPES = ("PROGRAM_RULES", "CUSTOM_DATE", "NON_EXPIRING")


class NotEnoughPoints(VoucherdError):
    key = "not_enough_points"
    message = "Not enough points"


def once_key(project_id: str) -> str:
    """HASH of once-guards of point moves (earning per trigger and rule, pending activations)."""
    return f"{keys.project_tag(project_id)}:loyaltyonce"


@dataclass(frozen=True)
class Move:
    code: str
    delta: int
    add_total: bool = True  # positive moves count towards lifetime points (and expiry arithmetic)


@dataclass(frozen=True)
class Moved:
    applied: bool  # False: the guard was already set (moved before)
    balances: list[tuple[int, int]]  # (balance, total) per card


async def move(
    redis: aioredis.Redis, pool: asyncpg.Pool, project_id: str, moves: list[Move], *, guard: str = ""
) -> Moved:
    """Move points on one or more cards at once; raises ``NotEnoughPoints`` when a card lacks them."""
    script = redis.register_script(SOURCES["loyalty_points"])
    card_keys: list[str] = []
    args: list[Any] = [int(utcnow().timestamp() * 1000), guard, len(moves)]
    for m in moves:
        card_keys += [
            keys.voucher_state(project_id, m.code),
            keys.voucher_locks(project_id, m.code),
            keys.voucher_lock_amounts(project_id, m.code),
        ]
        args += [m.delta, 1 if m.add_total else 0]
    for _attempt in range(3):
        reply = [int(x) for x in await script(keys=[once_key(project_id), *card_keys], args=args)]
        if reply[0] == 1:
            return Moved(True, [(reply[1 + 2 * i], reply[2 + 2 * i]) for i in range(len(moves))])
        if reply[0] == 2:
            return Moved(False, [])
        if reply[0] == -1:
            code = moves[reply[1] - 1].code
            raise NotEnoughPoints(f"Loyalty card {code} has {reply[2]} spendable points.")
        code = moves[reply[1] - 1].code
        if await voucher_state.load(redis, pool, project_id, code) is None:
            raise NotFound.of("voucher", code)
    raise NotFound.of("voucher", moves[0].code)


async def expire_card(redis: aioredis.Redis, pool: asyncpg.Pool, project_id: str, code: str, due: int) -> int:
    script = redis.register_script(SOURCES["loyalty_expire"])
    for _attempt in range(2):
        reply = [int(x) for x in await script(keys=[keys.voucher_state(project_id, code)], args=[due])]
        if reply[0] == 1:
            return reply[1]
        if await voucher_state.load(redis, pool, project_id, code) is None:
            return 0
    return 0


# --- expiry dates ----------------------------------------------------------------------------------


def _add_months(value: datetime, months: int) -> datetime:
    month = value.month - 1 + months
    year = value.year + month // 12
    month = month % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def _end_of_month(year: int, month: int) -> datetime:
    return datetime(year, month, calendar.monthrange(year, month)[1], 23, 59, 59, 999000, tzinfo=UTC)


def expiry_from_rules(rules: dict[str, Any] | None, start: datetime) -> datetime | None:
    """When points added at ``start`` expire under a program's (or earning rule's) expiration rules."""
    if not rules:
        return None
    period_type = rules.get("period_type")
    value = int(rules.get("period_value") or 0)
    if period_type == "MONTH":
        end = _add_months(start, value)
    elif period_type == "DAY":
        end = start + timedelta(days=value)
    elif period_type == "FIXED_DAY_OF_YEAR" and rules.get("fixed_month") and rules.get("fixed_day"):
        end = start.replace(month=int(rules["fixed_month"]), day=int(rules["fixed_day"]), hour=23, minute=59)
        if end <= start:
            end = end.replace(year=end.year + 1)
        return end
    else:
        return None
    rounding = rules.get("rounding_type")
    if rounding == "END_OF_MONTH":
        return _end_of_month(end.year, end.month)
    if rounding == "END_OF_QUARTER":
        return _end_of_month(end.year, ((end.month - 1) // 3 + 1) * 3)
    if rounding == "END_OF_HALF_YEAR":
        return _end_of_month(end.year, 6 if end.month <= 6 else 12)
    if rounding == "END_OF_YEAR":
        return _end_of_month(end.year, 12)
    if rounding == "PARTICULAR_MONTH" and rules.get("rounding_value"):
        month = int(rules["rounding_value"])
        year = end.year if end.month <= month else end.year + 1
        return _end_of_month(year, month)
    return end


def program_expiry(template: dict[str, Any] | None, start: datetime) -> datetime | None:
    card = (template or {}).get("loyalty_card") or {}
    return expiry_from_rules(card.get("expiration_rules"), start)


def checked_expiry(body: dict[str, Any], template: dict[str, Any] | None, now: datetime) -> datetime | None:
    """The expiry of manually added points: ``expiration_type`` / ``expiration_date`` of the request."""
    kind = body.get("expiration_type") or "PROGRAM_RULES"
    if kind not in EXPIRATION_TYPES:
        raise InvalidPayload(f"Property .expiration_type should be one of {', '.join(EXPIRATION_TYPES)}")
    if kind == "NON_EXPIRING":
        return None
    if kind == "CUSTOM_DATE":
        raw = body.get("expiration_date")
        if not isinstance(raw, str):
            raise InvalidPayload("Property .expiration_date is required with expiration_type CUSTOM_DATE")
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidPayload("Property .expiration_date should be a date") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        if len(raw) <= 10:  # a date: the points last through that day
            parsed = parsed.replace(hour=23, minute=59, second=59, microsecond=999000)
        return parsed
    return program_expiry(template, now)


# --- PostgreSQL records ----------------------------------------------------------------------------


def balance_object(points: int, balance: int, total: int, voucher_id: str, operation: str) -> dict[str, Any]:
    return {
        "points": points,
        "total": total,
        "balance": balance,
        "type": "loyalty_card",
        "object": "balance",
        "related_object": {"type": "voucher", "id": voucher_id},
        "operation_type": operation,
    }


async def record(
    conn: asyncpg.Connection,
    project_id: str,
    card: asyncpg.Record | dict[str, Any],
    *,
    tx_id: str,
    tx_type: str,
    points: int,
    balance: int,
    total: int,
    reason: str | None = None,
    source_id: str | None = None,
    source: str = "API",
    details: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
    operation: str = "AUTOMATIC",
    add_total: bool = True,
) -> bool:
    """The transaction row, the expiring bucket and PostgreSQL's copy of the card; False if already written.

    Call inside a transaction.
    """
    body = {"balance": balance_object(points, balance, total, card["id"], operation), **(details or {})}
    inserted = await conn.fetchval(
        "INSERT INTO voucher_transactions (id, project_id, voucher_id, campaign_id, source_id, source, reason, "
        "type, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING RETURNING id",
        tx_id,
        project_id,
        card["id"],
        card["campaign_id"],
        source_id,
        source,
        reason,
        tx_type,
        body,
    )
    if inserted is None:
        return False
    added = points if points > 0 and add_total else 0
    await conn.execute(
        "UPDATE vouchers SET loyalty_balance = coalesce(loyalty_balance, 0) + $2, "
        "loyalty_points = coalesce(loyalty_points, 0) + $3, "
        "loyalty_subtracted = loyalty_subtracted + $4, "
        "loyalty_expired = loyalty_expired + $5, updated_at = now() WHERE id = $1",
        card["id"],
        points,
        added,
        -points if points < 0 and tx_type in ("POINTS_REMOVAL", "POINTS_TRANSFER_OUT") else 0,
        -points if tx_type == "POINTS_EXPIRATION" else 0,
    )
    if added and expires_at is not None:
        await conn.execute(
            "INSERT INTO loyalty_points_buckets (id, project_id, voucher_id, code, points, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            stable_id("lopb", tx_id),
            project_id,
            card["id"],
            card["code"],
            added,
            expires_at,
        )
    return True


async def card_row(conn: asyncpg.Connection, project_id: str, code_or_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM vouchers WHERE project_id = $1 AND (code = $2 OR id = $2) AND deleted_at IS NULL",
        project_id,
        code_or_id,
    )
    if row is None or row["type"] != "LOYALTY_CARD":
        raise NotFound.of("voucher", code_or_id)
    return row


async def adjust(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    card: asyncpg.Record,
    template: dict[str, Any] | None,
    body: dict[str, Any],
) -> dict[str, Any]:
    """A manual balance change of a card (``points`` ±); the balance object."""
    points = body.get("points")
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidPayload("Property .points should be a non-zero integer")
    for name in ("source_id", "reason"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidPayload(f"Property .{name} should be a string")
    now = utcnow()
    expires_at = checked_expiry(body, template, now) if points > 0 else None
    moved = await move(redis, pool, project_id, [Move(card["code"], points)])
    balance, total = moved.balances[0]
    try:
        async with conn.transaction():
            await record(
                conn,
                project_id,
                card,
                tx_id=new_id("vtx"),
                tx_type="POINTS_ADDITION" if points > 0 else "POINTS_REMOVAL",
                points=points,
                balance=balance,
                total=total,
                reason=body.get("reason"),
                source_id=body.get("source_id"),
                expires_at=expires_at,
                operation="MANUAL",
            )
    except BaseException:
        await move(redis, pool, project_id, [Move(card["code"], -points, add_total=False)])
        if points > 0:
            await _undo_total(redis, project_id, card["code"], points)
        raise
    return balance_object(points, balance, total, card["id"], "MANUAL")


async def _undo_total(redis: aioredis.Redis, project_id: str, code: str, points: int) -> None:
    await redis.hincrby(keys.voucher_state(project_id, code), "points_total", -points)


async def transfer(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    project_id: str,
    target: asyncpg.Record,
    template: dict[str, Any] | None,
    sources: list[dict[str, Any]],
) -> None:
    """Move points from source cards into ``target`` in one Lua call; each pair gets OUT/IN transactions."""
    if not sources:
        raise InvalidPayload("Send an array of {code, points} to transfer from")
    rows = []
    for i, item in enumerate(sources):
        if not isinstance(item, dict) or not isinstance(item.get("code"), str):
            raise InvalidPayload(f"Property [{i}].code is required")
        points = item.get("points")
        if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
            raise InvalidPayload(f"Property [{i}].points should be a positive integer")
        source = await card_row(conn, project_id, item["code"])
        if source["id"] == target["id"]:
            raise InvalidPayload("A card cannot transfer points to itself")
        rows.append((source, points, item))
    moves = [Move(source["code"], -points, add_total=False) for source, points, _ in rows]
    moves.append(Move(target["code"], sum(points for _, points, _ in rows)))
    moved = await move(redis, pool, project_id, moves)
    now = utcnow()
    expires_at = program_expiry(template, now)
    target_balance, target_total = moved.balances[-1]
    try:
        async with conn.transaction():
            for (source, points, item), (balance, total) in zip(rows, moved.balances, strict=False):
                out_id, in_id = new_id("vtx"), new_id("vtx")
                reason, source_id = item.get("reason"), item.get("source_id")
                await record(
                    conn,
                    project_id,
                    source,
                    tx_id=out_id,
                    tx_type="POINTS_TRANSFER_OUT",
                    points=-points,
                    balance=balance,
                    total=total,
                    details={"destination_voucher": _simple(target)},
                    operation="MANUAL",
                    reason=reason,
                    source_id=source_id,
                )
                await record(
                    conn,
                    project_id,
                    target,
                    tx_id=in_id,
                    tx_type="POINTS_TRANSFER_IN",
                    points=points,
                    balance=target_balance,
                    total=target_total,
                    details={"source_voucher": _simple(source)},
                    expires_at=expires_at,
                    operation="MANUAL",
                    reason=reason,
                    source_id=source_id,
                )
                await conn.execute(
                    "UPDATE voucher_transactions SET related_transaction_id = $2 WHERE id = $1", out_id, in_id
                )
                await conn.execute(
                    "UPDATE voucher_transactions SET related_transaction_id = $2 WHERE id = $1", in_id, out_id
                )
    except BaseException:
        back = [Move(m.code, -m.delta, add_total=False) for m in moves]
        await move(redis, pool, project_id, back)
        await _undo_total(redis, project_id, target["code"], moves[-1].delta)
        raise


def _simple(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "code": row["code"],
        "type": row["type"],
        "campaign_id": row["campaign_id"],
        "holder_id": row["holder_id"],
        "object": "voucher",
    }


# --- expiry ----------------------------------------------------------------------------------------


async def expire_due(
    conn: asyncpg.Connection, redis: aioredis.Redis, pool: asyncpg.Pool, project_id: str, now: datetime
) -> int:
    """Expire every card of the project with points due by ``now``; returns the points expired."""
    rows = await conn.fetch(
        "SELECT code, sum(points) AS due FROM loyalty_points_buckets WHERE project_id = $1 AND expires_at <= $2 "
        "GROUP BY code",
        project_id,
        now,
    )
    expired_total = 0
    for row in rows:
        expired = await expire_card(redis, pool, project_id, row["code"], int(row["due"]))
        if not expired:
            continue
        expired_total += expired
        card = await card_row(conn, project_id, row["code"])
        live = (await voucher_state.live_counters(redis, project_id, [card["code"]]))[0] or {}
        try:
            async with conn.transaction():
                await record(
                    conn,
                    project_id,
                    card,
                    tx_id=new_id("vtx"),
                    tx_type="POINTS_EXPIRATION",
                    points=-expired,
                    balance=live.get("points", 0),
                    total=live.get("points_total", 0),
                    source="AUTOMATIC",
                )
        except BaseException:
            await move(redis, pool, project_id, [Move(card["code"], expired, add_total=False)])
            raise
    return expired_total


async def card_summary(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, card: asyncpg.Record, now: datetime | None = None
) -> dict[str, Any]:
    """The ``loyalty_card`` object of a member: live balance, pending, expired and next expiry."""
    now = now or utcnow()
    live = (await voucher_state.live_counters(redis, project_id, [card["code"]]))[0] or {}
    balance = live.get("points", card["loyalty_balance"] or 0)
    total = live.get("points_total", card["loyalty_points"] or 0)
    pending = await conn.fetchval(
        "SELECT coalesce(sum(points), 0) FROM loyalty_pending_points "
        "WHERE project_id = $1 AND voucher_id = $2 AND status = 'PENDING'",
        project_id,
        card["id"],
    )
    buckets = await conn.fetch(
        "SELECT expires_at, sum(points) AS points FROM loyalty_points_buckets WHERE project_id = $1 AND code = $2 "
        "GROUP BY expires_at ORDER BY expires_at",
        project_id,
        card["code"],
    )
    # Outflow covers the soonest-expiring buckets first; the first bucket not fully covered is next.
    outflow = total - balance
    next_date, next_points = None, 0
    for bucket in buckets:
        left = int(bucket["points"]) - outflow
        outflow = max(0, outflow - int(bucket["points"]))
        if left > 0 and bucket["expires_at"] > now:
            next_date, next_points = bucket["expires_at"], min(left, balance)
            break
    return {
        "points": total,
        "balance": balance,
        "pending_points": int(pending),
        "expired_points": int(card["loyalty_expired"]),
        "subtracted_points": int(card["loyalty_subtracted"]),
        "next_expiration_date": next_date.date().isoformat() if next_date else None,
        "next_expiration_points": next_points or None,
    }
