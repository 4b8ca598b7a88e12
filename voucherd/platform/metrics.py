"""Processing-time metrics: per task type the time from enqueue to done, per stream its lag.

Worker processes add their observations to Redis (one HASH of histogram bucket counts per task type), so
every process feeds the same series and any server process can expose them: ``render`` builds the
Prometheus text exposition (``GET /metrics``) with prometheus_client. Stream lag is read at scrape time
from the consumer group (XINFO GROUPS, XPENDING): messages not yet delivered, delivered but unacknowledged,
and the age of the oldest message not yet done.

Series:
``voucherd_task_enqueue_to_done_seconds{task}`` histogram — for a stream task, from the message's XADD (its
id) to its acknowledgement; for an async action (``task`` = its type, e.g. ``VOUCHERS.IMPORT_CSV``), from
``created_at`` to the end of the operation.
``voucherd_stream_lag_messages{stream}``, ``voucherd_stream_pending_messages{stream}``,
``voucherd_stream_oldest_age_seconds{stream}`` gauges.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from voucherd.platform import keys

log = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
GROUP = "voucherd"  # the consumer group of worker.loop
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _tasks_key() -> str:
    return f"{keys.PREFIX}:metrics:tasks"


def _streams_key() -> str:
    return f"{keys.PREFIX}:metrics:streams"


def _histogram_key(task: str) -> str:
    return f"{keys.PREFIX}:metrics:task:{task}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


async def observe(redis: aioredis.Redis, task: str, seconds: Iterable[float], stream_key: str | None = None) -> None:
    """Add durations to the task's histogram (one pipelined round trip). Never raises: metrics must not
    fail the work they measure."""
    counts: dict[str, int] = {}
    total, n = 0.0, 0
    for raw in seconds:
        value = max(0.0, raw)
        field = f"b{bisect.bisect_left(BUCKETS, value)}"
        counts[field] = counts.get(field, 0) + 1
        total += value
        n += 1
    if n == 0:
        return
    key = _histogram_key(task)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for field, count in counts.items():
                pipe.hincrby(key, field, count)
            pipe.hincrby(key, "count", n)
            pipe.hincrbyfloat(key, "sum", total)
            pipe.sadd(_tasks_key(), task)
            if stream_key is not None:
                pipe.sadd(_streams_key(), stream_key)
            await pipe.execute()
    except Exception as exc:  # best effort by design
        log.debug("metrics not recorded for %s: %s", task, exc)


async def observe_messages(redis: aioredis.Redis, task: str, stream_key: str, message_ids: Iterable[str]) -> None:
    """A batch of stream messages is done: each one's time since it was appended (its id's milliseconds)."""
    now_ms = time.time() * 1000
    await observe(redis, task, ((now_ms - _id_ms(i)) / 1000 for i in message_ids), stream_key)


async def histograms(redis: aioredis.Redis) -> dict[str, tuple[list[tuple[str, float]], float]]:
    """task -> (cumulative buckets [(le, count)], sum)."""
    tasks = sorted(_text(t) for t in await redis.smembers(_tasks_key()))
    out: dict[str, tuple[list[tuple[str, float]], float]] = {}
    for task in tasks:
        raw = {_text(k): _text(v) for k, v in (await redis.hgetall(_histogram_key(task))).items()}
        running, buckets = 0.0, []
        for index, bound in enumerate(BUCKETS):
            running += float(raw.get(f"b{index}", 0))
            buckets.append((repr(bound), running))
        buckets.append(("+Inf", float(raw.get("count", 0))))
        out[task] = (buckets, float(raw.get("sum", 0.0)))
    return out


async def stream_lag(redis: aioredis.Redis) -> dict[str, dict[str, float]]:
    """stream key -> {lag (not yet delivered), pending (delivered, not acknowledged), oldest_age_s}."""
    now_ms = time.time() * 1000
    out: dict[str, dict[str, float]] = {}
    for member in sorted(_text(s) for s in await redis.smembers(_streams_key())):
        try:
            groups: Any = await redis.xinfo_groups(member)
        except Exception:  # the stream may be gone
            continue
        group = next((g for g in groups if _text(g["name"]) == GROUP), None)
        if group is None:
            continue
        last_delivered = _text(group["last-delivered-id"])
        oldest: int | None = None
        summary: Any = await redis.xpending(member, GROUP)
        pending = int(summary.get("pending") or 0) if summary else 0
        if pending:
            oldest = _id_ms(_text(summary["min"]))
        undelivered: Any = await redis.xrange(member, min=f"({last_delivered}", max="+", count=1)
        if undelivered:
            first = _id_ms(_text(undelivered[0][0]))
            oldest = first if oldest is None else min(oldest, first)
        lag = group.get("lag")
        out[member] = {
            "lag": float(lag if lag is not None else len(undelivered)),
            "pending": float(pending),
            "oldest_age_s": 0.0 if oldest is None else max(0.0, (now_ms - oldest) / 1000),
        }
    return out


async def render_webhooks(conn: Any) -> bytes:
    """Webhook delivery outcomes, counted from the attempts and deliveries PostgreSQL records.

    Read at scrape time: attempts only ever accumulate, so the counter is monotonic.
    """
    attempts = CounterMetricFamily(
        "voucherd_webhook_attempts", "Webhook delivery attempts, by outcome", labels=["outcome"]
    )
    for row in await conn.fetch(
        "SELECT (error IS NULL) AS ok, count(*) AS n FROM webhook_attempts GROUP BY 1 ORDER BY 1"
    ):
        attempts.add_metric(["success" if row["ok"] else "failure"], float(row["n"]))
    deliveries = GaugeMetricFamily("voucherd_webhook_deliveries", "Webhook deliveries, by status", labels=["status"])
    for row in await conn.fetch("SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY 1 ORDER BY 1"):
        deliveries.add_metric([row["status"]], float(row["n"]))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([attempts, deliveries]))
    return generate_latest(registry)


class _Snapshot(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


async def render(redis: aioredis.Redis) -> bytes:
    """The Prometheus text exposition of every series above."""
    histogram = HistogramMetricFamily(
        "voucherd_task_enqueue_to_done_seconds", "Time from enqueue to done, per task type", labels=["task"]
    )
    for task, (buckets, total) in (await histograms(redis)).items():
        histogram.add_metric([task], buckets, total)
    lag = GaugeMetricFamily("voucherd_stream_lag_messages", "Messages not yet delivered to a worker", labels=["stream"])
    pending = GaugeMetricFamily(
        "voucherd_stream_pending_messages", "Messages delivered but not yet acknowledged", labels=["stream"]
    )
    age = GaugeMetricFamily(
        "voucherd_stream_oldest_age_seconds", "Age of the oldest message not yet done", labels=["stream"]
    )
    for stream, values in (await stream_lag(redis)).items():
        lag.add_metric([stream], values["lag"])
        pending.add_metric([stream], values["pending"])
        age.add_metric([stream], values["oldest_age_s"])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([histogram, lag, pending, age]))
    return generate_latest(registry)
