"""The whole checkout on a real three-node Redis Cluster: every script stays in one slot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from server.app import build_app
from tests import services
from tests.conftest import ProjectKeys, drain_worker
from voucherd.platform.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with services.redis_cluster_url() as url:
        yield url


@pytest.fixture
def settings(settings: Settings, cluster_url: str) -> Settings:
    return settings.with_(redis_url=cluster_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_checkout_on_a_redis_cluster(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    h = project.headers
    for code, body in (
        (
            "C-ONE",
            {
                "type": "DISCOUNT_VOUCHER",
                "discount": {"type": "AMOUNT", "amount_off": 500},
                "redemption": {"quantity": 10},
            },
        ),
        ("C-TWO", {"type": "DISCOUNT_VOUCHER", "discount": {"type": "PERCENT", "percent_off": 10}}),
        ("C-GIFT", {"type": "GIFT_VOUCHER", "gift": {"amount": 3000}}),
    ):
        assert client.post(f"/v1/vouchers/{code}", json=body, headers=h).status_code == 200

    stacked = {
        "redeemables": [
            {"object": "voucher", "id": "C-ONE"},
            {"object": "voucher", "id": "C-TWO"},
            {"object": "voucher", "id": "C-GIFT", "gift": {"credits": 1000}},
        ],
        "order": {"amount": 10000},
        "customer": {"source_id": "cluster-customer"},
    }
    validation = client.post("/v1/validations", json=stacked, headers=h).json()
    # 10000 - 500 = 9500; 10 % -> 8550; credits 1000 -> 7550
    assert validation["valid"] is True and validation["order"]["total_amount"] == 7550

    redeemed = client.post("/v1/redemptions", json=stacked, headers=h)
    assert redeemed.status_code == 200, redeemed.text
    parent_id = redeemed.json()["parent_redemption"]["id"]
    single = client.post("/v1/vouchers/C-ONE/redemption", json={"order": {"amount": 1000}}, headers=h)
    assert single.status_code == 200, single.text

    # Sessions reserve across the cluster too.
    locked = client.post(
        "/v1/validations",
        json={
            "redeemables": [{"object": "voucher", "id": "C-GIFT", "gift": {"credits": 2000}}],
            "order": {"amount": 5000},
            "session": {"type": "LOCK", "key": "s1"},
        },
        headers=h,
    ).json()
    assert locked["valid"] is True
    over = client.post(
        "/v1/redemptions",
        json={
            "redeemables": [{"object": "voucher", "id": "C-GIFT", "gift": {"credits": 100}}],
            "order": {"amount": 500},
        },
        headers=h,
    )
    assert over.status_code == 400 and over.json()["key"] == "gift_amount_exceeded"

    # Read-your-writes on the cluster (issue 17): readable and rolled back before the worker ran.
    assert client.get(f"/v1/redemptions/{parent_id}", headers=h).json() == redeemed.json()["parent_redemption"]
    assert client.get("/v1/redemptions", headers=h).json()["total"] == 5  # a parent, three children, one
    assert client.get("/v1/customers/cluster-customer", headers=h).status_code == 200
    early = client.post(f"/v1/redemptions/{single.json()['id']}/rollback", headers=h)
    assert early.status_code == 200, early.text

    # The worker reads the per-project stream on the cluster and persists; a stacked rollback restores all.
    drain_worker(settings)
    assert client.get(f"/v1/redemptions/{single.json()['id']}", headers=h).json()["status"] == "ROLLED_BACK"
    assert client.get(f"/v1/redemptions/{parent_id}", headers=h).status_code == 200
    rolled = client.post(f"/v1/redemptions/{parent_id}/rollbacks", headers=h)
    assert rolled.status_code == 200, rolled.text
    assert client.get("/v1/vouchers/C-GIFT", headers=h).json()["gift"]["balance"] == 3000
    assert client.get("/v1/vouchers/C-ONE", headers=h).json()["redemption"]["redeemed_quantity"] == 0

    qualified = client.post("/v1/qualifications", json={"order": {"amount": 1000}}, headers=h)
    assert qualified.status_code == 200, qualified.text
