"""Each voucher's live state in Redis, so that validation and redemption never need PostgreSQL.

One HASH per voucher at ``keys.voucher_state(project_id, code)`` = ``vd:{p:<project_id>}:v:<code>``.
The ``{p:<project_id>}`` hash tag puts every live counter of a project in one Redis Cluster slot, so a
stacked redemption of several codes (plus its session locks and event stream) stays one atomic Lua
script even on a cluster.

Fields (all values are strings, as Redis stores them; "" or an absent field means none; codes made
by bulk generation leave their empty fields out):

==============  ==========================================================================================
``id``          voucher id (``v_…``)
``campaign_id`` campaign id, "" for a standalone voucher
``type``        ``DISCOUNT_VOUCHER`` | ``GIFT_VOUCHER`` | ``LOYALTY_CARD``
``active``      ``1`` | ``0`` — the voucher's own flag (the campaign's ``active`` is in its definition)
``start``       the voucher's own start_date, epoch ms, or "" (the campaign's dates are in its definition)
``exp``         the voucher's own expiration_date, epoch ms, or ""
``quantity``    redemption limit, "" = unlimited
``redeemed``    COUNTER: redeemed quantity (``HINCRBY``; guard ``redeemed <= quantity``)
``amount``      COUNTER (gift cards): lifetime credits
``balance``     COUNTER (gift cards): spendable credits, minor units
``points``      COUNTER (loyalty cards): spendable points balance
``points_total`` COUNTER (loyalty cards): lifetime points
``holder_id``   customer id the voucher was published to, or ""
``created_at``  creation time, ISO 8601 to the microsecond (absent in bulk-generated hashes until rewritten)
``def``         JSON object: the voucher's own definition. Always ``metadata`` (object), ``category_id``
                (str|null), ``is_referral_code`` (bool); and, only where the voucher overrides its
                campaign's voucher template, any of ``discount``, ``gift`` (``{effect}``), ``loyalty_card``,
                ``validity_timeframe``, ``validity_day_of_week``, ``validity_hours``. A key that is absent
                inherits from the campaign's ``voucher`` template (and campaign validity) in the cached
                campaign definitions; a standalone voucher carries all of its own.
``missing``     present (``1``) only in a short-lived negative marker for an unknown code: the whole
                hash is then ``{missing: 1}`` with a TTL, and the code must be treated as not found.
==============  ==========================================================================================

Counters only move in Lua (``HINCRBY``); definition changes patch non-counter fields of a present key
(``voucher_patch.lua``) and never create a partial hash. A missing key is rebuilt from PostgreSQL once by
:func:`load` (``voucher_put.lua`` mode ``if_absent``: never over a key that appeared meanwhile).

Codes of a large generation get no hash at first: each is an entry ``<template id>|<voucher id>`` in one
of the project's bucket HASHes (``keys.generated_codes``), the fields they share stored once
(``keys.generated_templates``), about a fifth of the Redis work of a hash per code. :func:`load` writes
the hash from the entry on the code's first read and drops the entry (``voucher_materialise.lua``), so an
entry only ever stands for a code whose row is as generated and whose hash was never written: a change to
such a row writes the hash from the entry first and then patches it (:func:`patch`), a deletion drops both
(:func:`forget`).
The hot path must also check the campaign (active, dates, validity, deleted) from the campaign
definitions, which move with ``voucherd.definitions.version.bump``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from voucherd.platform import keys
from voucherd.platform.scripts import SOURCES
from voucherd.platform.timeutil import iso_us

MISSING_TTL_MS = 5_000
COUNTER_FIELDS = ("redeemed", "amount", "balance", "points", "points_total")
_OWN_DEF_FIELDS = (
    "discount",
    "gift",
    "loyalty_card",
    "validity_timeframe",
    "validity_day_of_week",
    "validity_hours",
)

# A live voucher row by code (none when it, or its campaign, is in the bin).
ROW_SQL = (
    "SELECT v.* FROM vouchers v LEFT JOIN campaigns c ON c.id = v.campaign_id "
    "WHERE v.project_id = $1 AND v.code = $2 AND v.deleted_at IS NULL AND c.deleted_at IS NULL"
)


def epoch_ms(value: datetime | None) -> str:
    return "" if value is None else str(int(value.timestamp() * 1000))


def _num(value: int | None) -> str:
    return "" if value is None else str(int(value))


def own_definition(row: asyncpg.Record | dict[str, Any]) -> bytes:
    own: dict[str, Any] = {
        "metadata": row["metadata"] or {},
        "category_id": row["category_id"],
        "is_referral_code": bool(row["is_referral_code"]),
    }
    for name in _OWN_DEF_FIELDS:
        if row[name] is not None:
            own[name] = row[name]
    return orjson.dumps(own)


def state_fields(row: asyncpg.Record | dict[str, Any]) -> dict[str, str | bytes]:
    """The HASH fields of a ``vouchers`` row (counters as PostgreSQL last knew them)."""
    fields: dict[str, str | bytes] = {
        "id": row["id"],
        "campaign_id": row["campaign_id"] or "",
        "type": row["type"],
        "active": "1" if row["active"] else "0",
        "start": epoch_ms(row["start_date"]),
        "exp": epoch_ms(row["expiration_date"]),
        "quantity": _num(row["redemption_quantity"]),
        "redeemed": str(row["redeemed_quantity"]),
        "holder_id": row["holder_id"] or "",
        "def": own_definition(row),
    }
    created = row.get("created_at")
    if created is not None:  # qualifications order a customer's codes by it (microseconds keep them apart)
        fields["created_at"] = iso_us(created)
    if row["type"] == "GIFT_VOUCHER":
        fields["amount"] = _num(row["gift_amount"] or 0)
        fields["balance"] = _num(row["gift_balance"] or 0)
    elif row["type"] == "LOYALTY_CARD":
        fields["points"] = _num(row["loyalty_balance"] or 0)
        fields["points_total"] = _num(row["loyalty_points"] or 0)
    return fields


def definition_fields(row: asyncpg.Record | dict[str, Any]) -> dict[str, str | bytes]:
    """The non-counter fields, for patching a present hash after a definition change."""
    return {k: v for k, v in state_fields(row).items() if k not in COUNTER_FIELDS}


def _flat(fields: dict[str, str | bytes]) -> list[str | bytes]:
    flat: list[str | bytes] = []
    for name, value in fields.items():
        flat += [name, value]
    return flat


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


async def put(redis: aioredis.Redis, project_id: str, row: asyncpg.Record | dict[str, Any]) -> None:
    """Write a new (or re-created) voucher's state, replacing a stale hash or a "missing" marker."""
    script = redis.register_script(SOURCES["voucher_put"])
    await script(keys=[keys.voucher_state(project_id, row["code"])], args=["replace", 0, *_flat(state_fields(row))])


