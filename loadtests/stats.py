"""Percentiles from raw samples, the same way for every tool that hands us raw samples."""

from __future__ import annotations

from typing import Any


def percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_ms:
        return 0.0
    rank = max(0, min(len(sorted_ms) - 1, round(p / 100 * len(sorted_ms) + 0.5) - 1))
    return sorted_ms[rank]


def summarise(samples_ms: list[float], window_s: float) -> dict[str, Any]:
    ordered = sorted(samples_ms)
    n = len(ordered)
    return {
        "count": n,
        "rps": round(n / window_s, 1) if window_s > 0 else 0.0,
        "avg": round(sum(ordered) / n, 3) if n else 0.0,
        "p50": round(percentile(ordered, 50), 3),
        "p95": round(percentile(ordered, 95), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3) if n else 0.0,
    }
