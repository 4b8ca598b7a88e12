"""The live page's figures: the quantile of a cumulative histogram, and the redemption and latency figures
read from the same instruments ``/metrics`` renders."""

from __future__ import annotations

import math

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys
from voucherd.platform import live_figures

INF = math.inf


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # 100 observations: 50 under 10 ms, 90 under 20 ms, all under 40 ms.
    buckets = [(0.01, 50.0), (0.02, 90.0), (0.04, 100.0), (INF, 100.0)]
    assert live_figures.quantile(0.5, buckets) == pytest.approx(0.01)
    assert live_figures.quantile(0.95, buckets) == pytest.approx(0.02 + 0.02 * (95 - 90) / 10)
    assert live_figures.quantile(0.7, buckets) == pytest.approx(0.01 + 0.01 * (70 - 50) / 40)


def test_quantile_of_nothing_is_none_and_beyond_the_last_bound_is_that_bound() -> None:
    assert live_figures.quantile(0.95, []) is None
    assert live_figures.quantile(0.95, [(0.01, 0.0), (INF, 0.0)]) is None
    assert live_figures.quantile(0.95, [(0.01, 1.0), (0.02, 1.0), (INF, 10.0)]) == pytest.approx(0.02)


def _redemptions(client: TestClient, project: ProjectKeys, code: str, n: int) -> None:
    voucher = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}
    assert client.post(f"/v1/vouchers/{code}", json=voucher, headers=project.headers).status_code == 200
    body = {"redeemables": [{"object": "voucher", "id": code}], "order": {"amount": 1000}}
    for _ in range(n):
        assert client.post("/v1/redemptions", json=body, headers=project.headers).status_code == 200
    missing = {"redeemables": [{"object": "voucher", "id": code + "-NONE"}], "order": {"amount": 1000}}
    assert client.post("/v1/redemptions", json=missing, headers=project.headers).status_code >= 400


def test_redemptions_and_each_calls_latency_move_with_the_calls_answered(
    client: TestClient, project: ProjectKeys
) -> None:
    # One process, no metrics_dir: the default registry, as under the test client.
    before, calls_before = live_figures.http_figures(None)
    _redemptions(client, project, "LIVE-FIGURES", 3)
    after, calls_after = live_figures.http_figures(None)
    assert after["succeeded"] - before["succeeded"] == 3
    assert after["failed"] - before["failed"] == 1
    by_name = {f"{c.method} {c.route}": c for c in calls_after}
    redeem = by_name["POST /v1/redemptions"]
    earlier = next((c.count for c in calls_before if (c.method, c.route) == ("POST", "/v1/redemptions")), 0.0)
    assert redeem.count - earlier == 4
    shown = redeem.as_json()
    assert shown["buckets"][-1] == [None, redeem.count]  # +Inf sent as null
    assert shown["p95_ms"] is not None and shown["p95_ms"] > 0
    assert all(c.route.startswith(live_figures.API_PREFIXES) for c in calls_after)
