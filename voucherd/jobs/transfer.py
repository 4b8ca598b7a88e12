"""``voucherd import`` and ``voucherd export``: CSV files in and out, with progress on stderr.

An import is the same asynchronous action the API's ``importCSV`` endpoints start (so a
worker must be running, as under ``voucherd run``); the command waits for it and draws
its progress. An export streams rows from PostgreSQL through a server-side cursor, so a
million rows never sit in memory.
"""

from __future__ import annotations

import asyncio
import csv
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from voucherd.platform import async_actions

IMPORT_TYPES = {
    "vouchers": "VOUCHERS.IMPORT_CSV",
    "customers": "CUSTOMERS.IMPORT_CSV",
    "products": "PRODUCTS.IMPORT_CSV",
    "skus": "SKUS.IMPORT_CSV",
}

# kind -> (columns, SQL selecting them in that order for one project, as $1)
EXPORTS: dict[str, tuple[list[str], str]] = {
    "vouchers": (
        ["code", "id", "campaign_id", "type", "active", "holder_id", "redemption_quantity", "redeemed_quantity",
         "gift_balance", "loyalty_balance", "created_at"],
        """SELECT code, id, campaign_id, type, active, holder_id, redemption_quantity, redeemed_quantity,
                  gift_balance, loyalty_balance, created_at
           FROM vouchers WHERE project_id = $1 AND deleted_at IS NULL ORDER BY created_at, id""",
    ),
    "customers": (
        ["id", "source_id", "name", "email", "phone", "metadata", "created_at"],
        """SELECT id, source_id, name, email, phone, metadata, created_at
           FROM customers WHERE project_id = $1 ORDER BY created_at, id""",
    ),
    "redemptions": (
        ["id", "date", "result", "status", "voucher_code", "campaign_id", "customer_id", "order_id", "parent_id",
         "failure_code"],
        """SELECT id, date, result, status, voucher_code, campaign_id, customer_id, order_id, parent_id, failure_code
           FROM redemptions WHERE project_id = $1 AND object = 'redemption' ORDER BY date, id""",
    ),
    "orders": (
        ["id", "source_id", "status", "amount", "discount_amount", "customer_id", "created_at"],
        """SELECT id, source_id, status, amount, discount_amount, customer_id, created_at
           FROM orders WHERE project_id = $1 ORDER BY created_at, id""",
    ),
}  # fmt: skip

Report = Callable[[int, int], None]


def progress_bar(stream: IO[str] = sys.stderr, width: int = 30) -> Report:
    """A one-line bar redrawn in place: ``[#########.....]  45%  4500/10000``."""
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        share = done / total if total else 1.0
        filled = int(width * share)
        elapsed = time.monotonic() - started
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {share:4.0%}  {done}/{total}  {elapsed:.1f}s")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return report


async def import_file(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    kind: str,
    data: bytes,
    *,
    report: Report,
    wait: bool = True,
    poll_s: float = 0.2,
    timeout_s: float = 3600,
) -> dict[str, Any]:
    """Start the CSV import as an async action; with ``wait``, follow it to its end."""
    started = await async_actions.enqueue(conn, redis, project_id, IMPORT_TYPES[kind], {}, upload=data)
    action_id = started["async_action_id"]
    if not wait:
        return {"id": action_id, "status": "ENQUEUED"}
    deadline = time.monotonic() + timeout_s
    while True:
        action = await async_actions.get(conn, project_id, action_id)
        report(action["progress"], 100)
        if action["status"] in ("DONE", "FAILED") or time.monotonic() > deadline:
            return action
        await asyncio.sleep(poll_s)


async def export(conn: asyncpg.Connection, project_id: str, kind: str, out: IO[str], *, report: Report) -> int:
    columns, sql = EXPORTS[kind]
    total = await conn.fetchval(f"SELECT count(*) FROM ({sql}) AS rows", project_id)
    writer = csv.writer(out)
    writer.writerow(columns)
    written = 0
    async with conn.transaction():
        async for row in conn.cursor(sql, project_id, prefetch=2000):
            writer.writerow([_cell(row[c]) for c in columns])
            written += 1
            if written % 5000 == 0:
                report(written, total)
    report(written, max(total, written))
    return written


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return "" if value is None else value
