"""Writes redemption and rollback events behind to PostgreSQL (per-project streams)."""

from __future__ import annotations

from voucherd import loyalty_earning, redemption_records
from voucherd.messages import Message
from worker.base import WorkerContext, task


@task(redemption_records.STREAM, per_project=True, batch_size=500, timeout_s=120, max_tries=10)
async def persist_redemptions(ctx: WorkerContext, messages: list[Message]) -> None:
    async with ctx.pool.acquire() as conn:
        await redemption_records.persist(conn, [m.payload for m in messages])
    await loyalty_earning.ring(ctx.redis, [m.payload["project_id"] for m in messages if m.payload.get("project_id")])
