"""Migrations apply in order, once, even when several processes start together."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import asyncpg
import pytest

from voucherd.platform import db


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    name = f"mig_{os.urandom(4).hex()}"
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    yield database_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_migrations_apply_once_and_twice_is_harmless(fresh_database: str) -> None:
    every = [m.version for m in db.load_migrations()]
    assert every == sorted(every) and every[0] == 1

    assert asyncio.run(db.migrate_dsn(fresh_database)) == every
    assert asyncio.run(db.migrate_dsn(fresh_database)) == []

    async def recorded() -> list[int]:
        conn = await asyncpg.connect(fresh_database)
        try:
            return [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        finally:
            await conn.close()

    assert asyncio.run(recorded()) == every


def test_concurrent_migrators_apply_each_file_once(fresh_database: str) -> None:
    async def race() -> list[list[int]]:
        return list(await asyncio.gather(*(db.migrate_dsn(fresh_database) for _ in range(4))))

    results = asyncio.run(race())
    applied = [v for result in results for v in result]
    assert sorted(applied) == [m.version for m in db.load_migrations()]
