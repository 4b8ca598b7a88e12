"""Fixtures: real servers for the session, a clean slate for each test, factories for apps and projects."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import hypothesis
import pytest
import redis
from starlette.testclient import TestClient

from server.app import build_app
from tests import services
from tests.processes import stop_group, wait_healthy
from voucherd.platform import db, projects
from voucherd.platform.localstack import free_port
from voucherd.platform.settings import Settings

# Timing deadlines make property tests flaky on a busy two-core machine; speed is measured elsewhere.
hypothesis.settings.register_profile("voucherd", deadline=None)
hypothesis.settings.load_profile("voucherd")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with services.redis_url() as url:
        yield url


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with services.database_url() as url:
        asyncio.run(db.migrate_dsn(url))
        yield url


async def _truncate_all(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )
        if tables:
            await conn.execute("TRUNCATE " + ", ".join(f'"{t["tablename"]}"' for t in tables) + " CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def clean(redis_url: str, database_url: str) -> None:
    """Each test starts with empty storage."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    asyncio.run(_truncate_all(database_url))


@pytest.fixture
def settings(redis_url: str, database_url: str, clean: None) -> Settings:
    return Settings(redis_url=redis_url, database_url=database_url, db_pool_max=4, log_format="text")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass(frozen=True)
class ProjectKeys:
    project_id: str
    app_id: str
    app_token: str
    client_id: str
    client_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-App-Id": self.app_id, "X-App-Token": self.app_token}


@pytest.fixture
def make_project(settings: Settings) -> Callable[..., ProjectKeys]:
    """Create a project straight in the database and return its keys."""

    def make(name: str = "Test project") -> ProjectKeys:
        async def create() -> Any:
            conn = await db.connect(settings.database_url)
            try:
                return await projects.create_project(conn, {"name": name})
            finally:
                await conn.close()

        project, server_key, client_key = asyncio.run(create())
        return ProjectKeys(project["id"], server_key.key_id, server_key.token, client_key.key_id, client_key.token)

    return make


@pytest.fixture
def project(make_project: Callable[..., ProjectKeys]) -> ProjectKeys:
    return make_project()


@pytest.fixture
def management_headers(settings: Settings) -> dict[str, str]:
    async def create() -> projects.KeyPair:
        conn = await db.connect(settings.database_url)
        try:
            return await projects.create_management_key(conn)
        finally:
            await conn.close()

    pair = asyncio.run(create())
    return {"X-Management-Id": pair.key_id, "X-Management-Token": pair.token}


def assert_error(response: Any, status: int, key: str) -> dict[str, Any]:
    """The response is a Voucherify error object with this status and key."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == status
    assert body["key"] == key
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], str) and body["details"]
    assert body["request_id"].startswith("v-")
    assert response.headers["x-request-id"] == body["request_id"]
    return body


@dataclass(frozen=True)
class LiveServer:
    url: str
    settings: Settings


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The real server (granian, one process) on a free port, for clients that need a socket (SDKs, load)."""
    port = free_port()
    served = settings.with_(port=port, server_processes=1)
    env = {**os.environ, **served.to_env()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voucherd.cli", "serve"], env=env, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    try:
        yield LiveServer(url, served)
    finally:
        stop_group(proc)


def drain_worker(settings: Settings) -> None:
    """Run the real worker (every registered task) until its streams are drained."""
    from voucherd.platform.db import create_pool
    from voucherd.platform.redis_client import create_redis, scripts_for
    from worker.base import WorkerContext
    from worker.loop import Consumer
    from worker.tasks import discover

    async def drain() -> None:
        pool = await create_pool(settings.database_url, 1, 4)
        client = create_redis(settings.redis_url)
        try:
            ctx = WorkerContext(redis=client, pool=pool, scripts=scripts_for(client), settings=settings)
            await Consumer(ctx, discover(), claim_idle_ms=100, block_ms=20).run(burst=True)
        finally:
            await client.aclose()
            await pool.close()

    asyncio.run(asyncio.wait_for(drain(), 300))
