"""Gift cards through stacked redemptions and rollbacks: credits and their transactions, end to end."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, drain_worker
from voucherd.platform.settings import Settings


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_credits_in_a_stacked_redemption_and_their_rollback(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    ok(client.post("/v1/vouchers/GC", json={"type": "GIFT_VOUCHER", "gift": {"amount": 5000}}, headers=h))
    ok(
        client.post(
            "/v1/vouchers/TEN",
            json={"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 1000}},
            headers=h,
        )
    )
    body = {
        "redeemables": [
            {"object": "voucher", "id": "TEN"},
            {"object": "voucher", "id": "GC", "gift": {"credits": 2000}},
        ],
        "order": {"amount": 10000},
        "customer": {"source_id": "gina"},
    }
    redeemed = ok(client.post("/v1/redemptions", json=body, headers=h))
    assert redeemed["order"]["total_amount"] == 10000 - 1000 - 2000
    assert ok(client.get("/v1/vouchers/GC", headers=h))["gift"]["balance"] == 3000
    drain_worker(settings)
    parent = redeemed["parent_redemption"]["id"]
    ok(client.post(f"/v1/redemptions/{parent}/rollbacks", headers=h))
    drain_worker(settings)
    assert ok(client.get("/v1/vouchers/GC", headers=h))["gift"]["balance"] == 5000
    types = [t["type"] for t in ok(client.get("/v1/vouchers/GC/transactions", headers=h))["data"]]
    assert types == ["CREDITS_REFUND", "CREDITS_REDEMPTION"]
