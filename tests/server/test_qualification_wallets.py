"""A customer's wallet is kept compiled between qualifications, and every change is in the very next answer.

Each process keeps the wallets it has compiled (voucherd.checkout.wallet_cache); these tests change the
wallet or what it depends on between two qualifications, in the same process, and expect the second
answer to show it: never a stale one.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys


@pytest.fixture
def h(project: ProjectKeys) -> dict[str, str]:
    return project.headers


def coupons(client: TestClient, h: dict[str, str], name: str, **voucher: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "campaign_type": "DISCOUNT_COUPONS",
        "type": "AUTO_UPDATE",
        "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 250}, **voucher},
    }
    response = client.post("/v1/campaigns", json=body, headers=h)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def publish(
    client: TestClient, h: dict[str, str], campaign: dict[str, Any], customer: str, count: int = 1
) -> list[str]:
    body: dict[str, Any] = {"customer": {"source_id": customer}, "campaign": {"id": campaign["id"]}}
    if count > 1:
        body["campaign"]["count"] = count
    response = client.post("/v1/publications", json=body, headers=h)
    assert response.status_code == 200, response.text
    published = response.json()
    return list(published["vouchers"]) if count > 1 else [published["voucher"]["code"]]


def wallet_ids(client: TestClient, h: dict[str, str], customer: str = "walt") -> list[str]:
    response = client.post(
        "/v1/qualifications",
        json={"customer": {"source_id": customer}, "scenario": "CUSTOMER_WALLET", "order": {"amount": 10000}},
        headers=h,
    )
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["redeemables"]["data"]]


def kept(client: TestClient, project: ProjectKeys, customer: str = "walt") -> Any:
    """The process's compiled copy of the customer's wallet (None before the first qualification)."""
    return client.app.state.ctx.checkout.wallets.get((project.project_id, "", customer))  # type: ignore[attr-defined]


def test_an_unchanged_wallet_is_answered_from_the_kept_copy(
    client: TestClient, h: dict[str, str], project: ProjectKeys
) -> None:
    codes = publish(client, h, coupons(client, h, "Kept"), "walt", count=3)
    first = wallet_ids(client, h)
    copy = kept(client, project)
    assert copy is not None and sorted(copy.codes) == sorted(codes)
    assert wallet_ids(client, h) == first and sorted(first) == sorted(codes)
    assert kept(client, project) is copy  # not compiled again


def test_a_published_code_is_in_the_next_qualification(
    client: TestClient, h: dict[str, str], project: ProjectKeys
) -> None:
    campaign = coupons(client, h, "Published")
    [first] = publish(client, h, campaign, "walt")
    assert wallet_ids(client, h) == [first]
    copy = kept(client, project)
    [second] = publish(client, h, campaign, "walt")
    assert set(wallet_ids(client, h)) == {first, second}
    assert kept(client, project) is not copy


def test_a_code_redeemed_out_leaves_the_next_qualification(client: TestClient, h: dict[str, str]) -> None:
    campaign = coupons(client, h, "Once", redemption={"quantity": 1})
    used, other = publish(client, h, campaign, "walt", count=2)
    assert set(wallet_ids(client, h)) == {used, other}
    redemption = client.post(
        "/v1/redemptions",
        json={
            "redeemables": [{"object": "voucher", "id": used}],
            "customer": {"source_id": "walt"},
            "order": {"amount": 10000},
        },
        headers=h,
    )
    assert redemption.status_code == 200, redemption.text
    assert wallet_ids(client, h) == [other]


def test_a_disabled_campaign_leaves_the_next_qualification(client: TestClient, h: dict[str, str]) -> None:
    campaign = coupons(client, h, "Switched")
    [code] = publish(client, h, campaign, "walt")
    assert wallet_ids(client, h) == [code]
    assert client.post(f"/v1/campaigns/{campaign['id']}/disable", headers=h).status_code == 200
    assert wallet_ids(client, h) == []
    assert client.post(f"/v1/campaigns/{campaign['id']}/enable", headers=h).status_code == 200
    assert wallet_ids(client, h) == [code]


def test_a_disabled_or_deleted_code_leaves_the_next_qualification(client: TestClient, h: dict[str, str]) -> None:
    disabled, deleted, kept_code = publish(client, h, coupons(client, h, "Codes"), "walt", count=3)
    assert set(wallet_ids(client, h)) == {disabled, deleted, kept_code}
    assert client.post(f"/v1/vouchers/{disabled}/disable", headers=h).status_code == 200
    assert set(wallet_ids(client, h)) == {deleted, kept_code}
    assert client.delete(f"/v1/vouchers/{deleted}?force=true", headers=h).status_code == 204
    assert wallet_ids(client, h) == [kept_code]


def test_a_code_held_by_a_session_and_released_is_seen_at_once(client: TestClient, h: dict[str, str]) -> None:
    held, free = publish(client, h, coupons(client, h, "Held", redemption={"quantity": 1}), "walt", count=2)
    assert set(wallet_ids(client, h)) == {held, free}
    locked = client.post(
        "/v1/validations",
        json={
            "redeemables": [{"object": "voucher", "id": held}],
            "order": {"amount": 10000},
            "session": {"type": "LOCK", "key": "sess-1"},
        },
        headers=h,
    )
    assert locked.status_code == 200 and locked.json()["valid"] is True, locked.text
    assert wallet_ids(client, h) == [free]  # its one redemption is held by the session
    released = client.delete(f"/v1/vouchers/{held}/sessions/sess-1", headers=h)
    assert released.status_code == 204, released.text
    assert set(wallet_ids(client, h)) == {held, free}


def test_pages_filled_by_a_wallet_newer_than_every_promotion(client: TestClient, h: dict[str, str]) -> None:
    tiers = [{"name": f"T{n}", "action": {"discount": {"type": "AMOUNT", "amount_off": 100 + n}}} for n in range(40)]
    promotion = {"name": "Older", "campaign_type": "PROMOTION", "promotion": {"tiers": tiers}}
    assert client.post("/v1/campaigns", json=promotion, headers=h).status_code == 200
    campaign = coupons(client, h, "Newer")
    codes = publish(client, h, campaign, "walt", count=8)

    def page(options: dict[str, Any]) -> dict[str, Any]:
        body = {"customer": {"source_id": "walt"}, "order": {"amount": 10000}, "options": options}
        response = client.post("/v1/qualifications", json=body, headers=h)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()["redeemables"]
        return found

    everything = [item["id"] for item in page({"limit": 50})["data"]]
    assert len(everything) == 8 + 40 + 1 and set(everything[:8]) == set(codes)
    seen: list[str] = []
    options: dict[str, Any] = {"limit": 3}
    for _ in range(20):
        found = page(options)
        seen += [item["id"] for item in found["data"]]
        if not found["has_more"]:
            break
        options = {"limit": 3, "starting_after": found["more_starting_after"]}
    assert seen == everything
