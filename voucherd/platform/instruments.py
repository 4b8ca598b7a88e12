"""In-process measurements of each server process, for ``GET /metrics``.

Under ``voucherd serve`` every granian worker is its own process, so the metrics use
prometheus-client's multiprocess mode: ``serve`` empties ``settings.metrics_dir`` and
points prometheus-client at it (``PROMETHEUS_MULTIPROC_DIR``) before the workers start;
each worker writes its samples to its own memory-mapped file, and a scrape of any worker
adds them up. In a single process (tests, ``python -m worker``) the default registry is
used. Recording a sample costs a few microseconds, which is why these live here rather
than in Redis like the worker's series (voucherd.platform.metrics).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ENGINE_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)

REQUESTS = Counter("voucherd_http_requests", "HTTP requests answered", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "voucherd_http_request_duration_seconds", "Time to answer a request", ["route", "method"], buckets=FAST_BUCKETS
)
SCRIPT_SECONDS = Histogram(
    "voucherd_redis_script_duration_seconds", "Round trip of one Lua script call", ["script"], buckets=FAST_BUCKETS
)
ENGINE_SECONDS = Histogram(
    "voucherd_engine_evaluation_seconds", "Time spent in the compiled engine", ["call"], buckets=ENGINE_BUCKETS
)
POOL_CONNECTIONS = Gauge(
    "voucherd_pool_connections", "Connections of a pool, per process", ["pool", "state"], multiprocess_mode="liveall"
)


# Children looked up once: labels() takes a lock and builds a key on every call.
ENGINE_STACK = ENGINE_SECONDS.labels("stack")
ENGINE_QUALIFY = ENGINE_SECONDS.labels("qualify")


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(*labels).observe(time.perf_counter() - started)


def registry(multiprocess_dir: str | None) -> CollectorRegistry:
    """What a scrape reads: every server process's samples added up, or this process's own."""
    if multiprocess_dir:
        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
        return shared
    return REGISTRY


def render(multiprocess_dir: str | None) -> bytes:
    return generate_latest(registry(multiprocess_dir))
