"""The console's live page: the figures ``GET /metrics`` serves, as numbers a chart can draw.

Read from the same sources as ``/metrics``: the server processes' instruments (added up across processes
through ``settings.metrics_dir``, see ``instruments.registry``) and the worker's stream lag
(``metrics.stream_lag``). Counts are cumulative since the processes started: the page takes rates and
windowed quantiles from the difference between two polls, so no process keeps anything per viewer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from voucherd.platform import instruments, metrics

# The calls that redeem (by route template, as the instruments label them).
REDEMPTION_ROUTES = frozenset(("/v1/redemptions", "/v1/vouchers/{code}/redemption", "/client/v1/redemptions"))
API_PREFIXES = ("/v1/", "/client/v1/", "/management/v1/")
_REQUESTS = "voucherd_http_requests"
_SECONDS = "voucherd_http_request_duration_seconds"

Buckets = list[tuple[float, float]]  # (upper bound, cumulative count), the last bound +Inf


@dataclass
class Call:
    """One API call (method and route template): how often it was answered and how fast."""

    method: str
    route: str
    count: float = 0.0
    total_seconds: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def cumulative(self) -> Buckets:
        return sorted(self.buckets.items())

    def as_json(self) -> dict[str, Any]:
        buckets = self.cumulative()
        p95 = quantile(0.95, buckets)
        return {
            "call": f"{self.method} {self.route}",
            "count": self.count,
            "sum_s": self.total_seconds,
            # +Inf is not JSON: the last bucket's bound is sent as null.
            "buckets": [[None if math.isinf(le) else le, n] for le, n in buckets],
            "p95_ms": None if p95 is None else p95 * 1000,
        }


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated in its bucket as Prometheus's
    ``histogram_quantile`` does; None when it holds no observation."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bound: that bound is all we know
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _is_api(route: str) -> bool:
    return route.startswith(API_PREFIXES)


def http_figures(multiprocess_dir: str | None) -> tuple[dict[str, float], list[Call]]:
    """({succeeded, failed} redemption calls answered, [each API call's counts and latency buckets])."""
    redemptions = {"succeeded": 0.0, "failed": 0.0}
    calls: dict[tuple[str, str], Call] = {}
    for metric in instruments.registry(multiprocess_dir).collect():
        if metric.name == _REQUESTS:
            for sample in metric.samples:
                labels = sample.labels
                if not sample.name.endswith("_total") or labels.get("route") not in REDEMPTION_ROUTES:
                    continue
                if labels.get("method") != "POST":
                    continue
                outcome = "succeeded" if labels.get("status", "").startswith("2") else "failed"
                redemptions[outcome] += sample.value
        elif metric.name == _SECONDS:
            for sample in metric.samples:
                labels = sample.labels
                route, method = labels.get("route", ""), labels.get("method", "")
                if not _is_api(route):
                    continue
                call = calls.setdefault((method, route), Call(method, route))
                if sample.name.endswith("_bucket"):
                    bound = float(labels["le"])
                    call.buckets[bound] = call.buckets.get(bound, 0.0) + sample.value
                elif sample.name.endswith("_count"):
                    call.count += sample.value
                elif sample.name.endswith("_sum"):
                    call.total_seconds += sample.value
    ordered = sorted(calls.values(), key=lambda c: (-c.count, c.route, c.method))
    return redemptions, ordered


async def snapshot(redis: aioredis.Redis, multiprocess_dir: str | None) -> dict[str, Any]:
    """Everything the live page draws, as of now (``at``: Unix seconds)."""
    redemptions, calls = http_figures(multiprocess_dir)
    lag = await metrics.stream_lag(redis)
    return {
        "at": time.time(),
        "redemptions": redemptions,
        "calls": [c.as_json() for c in calls],
        # ``name``: the stream's own name, without its key's prefix and project tag.
        "streams": [
            {"stream": key, "name": key.rsplit(":stream:", 1)[-1].strip("{}"), **values} for key, values in lag.items()
        ],
    }
