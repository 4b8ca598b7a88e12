"""Rebuild a project's Redis state from PostgreSQL, the system of record.

For a Redis that lost its data (no AOF, a new node) or a project moved between
deployments. Run it with the worker drained: PostgreSQL's counters trail Redis's by
the worker's lag, so by default only keys missing from Redis are written (a present
voucher hash keeps its live counters); ``force`` overwrites them.

What is rebuilt: each live voucher's state hash, customer ids by source_id, wallets
(codes by holder), segment membership, redemption counts (from the redemptions not
rolled back), then the definitions version is bumped so every process reloads.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from voucherd.catalog import segments
from voucherd.checkout import redemption_counters
from voucherd.definitions import version as definitions
from voucherd.definitions import voucher_state
from voucherd.platform import keys
from voucherd.platform.scripts import SOURCES

BATCH = 5_000


@dataclass
class RebuildReport:
    project_id: str
    vouchers_written: int = 0
    vouchers_kept: int = 0
    customers: int = 0
    wallets: int = 0
    segment_members: int = 0
    counters: int = 0
    notes: list[str] = field(default_factory=list)


async def _vouchers(conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, force: bool) -> tuple[int, int]:
    put = redis.register_script(SOURCES["voucher_put"])
    written = kept = 0
    last_id = ""
    mode = "replace" if force else "if_absent"
    while True:
        rows = await conn.fetch(
            """SELECT v.* FROM vouchers v LEFT JOIN campaigns c ON c.id = v.campaign_id
               WHERE v.project_id = $1 AND v.deleted_at IS NULL AND c.deleted_at IS NULL AND v.id > $2
               ORDER BY v.id LIMIT $3""",
            project_id,
            last_id,
            BATCH,
        )
        if not rows:
            return written, kept
        async with redis.pipeline(transaction=False) as pipe:
            for row in rows:
                fields: list[Any] = []
                for name, value in voucher_state.state_fields(row).items():
                    fields += [name, value]
                await put(keys=[keys.voucher_state(project_id, row["code"])], args=[mode, 0, *fields], client=pipe)
            results = await pipe.execute()
        written += sum(1 for r in results if int(r) == 1)
        kept += sum(1 for r in results if int(r) == 0)
        last_id = rows[-1]["id"]


async def _customer_ids_and_wallets(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str
) -> tuple[int, int]:
    customers = await conn.fetch(
        "SELECT id, source_id FROM customers WHERE project_id = $1 AND source_id IS NOT NULL", project_id
    )
    holders = await conn.fetch(
        """SELECT holder_id, array_agg(code ORDER BY created_at, id) AS codes FROM vouchers
           WHERE project_id = $1 AND holder_id IS NOT NULL AND deleted_at IS NULL GROUP BY holder_id""",
        project_id,
    )
    async with redis.pipeline(transaction=False) as pipe:
        for start in range(0, len(customers), BATCH):
            chunk = customers[start : start + BATCH]
            pipe.hset(keys.customer_ids(project_id), mapping={r["source_id"]: r["id"] for r in chunk})
        pipe.delete(keys.wallets(project_id))
        for start in range(0, len(holders), BATCH):
            chunk = holders[start : start + BATCH]
            pipe.hset(keys.wallets(project_id), mapping={r["holder_id"]: orjson.dumps(list(r["codes"])) for r in chunk})
        await pipe.execute()
    return len(customers), len(holders)


async def _counters(conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str) -> int:
    """Recount redemptions per scope, customer and period from the redemptions that still count."""
    rows = await conn.fetch(
        """SELECT customer_id, date, campaign_id, body #>> '{voucher,id}' AS voucher_id,
                  body #>> '{promotion_tier,id}' AS tier_id
           FROM redemptions
           WHERE project_id = $1 AND object = 'redemption' AND result = 'SUCCESS' AND status = 'SUCCEEDED'
             AND related_object_type <> 'redemption'""",
        project_id,
    )
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        scope = row["campaign_id"] or row["voucher_id"] or row["tier_id"]
        if not scope:
            continue
        for name in redemption_counters.distinct_fields(scope, row["date"], row["customer_id"]):
            if name.startswith("c:") and not row["customer_id"]:
                continue
            counts[name] += 1
    await redis.delete(keys.counters(project_id))
    items = list(counts.items())
    for start in range(0, len(items), BATCH):
        await redis.hset(keys.counters(project_id), mapping=dict(items[start : start + BATCH]))
    return len(counts)


async def rebuild(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, *, force: bool = False
) -> RebuildReport:
    report = RebuildReport(project_id)
    report.vouchers_written, report.vouchers_kept = await _vouchers(conn, redis, project_id, force)
    report.customers, report.wallets = await _customer_ids_and_wallets(conn, redis, project_id)
    report.segment_members = await segments.rebuild_cache(conn, redis, project_id)
    report.counters = await _counters(conn, redis, project_id)
    await definitions.bump(redis, project_id)
    if report.vouchers_kept and not force:
        report.notes.append(f"{report.vouchers_kept} voucher hashes were present and kept (use --force to overwrite)")
    return report
