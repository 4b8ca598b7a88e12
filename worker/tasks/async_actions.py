"""Runs asynchronous actions announced on the ``async_actions`` stream."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from voucherd.platform import async_actions, metrics
from voucherd.platform.messages import Message
from worker import operations
from worker.base import TRANSIENT_ERRORS, WorkerContext, task
from worker.operations import OperationContext, OperationFailed

log = logging.getLogger(__name__)


# An action is announced inside the transaction that records it (so a failed announcement
# takes the record with it); an idle worker can read the announcement before that commits.
ANNOUNCED_BEFORE_COMMIT_S = 5.0


async def _claim_when_committed(ctx: WorkerContext, action_id: str) -> Any:
    """Claim the action once its row is visible; None when it finished already or never committed.

    Reading a missing row as "finished" dropped actions announced a moment before their commit:
    they stayed ENQUEUED for good.
    """
    deadline = time.monotonic() + ANNOUNCED_BEFORE_COMMIT_S
    while True:
        async with ctx.pool.acquire() as conn:
            row = await async_actions.claim(conn, action_id)
            if row is not None:
                return row
            if await async_actions.exists(conn, action_id):
                # Visible now, but the claim above may have run just before the commit: claim again
                # (None now really means finished, or claimed by another worker).
                return await async_actions.claim(conn, action_id)
        if time.monotonic() > deadline:
            log.warning("async action %s was announced but never committed", action_id)
            return None
        await asyncio.sleep(0.02)


@task(async_actions.STREAM, batch_size=1, timeout_s=30 * 60, max_tries=5)
async def run_async_actions(ctx: WorkerContext, messages: list[Message]) -> None:
    registry = operations.discover()
    for message in messages:
        action_id = message.payload.get("action_id", "")
        row = await _claim_when_committed(ctx, action_id)
        if row is None:
            continue  # already finished (a redelivery after a lost acknowledgement), or never committed
        op = OperationContext(
            pool=ctx.pool,
            redis=ctx.redis,
            scripts=ctx.scripts,
            settings=ctx.settings,
            project_id=row["project_id"],
            action_id=action_id,
            upload=row["upload"],
        )
        started = time.perf_counter()
        function = registry.get(row["type"])
        try:
            if function is None:
                raise OperationFailed({"message": f"no operation handles {row['type']}"})
            result, ok = await function(op, row["params"] or {}), True
        except OperationFailed as failure:
            result, ok = failure.result, False
        except TRANSIENT_ERRORS:
            raise  # the loop retries the action once the connection is back
        except Exception as exc:
            log.exception("async action %s (%s) failed", action_id, row["type"])
            result, ok = {"message": f"{type(exc).__name__}: {exc}"}, False
        async with ctx.pool.acquire() as conn:
            await async_actions.finish(conn, action_id, ok=ok, result=result)
        queued = time.time() - row["created_at"].timestamp()  # issue 7: enqueue-to-done per action type
        await metrics.observe(ctx.redis, row["type"], [queued])
        log.info(
            "async action %s %s %s in %.0f ms",
            action_id,
            row["type"],
            "done" if ok else "failed",
            (time.perf_counter() - started) * 1000,
            extra={"task": row["type"], "status": "done" if ok else "failed"},
        )
