"""An action read from the stream before the transaction that recorded it commits still runs."""

from __future__ import annotations

import asyncio
from typing import Any

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


def test_an_action_committed_between_the_claim_and_the_check_is_run(
    settings: Settings, project: ProjectKeys, monkeypatch: Any
) -> None:
    """The commit lands after the claim found no row and before the existence check saw one."""

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
                real_exists = async_actions.exists
                committed = []

                async def commit_then_check(check_conn: Any, checked_id: str) -> bool:
                    if not committed:  # the first check: the commit lands now
                        await transaction.commit()
                        committed.append(True)
                    return await real_exists(check_conn, checked_id)

                monkeypatch.setattr(async_actions, "exists", commit_then_check)
                await asyncio.wait_for(
                    run_async_actions(
                        ctx, [Message("1-0", {"project_id": project.project_id, "action_id": action_id})]
                    ),
                    10,
                )
            async with pool.acquire() as conn:
                status: str = await conn.fetchval("SELECT status FROM async_actions WHERE id = $1", action_id)
            return status
        finally:
            await redis.aclose()
            await pool.close()

    # Before the fix the action was taken for finished and stayed ENQUEUED for good.
    assert asyncio.run(main()) == "FAILED"
