"""``voucherd import`` and ``voucherd export``: CSV files in and out, with progress on stderr.

An import is the same asynchronous action the API's ``importCSV`` endpoints start (so a
worker must be running, as under ``voucherd run``); the command waits for it and draws
its progress. An export streams rows from PostgreSQL with ``COPY … TO STDOUT`` (the SQL of the
API's exports, voucherd.jobs.export_fields), so a million rows never sit in memory.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.jobs import export_fields
from voucherd.platform import async_actions

IMPORT_TYPES = {
    "vouchers": "VOUCHERS.IMPORT_CSV",
    "customers": "CUSTOMERS.IMPORT_CSV",
    "products": "PRODUCTS.IMPORT_CSV",
    "skus": "SKUS.IMPORT_CSV",
}

# kind -> (exported object, [(CSV heading, export field)], scope): the fields are those of the API's exports
# (voucherd.jobs.export_fields), under the command's own headings.
EXPORTS: dict[str, tuple[str, list[tuple[str, str]], dict[str, str] | None]] = {
    "vouchers": (
        "voucher",
        [("code", "code"), ("id", "id"), ("campaign_id", "campaign_id"), ("type", "voucher_type"),
         ("active", "active"), ("holder_id", "customer_id"), ("redemption_quantity", "redemption_quantity"),
         ("redeemed_quantity", "redemption_count"), ("gift_balance", "gift_balance"),
         ("loyalty_balance", "loyalty_balance"), ("created_at", "created_at")],
        None,
    ),
    "customers": (
        "customer",
        [(name, name) for name in ("id", "source_id", "name", "email", "phone", "metadata", "created_at")],
        None,
    ),
    "redemptions": (
        "redemption",
        [(name, name) for name in ("id", "date", "result", "status", "voucher_code", "campaign_id", "customer_id",
                                   "order_id", "parent_id", "failure_code")],
        {"column": "object", "value": "redemption"},
    ),
    "orders": (
        "order",
        [(name, name) for name in ("id", "source_id", "status", "amount", "discount_amount", "customer_id",
                                   "created_at")],
        None,
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
    """Stream the CSV of ``kind`` into ``out`` with ``COPY … TO STDOUT`` (the API's exports run the same SQL)."""
    exported_object, columns, scope = EXPORTS[kind]
    query = export_fields.build(
        exported_object, {"fields": [f for _, f in columns]}, scope, headings=[h for h, _ in columns]
    )
    written = -1  # the heading line is not a row
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        total: int = await conn.fetchval(query.count_sql, project_id, *query.args)

        async def write(data: bytes) -> None:
            nonlocal written
            out.write(data.decode())
            written += data.count(b"\n")
            report(min(written, total), total)

        await conn.copy_from_query(query.sql, project_id, *query.args, output=write, format="csv", header=True)
    written = total  # a cell may hold a newline: the count is exact, the line count is not
    report(written, total)
    return written
