"""The real server (granian, two processes) across a Redis crash: once Redis is back and ``/health`` says
so, every request succeeds (no 503 from a dead pooled connection), and the books still agree."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import httpx2
import pytest
import redis

from tests.conftest import ProjectKeys
from tests.processes import stop_group, wait_healthy
from tests.services import own_redis_server
from voucherd.checkout import redemption_records
from voucherd.platform import keys
from voucherd.platform.localstack import RedisServer, free_port
from voucherd.platform.settings import Settings

pytestmark = pytest.mark.slow

CODE = "RESTART"
BODY = {"redeemables": [{"object": "voucher", "id": CODE}], "order": {"amount": 1000}}


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with own_redis_server("voucherd-restart-") as server:
        yield server


def burst(url: str, headers: dict[str, str], total: int, concurrency: int = 32) -> Counter[int | str]:
    """``total`` redemptions, ``concurrency`` at a time; their statuses (or transport errors)."""

    async def run() -> Counter[int | str]:
        statuses: Counter[int | str] = Counter()
        gate = asyncio.Semaphore(concurrency)
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx2.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=15) as client:

            async def one() -> None:
                async with gate:
                    try:
                        response = await client.post("/v1/redemptions", json=BODY)
                    except httpx2.HTTPError as exc:
                        statuses[type(exc).__name__] += 1
                    else:
                        statuses[response.status_code] += 1

            await asyncio.gather(*(one() for _ in range(total)))
        return statuses

    return asyncio.run(run())


def test_every_request_succeeds_once_redis_is_back(
    settings: Settings, project: ProjectKeys, own_redis: RedisServer
) -> None:
    served = settings.with_(redis_url=own_redis.url, port=free_port(), server_processes=2, access_log=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "voucherd.cli", "serve"],
        env={**os.environ, **served.to_env()},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{served.port}"
    try:
        wait_healthy(url, proc)
        created = httpx2.post(
            f"{url}/v1/vouchers/{CODE}",
            json={"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}},
            headers=project.headers,
            timeout=30,
        )
        assert created.status_code == 200, created.text
        before = burst(url, project.headers, 300)  # fills each process's pool with connections
        assert before == {200: 300}, before

        assert own_redis.proc is not None
        own_redis.proc.kill()  # a crash: what the AOF holds comes back
        own_redis.proc.wait()
        time.sleep(0.5)
        own_redis.start()
        wait_healthy(url, proc)

        after = burst(url, project.headers, 400)
    finally:
        stop_group(proc)
    assert after == {200: 400}, after  # no request met a connection the crash had closed

    client = redis.Redis.from_url(own_redis.url)
    try:
        redeemed = int(client.hget(keys.voucher_state(project.project_id, CODE), "redeemed") or 0)
        entries = client.xlen(keys.project_stream(project.project_id, redemption_records.STREAM))
    finally:
        client.close()
    assert redeemed == entries == 700  # each acknowledged redemption moved the counter and the stream once
