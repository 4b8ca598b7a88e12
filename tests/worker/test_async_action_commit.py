"""An action read from the stream before the transaction that recorded it commits still runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import ProjectKeys
from voucherd.platform import async_actions, db
from voucherd.platform.messages import Message
from voucherd.platform.redis_client import create_redis, scripts_for
from voucherd.platform.settings import Settings
from worker.base import WorkerContext
from worker.tasks.async_actions import run_async_actions


def test_an_action_announced_before_its_commit_is_run_not_dropped(settings: Settings, project: ProjectKeys) -> None:
    async def main() -> str:
        pool = await db.create_pool(settings.database_url, 1, 4)
        redis = create_redis(settings.redis_url)
        ctx = WorkerContext(redis=redis, pool=pool, scripts=scripts_for(redis), settings=settings)
        try:
            async with pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                # Recorded and announced, not yet committed: what campaigns.create does.
                action = await async_actions.enqueue(conn, redis, project.project_id, "NO.SUCH_OPERATION", {})
                action_id = action["async_action_id"]
                worker = asyncio.create_task(
                    run_async_actions(ctx, [Message("1-0", {"project_id": project.project_id, "action_id": action_id})])
                )
                await asyncio.sleep(0.3)  # the worker has read the announcement and found no row yet
                assert not worker.done()
                await transaction.commit()
            await asyncio.wait_for(worker, 10)
            async with pool.acquire() as conn:
                status: str = await conn.fetchval("SELECT status FROM async_actions WHERE id = $1", action_id)
            return status
        finally:
            await redis.aclose()
            await pool.close()

    # It ran: an unknown operation fails the action; before the fix it stayed ENQUEUED for good.
    assert asyncio.run(main()) == "FAILED"


def test_an_action_committed_between_the_claim_and_the_existence_check_is_run(
    settings: Settings, project: ProjectKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> str:
        pool = await db.create_pool(settings.database_url, 1, 4)
        redis = create_redis(settings.redis_url)
        ctx = WorkerContext(redis=redis, pool=pool, scripts=scripts_for(redis), settings=settings)
        try:
            async with pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                action = await async_actions.enqueue(conn, redis, project.project_id, "NO.SUCH_OPERATION", {})
                action_id = action["async_action_id"]
                claim = async_actions.claim
                claims: list[object] = []

                async def claim_then_commit(claiming: Any, claimed_id: str) -> Any:
                    row = await claim(claiming, claimed_id)
                    if not claims:  # the first claim saw no row; the commit lands right after it
                        await transaction.commit()
                    claims.append(row)
                    return row

                monkeypatch.setattr(async_actions, "claim", claim_then_commit)
                message = Message("1-0", {"project_id": project.project_id, "action_id": action_id})
                await asyncio.wait_for(run_async_actions(ctx, [message]), 10)
            assert claims[0] is None
            async with pool.acquire() as conn:
                status: str = await conn.fetchval("SELECT status FROM async_actions WHERE id = $1", action_id)
            return status
        finally:
            await redis.aclose()
            await pool.close()

    # It ran (an unknown operation fails it); before the fix the visible row read as finished: ENQUEUED for good.
    assert asyncio.run(main()) == "FAILED"
