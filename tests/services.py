"""Throw-away Redis and PostgreSQL servers for one test session, on free ports.

``TEST_REDIS_URL`` / ``TEST_DATABASE_URL`` name existing servers to use instead
(their data is wiped between tests).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from voucherd.localstack import PostgresServer, RedisServer, free_port


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
