"""``python -m worker [--burst]``: one worker process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

import uvloop

from voucherd.loyalty import earning as loyalty_earning
from voucherd.platform.db import create_pool
from voucherd.platform.logs import configure_logging
from voucherd.platform.redis_client import create_redis, scripts_for
from voucherd.platform.settings import Settings
from worker.base import WorkerContext
from worker.loop import Consumer
from worker.tasks import discover
from worker.webhooks import run_dispatcher

logger = logging.getLogger(__name__)


async def run_loyalty_timer(ctx: WorkerContext, stop: asyncio.Event) -> None:
    """Issue 9: every ``loyalty_timer_ms``, wake the loyalty task of each project with a loyalty program,
    so pending points activate and points expire when no redemption or paid order rings it."""
    interval_s = ctx.settings.loyalty_timer_ms / 1000
    while not stop.is_set():
        try:
            await loyalty_earning.tick(ctx.redis, ctx.pool, ctx.settings.loyalty_timer_ms)
        except Exception:
            logger.exception("loyalty timer: wake-up failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def run_worker(settings: Settings, *, burst: bool = False) -> None:
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    redis = create_redis(settings.redis_url)
    ctx = WorkerContext(redis=redis, pool=pool, scripts=scripts_for(redis), settings=settings)
    consumer = Consumer(
        ctx,
        discover(),
        claim_idle_ms=settings.worker_claim_idle_ms,
        retention_ms=settings.stream_retention_s * 1000,
        linger_ms=settings.worker_linger_ms,
    )
    stop_dispatcher = asyncio.Event()  # issue 7: webhook deliveries run beside the consumer
    dispatcher = None if burst else asyncio.create_task(run_dispatcher(ctx, stop_dispatcher))
    timed = not burst and settings.loyalty_timer_ms > 0  # issue 9: the loyalty timer stops with the dispatcher
    timer = asyncio.create_task(run_loyalty_timer(ctx, stop_dispatcher)) if timed else None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.stop)
    try:
        await consumer.run(burst=burst)
    finally:
        stop_dispatcher.set()
        if dispatcher is not None:
            await asyncio.gather(dispatcher, return_exceptions=True)
        if timer is not None:
            await asyncio.gather(timer, return_exceptions=True)
        await redis.aclose()
        await pool.close()


def run(settings: Settings, *, burst: bool = False) -> None:
    """One worker on uvloop, as the server runs: under redemption load about a fifth of the worker's
    samples were the stock selector loop's socket reads and writes (to PostgreSQL and Redis)."""
    uvloop.run(run_worker(settings, burst=burst))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker")
    parser.add_argument("--burst", action="store_true", help="exit once every stream is drained")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings)
    run(settings, burst=args.burst)


if __name__ == "__main__":
    main()
