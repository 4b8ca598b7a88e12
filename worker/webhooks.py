"""The webhook dispatcher that runs beside the stream consumer in every worker process.

It is not a stream task: outbox rows are committed by PostgreSQL transactions (LISTEN/NOTIFY wakes it at
commit) and retries fall due with time (it polls every second), neither of which is a stream message.
"""

from __future__ import annotations

import asyncio

from voucherd.webhooks import Dispatcher
from worker.base import WorkerContext


async def run_dispatcher(ctx: WorkerContext, stop: asyncio.Event) -> None:
    await Dispatcher(ctx.pool).run(stop, ctx.settings.database_url)
