"""Writes redemption and rollback events behind to PostgreSQL (per-project streams)."""

from __future__ import annotations

from voucherd.catalog import activity
from voucherd.checkout import redemption_records
from voucherd.jobs import write_behind
from voucherd.platform.messages import Message
from worker.base import WorkerContext, task


@task(redemption_records.STREAM, per_project=True, batch_size=500, timeout_s=120, max_tries=10)
async def persist_redemptions(ctx: WorkerContext, messages: list[Message]) -> None:
    async with ctx.pool.acquire() as conn:
        await write_behind.persist(conn, [m.payload for m in messages])
    await activity.ring(ctx.redis, [m.payload["project_id"] for m in messages if m.payload.get("project_id")])
