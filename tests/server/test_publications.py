"""``/v1/publications`` over HTTP."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error

VOUCHER = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 1000}}


def _post(client: TestClient, project: ProjectKeys, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post(path, json=body, headers=project.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _static_campaign(client: TestClient, project: ProjectKeys, name: str, codes: list[str]) -> dict[str, Any]:
    campaign = _post(client, project, "/v1/campaigns", {"name": name, "type": "STATIC", "voucher": VOUCHER})
    for code in codes:
        _post(client, project, f"/v1/campaigns/{campaign['id']}/vouchers/{code}")
    return campaign


def test_publish_a_given_code(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    _static_campaign(client, project, "Codes", ["CODE-1"])
    publication = _post(
        client,
        project,
        "/v1/publications?join_once=false",
        {"voucher": "CODE-1", "customer": {"source_id": "pat"}, "metadata": None, "channel": None},
    )
    assert publication["id"].startswith("pub_") and publication["object"] == "publication"
    assert publication["channel"] == "API" and publication["result"] == "SUCCESS"
    assert publication["voucher"]["code"] == "CODE-1" and publication["tracking_id"] == "pat"
    customer = client.get("/v1/customers/pat", headers=h).json()
    assert publication["customer_id"] == customer["id"] and publication["customer"]["id"] == customer["id"]
    assert publication["vouchers_id"] == [publication["voucher"]["id"]]
    voucher = client.get("/v1/vouchers/CODE-1", headers=h).json()
    assert voucher["holder_id"] == customer["id"] and voucher["publish"]["count"] == 1

    # Publishing to the holder again is fine; to someone else it is refused.
    _post(client, project, "/v1/publications", {"voucher": "CODE-1", "customer": {"id": customer["id"]}})
    other = client.post("/v1/publications", json={"voucher": "CODE-1", "customer": {"source_id": "x"}}, headers=h)
    assert_error(other, 400, "voucher_already_published")
    assert_error(
        client.post("/v1/publications", json={"voucher": "NOPE", "customer": {"source_id": "pat"}}, headers=h),
        404,
        "not_found",
    )


def test_publish_from_campaigns(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    campaign = _static_campaign(client, project, "Pool", ["P-1", "P-2", "P-3"])
    first = _post(client, project, "/v1/publications", {"campaign": {"name": "Pool"}, "customer": {"source_id": "a"}})
    assert first["voucher"]["code"] == "P-1" and first["voucher"]["campaign_id"] == campaign["id"]
    again = _post(
        client,
        project,
        "/v1/publications?join_once=true",
        {"campaign": {"name": "Pool"}, "customer": {"source_id": "a"}},
    )
    assert again["voucher"]["code"] == "P-1" and again["id"] != first["id"]
    two = _post(
        client,
        project,
        "/v1/publications",
        {"campaign": {"name": campaign["id"], "count": 2}, "customer": {"source_id": "b"}},
    )
    assert two["vouchers"] == ["P-2", "P-3"] and "voucher" not in two and len(two["vouchers_id"]) == 2
    empty = client.post(
        "/v1/publications", json={"campaign": {"name": "Pool"}, "customer": {"source_id": "c"}}, headers=h
    )
    assert_error(empty, 400, "no_voucher_suitable_for_publication")
    many = {"campaign": {"name": "Pool", "count": 51}, "customer": {"source_id": "c"}}
    assert_error(client.post("/v1/publications", json=many, headers=h), 400, "too_many_vouchers_requested")

    # An AUTO_UPDATE campaign mints a code for each publication; the customer may come from an email alone.
    auto = _post(client, project, "/v1/campaigns", {"name": "Auto", "type": "AUTO_UPDATE", "voucher": VOUCHER})
    minted = _post(
        client,
        project,
        "/v1/publications?join_once=true",
        {"campaign": {"name": "Auto"}, "customer": {"email": "e@x.io"}},
    )
    assert minted["voucher"]["campaign_id"] == auto["id"] and minted["voucher"]["holder_id"] == minted["customer_id"]
    assert minted["customer"]["email"] == "e@x.io"


def test_source_id_is_idempotent_and_get_variant(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    _static_campaign(client, project, "Idem", ["I-1", "I-2"])
    body = {"campaign": {"name": "Idem"}, "customer": {"source_id": "q"}, "source_id": "pub-src-1"}
    first = _post(client, project, "/v1/publications", body)
    second = _post(client, project, "/v1/publications", body)
    assert second["id"] == first["id"] and second["voucher"]["code"] == "I-1"
    by_get = client.get(
        "/v1/publications/create?campaign[name]=Idem&customer[source_id]=r&metadata[k]=v&join_once=true", headers=h
    )
    assert by_get.status_code == 200, by_get.text
    assert by_get.json()["voucher"]["code"] == "I-2" and by_get.json()["metadata"] == {"k": "v"}
    assert_error(client.get("/v1/publications/create?voucher=I-1", headers=h), 400, "invalid_payload")


def test_invalid_publications(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    for body in (
        {"voucher": "X"},
        {"customer": {"source_id": "a"}},
        {"voucher": "X", "campaign": {"name": "Y"}, "customer": {"source_id": "a"}},
        {"campaign": {"count": 1}, "customer": {"source_id": "a"}},
        {"campaign": {"name": "Y", "count": 0}, "customer": {"source_id": "a"}},
        {"voucher": "X", "customer": {"source_id": "a"}, "channel": "EMAIL"},
    ):
        assert_error(client.post("/v1/publications", json=body, headers=h), 400, "invalid_payload")
    assert_error(client.post("/v1/publications?join_once=maybe", json={}, headers=h), 400, "invalid_query_params")
    missing = {"campaign": {"name": "Nope"}, "customer": {"source_id": "a"}}
    assert_error(client.post("/v1/publications", json=missing, headers=h), 404, "not_found")


def test_list_publications(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    _static_campaign(client, project, "L", ["L-1", "L-2", "L-3"])
    for who in ("u1", "u2", "u1"):
        _post(client, project, "/v1/publications", {"campaign": {"name": "L"}, "customer": {"source_id": who}})
    listing = client.get("/v1/publications?limit=2", headers=h).json()
    assert listing["object"] == "list" and listing["data_ref"] == "publications" and listing["total"] == 3
    assert [p["vouchers"] for p in listing["publications"]] == [["L-3"], ["L-2"]]
    assert listing["publications"][0]["result"] == "SUCCESS" and listing["publications"][0]["tracking_id"] == "u1"
    assert client.get("/v1/publications?customer=u1", headers=h).json()["total"] == 2
    assert client.get("/v1/publications?voucher=L-2", headers=h).json()["total"] == 1
    assert client.get("/v1/publications?campaign=L", headers=h).json()["total"] == 3
    assert client.get("/v1/publications?campaign=other", headers=h).json()["total"] == 0
    assert_error(client.get("/v1/publications?page=1001", headers=h), 400, "page_over_limit")


def test_the_customer_wallet_lists_published_codes_with_paging(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    campaign = client.post(
        "/v1/campaigns",
        json={
            "name": "Wallet list",
            "campaign_type": "DISCOUNT_COUPONS",
            "type": "AUTO_UPDATE",
            "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}},
        },
        headers=h,
    ).json()
    codes = []
    for _ in range(3):
        published = client.post(
            "/v1/publications", json={"customer": {"source_id": "wendy"}, "campaign": {"id": campaign["id"]}}, headers=h
        )
        assert published.status_code == 200, published.text
        codes.append(published.json()["voucher"]["code"])
    first = client.get("/v1/customers/wendy/redeemables?limit=2", headers=h).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = client.get(
        f"/v1/customers/wendy/redeemables?limit=2&starting_after_id={first['more_starting_after']}", headers=h
    ).json()
    assert rest["has_more"] is False
    items = first["data"] + rest["data"]
    assert [i["redeemable"]["voucher"]["code"] for i in items] == codes
    assert {i["holder_role"] for i in items} == {"OWNER"} and {i["redeemable"]["status"] for i in items} == {"ACTIVE"}
    assert items[0]["object"] == "customer_redeemable" and items[0]["campaign_type"] == "DISCOUNT_COUPONS"
