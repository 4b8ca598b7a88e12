"""``/v1/orders`` over HTTP."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error


def _post(client: TestClient, project: ProjectKeys, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers=project.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_create_with_customer_upsert(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    order = _post(
        client,
        project,
        "/v1/orders",
        {
            "source_id": "o-1",
            "amount": 1000,
            "customer": {"name": "Ann", "email": "ann@example.com"},
            "currency": "USD",
        },
    )
    assert order["id"].startswith("ord_") and order["object"] == "order" and order["status"] == "CREATED"
    assert order["amount"] == 1000 and order["initial_amount"] == 1000
    assert order["discount_amount"] == 0 and order["total_discount_amount"] == 0 and order["total_amount"] == 1000
    assert order["customer"] == {"id": order["customer_id"], "object": "customer"}
    customer = client.get(f"/v1/customers/{order['customer_id']}", headers=h).json()
    assert customer["email"] == "ann@example.com"
    assert customer["summary"]["orders"]["total_count"] == 1 and customer["summary"]["orders"]["total_amount"] == 1000
    assert customer["summary"]["orders"]["last_order_date"] == order["created_at"]

    fetched = client.get("/v1/orders/o-1", headers=h).json()
    assert fetched == order
    assert client.get(f"/v1/orders/{order['id']}", headers=h).json()["source_id"] == "o-1"
    assert_error(client.get("/v1/orders/nope", headers=h), 404, "not_found")


def test_upsert_update_and_status_activity(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    first = _post(client, project, "/v1/orders", {"source_id": "o-2", "amount": 500, "customer": {"source_id": "bo"}})
    again = _post(client, project, "/v1/orders", {"source_id": "o-2", "amount": 700, "metadata": {"channel": "web"}})
    assert again["id"] == first["id"] and again["amount"] == 700 and again["metadata"] == {"channel": "web"}
    assert again["customer_id"] == first["customer_id"] and again["updated_at"] is not None
    paid = client.put("/v1/orders/o-2", json={"status": "PAID"}, headers=h).json()
    assert paid["status"] == "PAID" and paid["amount"] == 700
    by_id = _post(client, project, "/v1/orders", {"id": first["id"], "status": "FULFILLED"})
    assert by_id["status"] == "FULFILLED"
    types = [a["type"] for a in client.get("/v1/customers/bo/activity?order=created_at", headers=h).json()["data"]]
    assert types == [
        "customer.created",
        "customer.order.created",
        "customer.order.updated",
        "customer.order.updated",
        "customer.order.paid",
        "customer.order.updated",
        "customer.order.fulfilled",
    ]
    assert client.get("/v1/customers/bo", headers=h).json()["summary"]["orders"]["total_amount"] == 700
    client.put("/v1/orders/o-2", json={"status": "CANCELED"}, headers=h)
    assert client.get("/v1/customers/bo", headers=h).json()["summary"]["orders"]["total_count"] == 0
    assert_error(client.post("/v1/orders", json={"id": "ord_missing"}, headers=h), 404, "not_found")
    assert_error(client.put("/v1/orders/nope", json={"status": "PAID"}, headers=h), 404, "not_found")


def test_invalid_orders(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    for body in (
        {"status": "PROCESSING"},
        {"amount": -5},
        {"amount": "100"},
        {"items": {}},
        {"items": [{"quantity": 1.5}]},
        {"items": [{"related_object": "voucher"}]},
        {"customer": "cust"},
        {"metadata": []},
    ):
        assert_error(client.post("/v1/orders", json=body, headers=h), 400, "invalid_payload")
    assert_error(
        client.post("/v1/orders", json={"items": [{"product_id": "prod_x", "quantity": 1}]}, headers=h),
        404,
        "not_found",
    )
    assert_error(client.post("/v1/orders", json={"referrer_id": "nobody"}, headers=h), 404, "not_found")
    assert client.get("/v1/orders", headers=h).json()["total"] == 0


def test_items_resolve_prices_from_the_catalog(client: TestClient, project: ProjectKeys) -> None:
    product = _post(client, project, "/v1/products", {"source_id": "mug", "name": "Mug", "price": 700})
    sku = _post(client, project, "/v1/products/mug/skus", {"source_id": "mug-xl", "sku": "XL", "price": 2000})
    order = _post(
        client,
        project,
        "/v1/orders",
        {
            "items": [
                {"sku_id": sku["id"], "quantity": 1},
                {"product_id": product["id"], "quantity": 2},
                {"source_id": "mug", "related_object": "product", "quantity": 1, "price": 650},
                {"source_id": "unknown-thing", "quantity": 3, "price": 100},
                {"source_id": "mug-xl", "related_object": "sku", "amount": 1500},
            ]
        },
    )
    items = order["items"]
    assert [i["amount"] for i in items] == [2000, 1400, 650, 300, 1500]
    assert order["amount"] == 5850 and order["initial_amount"] == 5850 and order["total_amount"] == 5850
    assert items[0]["sku_id"] == sku["id"] and items[0]["product_id"] == product["id"]
    assert items[0]["related_object"] == "sku" and items[0]["sku"]["sku"] == "XL" and items[0]["price"] == 2000
    assert items[1]["product"]["name"] == "Mug" and items[1]["price"] == 700
    assert items[2]["product_id"] == product["id"] and items[2]["price"] == 650
    assert "product_id" not in items[3] and items[3]["source_id"] == "unknown-thing"
    assert items[4]["sku_id"] == sku["id"] and "quantity" not in items[4]
    assert all(i["id"].startswith("ordli_") and i["object"] == "order_item" for i in items)
    assert items[1]["subtotal_amount"] == 1400


def test_item_override_upserts_the_catalog(client: TestClient, project: ProjectKeys) -> None:
    order = _post(
        client,
        project,
        "/v1/orders",
        {
            "items": [
                {"quantity": 2, "product": {"source_id": "hat", "name": "Hat", "price": 1200, "override": True}},
                {
                    "quantity": 1,
                    "product": {"source_id": "hat"},
                    "sku": {"source_id": "hat-red", "sku": "Red", "price": 1300, "override": True},
                },
                {"quantity": 1, "product": {"source_id": "cap", "name": "Cap", "price": 900}},
            ]
        },
    )
    assert [i["amount"] for i in order["items"]] == [2400, 1300, 900] and order["amount"] == 4600
    hat = client.get("/v1/products/hat", headers=project.headers).json()
    assert hat["name"] == "Hat" and hat["price"] == 1200 and hat["skus"]["data"][0]["source_id"] == "hat-red"
    assert order["items"][1]["sku_id"] == hat["skus"]["data"][0]["id"]
    assert_error(
        client.get("/v1/products/cap", headers=project.headers), 404, "not_found"
    )  # no override: catalog untouched
    _post(
        client,
        project,
        "/v1/orders",
        {"items": [{"quantity": 1, "product": {"source_id": "hat", "price": 1500, "override": True}}]},
    )
    assert client.get("/v1/products/hat", headers=project.headers).json()["price"] == 1500


def test_referrer_and_listing(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    referrer = _post(client, project, "/v1/customers", {"source_id": "ref"})
    for i in range(3):
        _post(client, project, "/v1/orders", {"source_id": f"l{i}", "amount": 100 * (i + 1), "referrer_id": "ref"})
    with_referrer = _post(client, project, "/v1/orders", {"amount": 1, "referrer": {"source_id": "ref2"}})
    assert with_referrer["referrer"]["object"] == "customer"
    assert client.get(f"/v1/customers/{with_referrer['referrer_id']}", headers=h).json()["source_id"] == "ref2"
    listing = client.get("/v1/orders?limit=2", headers=h).json()
    assert listing["object"] == "list" and listing["data_ref"] == "orders" and listing["total"] == 4
    assert [o["amount"] for o in listing["orders"]] == [1, 300]
    page2 = client.get("/v1/orders?limit=2&page=2&order=created_at", headers=h).json()["orders"]
    assert [o["source_id"] for o in page2] == ["l2", None]
    assert page2[0]["referrer_id"] == referrer["id"]
    assert_error(client.get("/v1/orders?order=amount", headers=h), 400, "invalid_query_params")
