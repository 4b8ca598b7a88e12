"""The PostgreSQL pool (voucherd.platform.db.create_pool) against a real server."""

from __future__ import annotations

import asyncio

from voucherd.platform import db


async def _commits(conn: object, database: str) -> int:
    value = await conn.fetchval(  # type: ignore[attr-defined]
        "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database
    )
    return int(value)


def test_a_released_connection_costs_no_statement(database_url: str) -> None:
    """asyncpg's default reset ran one statement per release; voucherd's pooled connections need none."""

    async def main() -> tuple[int, int]:
        pool = await db.create_pool(database_url, 1, 1)
        probe = await db.connect(database_url)
        try:
            database = await probe.fetchval("SELECT current_database()")
            await asyncio.sleep(0.6)  # the statistics collector flushes at most every 500 ms
            before = await _commits(probe, database)
            for _ in range(20):
                async with pool.acquire() as conn:
                    assert conn is not None
            await pool.close()  # a backend's statistics are flushed when it exits, at the latest
            await asyncio.sleep(0.6)
            after = await _commits(probe, database)
            return before, after
        finally:
            await probe.close()
            await pool.close()

    before, after = asyncio.run(main())
    # The probe's own two reads may show; twenty resets would be twenty more.
    assert after - before <= 3


def test_a_transaction_left_open_is_rolled_back_before_reuse(database_url: str) -> None:
    async def main() -> tuple[bool, int | None]:
        pool = await db.create_pool(database_url, 1, 1)
        try:
            async with pool.acquire() as conn:
                await conn.execute("CREATE TEMP TABLE IF NOT EXISTS t (n int)")
                await conn.execute("BEGIN")
                await conn.execute("INSERT INTO t VALUES (1)")
            async with pool.acquire() as conn:
                return conn.is_in_transaction(), await conn.fetchval("SELECT count(*) FROM t")
        finally:
            await pool.close()

    assert asyncio.run(main()) == (False, 0)
