"""A server killed in the middle of a redemption burst leaves no partial redemption.

The commit script moves the counter and appends the event in one atomic step, so after a
SIGKILL of the whole server (granian and its workers) and a restart: the voucher's redeemed
count equals the number of redemption events in the stream, which equals the rows the
worker persists, and every request that got a 200 is among them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import httpx2
import orjson
import pytest
import redis

from tests.conftest import ProjectKeys, drain_worker
from voucherd.platform import keys
from voucherd.platform.localstack import free_port
from voucherd.platform.settings import Settings

pytestmark = pytest.mark.faults


@contextmanager
def server(settings: Settings, port: int) -> Iterator[subprocess.Popen[bytes]]:
    served = settings.with_(port=port, server_processes=2, access_log=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "voucherd.cli", "serve"],
        env={**os.environ, **served.to_env()},
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: a SIGKILL reaches every worker
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                # Shutting down gracefully is not this test's subject; a slow one must not fail it.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def test_a_killed_server_leaves_no_partial_redemption(settings: Settings, project: ProjectKeys) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    body = {"redeemables": [{"object": "voucher", "id": "CRASH"}], "order": {"amount": 1000}}
    acknowledged: list[str] = []

    async def burst(kill: subprocess.Popen[bytes]) -> None:
        enough = asyncio.Event()
        limits = httpx2.Limits(max_connections=50)
        async with httpx2.AsyncClient(base_url=url, headers=project.headers, limits=limits, timeout=10) as client:

            async def one() -> None:
                try:
                    response = await client.post("/v1/redemptions", json=body)
                except httpx2.HTTPError:
                    return  # cut off by the kill: it may or may not have committed
                if response.status_code == 200:
                    acknowledged.append(response.json()["redemptions"][0]["id"])
                    if len(acknowledged) >= 150:
                        enough.set()

            tasks = [asyncio.create_task(one()) for _ in range(600)]
            await asyncio.wait_for(enough.wait(), 30)
            os.killpg(kill.pid, signal.SIGKILL)
            await asyncio.gather(*tasks)

    with server(settings, port) as first:
        created = httpx2.post(
            f"{url}/v1/vouchers/CRASH",
            json={"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}},
            headers=project.headers,
        )
        assert created.status_code == 200, created.text
        asyncio.run(burst(first))
        first.wait(10)

    # A new server answers, and the books balance.
    with server(settings, port):
        assert httpx2.post(f"{url}/v1/redemptions", json=body, headers=project.headers).status_code == 200
    drain_worker(settings)

    client = redis.Redis.from_url(settings.redis_url)
    redeemed = int(client.hget(keys.voucher_state(project.project_id, "CRASH"), "redeemed") or 0)
    stream = keys.project_stream(project.project_id, "redemptions")
    events = sum(len(orjson.loads(fields[b"data"])["applied"]) for _, fields in client.xrange(stream))

    async def persisted() -> set[str]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            rows = await conn.fetch("SELECT id FROM redemptions WHERE voucher_code = 'CRASH' AND result = 'SUCCESS'")
            return {r["id"] for r in rows}
        finally:
            await conn.close()

    stored = asyncio.run(persisted())
    assert 150 < redeemed < 601  # the kill landed mid-burst
    assert redeemed == events == len(stored)
    assert set(acknowledged) <= stored
