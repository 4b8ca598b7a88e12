"""A small keep-alive JSON client over ``http.client``, safe to share between threads.

The harness uses the standard library rather than an HTTP package so ``make loadtest`` needs nothing
beyond the dev extra; one connection per thread keeps seeding at thousands of calls per second.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

T = TypeVar("T")
R = TypeVar("R")


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:300].decode(errors='replace')}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Target:
    """Where the API is and the application keys that open it."""

    url: str
    app_id: str
    app_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-App-Id": self.app_id, "X-App-Token": self.app_token, "Content-Type": "application/json"}

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80


class Api:
    def __init__(self, target: Target, timeout: float = 60.0) -> None:
        self.target = target
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            host, port = self.target.host_port
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def raw(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        payload = None if body is None else orjson.dumps(body)
        # One retry on a connection the server closed while it sat idle in the pool.
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=payload, headers=self.target.headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.raw(method, path, body)
        if status >= 300:
            raise ApiError(method, path, status, data)
        return orjson.loads(data) if data else None

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, {} if body is None else body)


def parallel(fn: Callable[[T], R], items: Iterable[T], threads: int = 8) -> list[R]:
    """``fn`` over ``items`` on a few threads, results in input order; the first error is raised."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "condition") -> float:
    """Polls ``check`` until true; returns the seconds it took. Bounded by ``timeout``."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(interval)
    return time.perf_counter() - start
