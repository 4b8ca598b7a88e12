"""Writes redemption and rollback events behind to PostgreSQL (per-project streams)."""

from __future__ import annotations

from voucherd.catalog import activity
from voucherd.checkout import pending_redemptions, redemption_records
from voucherd.jobs import write_behind
from voucherd.platform.messages import Message
from worker.base import Retry, WorkerContext, task


@task(redemption_records.STREAM, per_project=True, batch_size=500, timeout_s=120, max_tries=10)
async def persist_redemptions(ctx: WorkerContext, messages: list[Message]) -> None:
    events = [m.payload for m in messages]
    async with ctx.pool.acquire() as conn:
        try:
            await write_behind.persist(conn, events)
        except write_behind.OriginalNotPersisted as exc:
            raise Retry(f"a rollback waits for its redemption: {exc}") from None
    # Only after the commit: from here PostgreSQL answers for these ids (read-your-writes, issue 17).
    await pending_redemptions.forget(ctx.redis, events)
    await activity.ring(ctx.redis, [m.payload["project_id"] for m in messages if m.payload.get("project_id")])
