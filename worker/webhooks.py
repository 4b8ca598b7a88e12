"""The webhook dispatcher that runs beside the stream consumer in every worker process.

It is not a stream task: outbox rows are committed by PostgreSQL transactions (LISTEN/NOTIFY wakes it at
commit) and retries fall due with time (it polls every second), neither of which is a stream message.
"""

from __future__ import annotations

import asyncio

from voucherd.jobs.webhooks import Dispatcher
from voucherd.platform.settings import Settings
from worker.base import WorkerContext


def dispatcher_for(ctx: WorkerContext, *, poll_s: float = 1.0) -> Dispatcher:
    """A dispatcher with the retry schedule the settings name (``VOUCHERD_WEBHOOK_*``)."""
    settings: Settings = ctx.settings
    return Dispatcher(
        ctx.pool,
        base_delay_s=settings.webhook_retry_base_ms / 1000,
        max_attempts=settings.webhook_max_attempts,
        poll_s=min(poll_s, max(settings.webhook_retry_base_ms / 1000, 0.05)),
    )


async def run_dispatcher(ctx: WorkerContext, stop: asyncio.Event, *, poll_s: float = 1.0) -> None:
    await dispatcher_for(ctx, poll_s=poll_s).run(stop, ctx.settings.database_url)