async def patch(redis: aioredis.Redis, project_id: str, row: asyncpg.Record | dict[str, Any]) -> None:
    """Rewrite the definition fields of a present hash; an absent one is rebuilt on its next load."""
    script = redis.register_script(SOURCES["voucher_patch"])
    async with redis.pipeline(transaction=False) as pipe:
        await materialise(pipe, project_id, row["code"])
        state_key = keys.voucher_state(project_id, row["code"])
        await script(keys=[state_key], args=_flat(definition_fields(row)), client=pipe)
        await pipe.execute()


async def materialise(pipe: Any, project_id: str, code: str) -> None:
    """Queue on ``pipe`` the writing of a generated code's hash from its entry (nothing when it has none).

    Before a patch: the patch then rewrites the definition fields of that hash, and its counters are the
    row's (they only move in the hash). A hash made later from an entry left in place would be the row as
    generated, not as changed.
    """
    script = pipe.register_script(SOURCES["voucher_materialise"])
    await script(
        keys=[
            keys.voucher_state(project_id, code),
            keys.generated_codes(project_id, code),
            keys.generated_templates(project_id),
        ],
        args=[code],
        client=pipe,
    )


def drop_generated(pipe: Any, project_id: str, codes: Iterable[str]) -> None:
    """Queue on ``pipe`` the removal of these codes' generated entries (one HDEL per bucket)."""
    by_bucket: dict[str, list[str]] = {}
    for code in codes:
        by_bucket.setdefault(keys.generated_codes(project_id, code), []).append(code)
    for bucket, names in by_bucket.items():
        pipe.hdel(bucket, *names)


async def forget(redis: aioredis.Redis, project_id: str, codes: list[str]) -> None:
    """Drop the state of deleted codes, and their generated entries (in batches; one slot per project)."""
    for start in range(0, len(codes), 1000):
        chunk = codes[start : start + 1000]
        if chunk:
            async with redis.pipeline(transaction=False) as pipe:
                drop_generated(pipe, project_id, chunk)
                pipe.delete(*(keys.voucher_state(project_id, code) for code in chunk))
                await pipe.execute()


async def live_counters(redis: aioredis.Redis, project_id: str, codes: list[str]) -> list[dict[str, int] | None]:
    """The live counters of these codes (one pipelined round trip); None where Redis has no state."""
    if not codes:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for code in codes:
            pipe.hmget(keys.voucher_state(project_id, code), ["id", *COUNTER_FIELDS])
        replies = await pipe.execute()
    out: list[dict[str, int] | None] = []
    for reply in replies:
        if reply[0] is None:
            out.append(None)
            continue
        out.append({name: int(v) for name, v in zip(COUNTER_FIELDS, reply[1:], strict=True) if v not in (None, b"")})
    return out


async def load(redis: aioredis.Redis, pool: asyncpg.Pool, project_id: str, code: str) -> dict[str, str] | None:
    """The voucher's state: one HGETALL; only when the key is missing, loaded back from PostgreSQL once.

    Unknown codes are remembered for ``MISSING_TTL_MS`` so a flood of bogus codes does not reach
    PostgreSQL; ``None`` means the code does not exist (or is in the bin).
    """
    key = keys.voucher_state(project_id, code)
    raw = await redis.hgetall(key)
    if not raw:  # a generated code read for the first time, or one Redis never had
        materialise = redis.register_script(SOURCES["voucher_materialise"])
        flat = await materialise(
            keys=[key, keys.generated_codes(project_id, code), keys.generated_templates(project_id)], args=[code]
        )
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
    if raw:
        return None if b"missing" in raw else _decode(raw)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(ROW_SQL, project_id, code)
    script = redis.register_script(SOURCES["voucher_put"])
    if row is None:
        await script(keys=[key], args=["missing", MISSING_TTL_MS])
        return None
    fields = state_fields(row)
    written = await script(keys=[key], args=["if_absent", 0, *_flat(fields)])
    if written:
        return {k: _text(v) for k, v in fields.items()}
    raw = await redis.hgetall(key)
    return None if not raw or b"missing" in raw else _decode(raw)
