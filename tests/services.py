"""Throw-away Redis and PostgreSQL servers for one test session, on free ports.

``TEST_REDIS_URL`` / ``TEST_DATABASE_URL`` name existing servers to use instead
(their data is wiped between tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from voucherd.platform.localstack import PostgresServer, RedisServer, free_port, port_is_free


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    # World-traversable, because as root PostgreSQL runs as the postgres user.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def redis_url() -> Iterator[str]:
    existing = os.environ.get("TEST_REDIS_URL")
    if existing:
        yield existing
        return
    with scratch_dir("voucherd-redis-") as folder:
        server = RedisServer(folder, free_port(), appendonly=False)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


@contextmanager
def own_redis_server(prefix: str) -> Iterator[RedisServer]:
    """A redis-server of the test's own (AOF, appendfsync always), for tests that kill and restart it."""
    with scratch_dir(prefix) as folder:
        server = RedisServer(folder, free_port(), appendonly=True, appendfsync="always")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def database_url() -> Iterator[str]:
    existing = os.environ.get("TEST_DATABASE_URL")
    if existing:
        yield existing
        return
    with scratch_dir("voucherd-pg-") as folder:
        server = PostgresServer(folder / "data", free_port(), durable=False)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


@contextmanager
def redis_cluster_url(nodes: int = 3) -> Iterator[str]:
    """A throw-away Redis Cluster of ``nodes`` masters on free loopback ports."""
    redis_cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    with scratch_dir("voucherd-cluster-") as folder:
        servers = [
            RedisServer(
                folder / str(i),
                _cluster_port(),
                appendonly=False,
                extra_args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            )
            for i in range(nodes)
        ]
        try:
            for server in servers:
                server.start()
            addresses = [f"127.0.0.1:{s.port}" for s in servers]
            subprocess.run(
                [redis_cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            _wait_for_cluster(redis_cli, servers[0].port)
            yield f"redis+cluster://127.0.0.1:{servers[0].port}/0"
        finally:
            for server in servers:
                server.stop()


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port <= 55_535 and port_is_free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def _wait_for_cluster(redis_cli: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = subprocess.run(
            [redis_cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, check=False
        ).stdout
        if "cluster_state:ok" in info:
            return
        time.sleep(0.1)
    raise RuntimeError("the Redis Cluster did not become ready")
