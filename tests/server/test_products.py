"""``/v1/products``, SKUs and product collections over HTTP."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error


def _post(client: TestClient, project: ProjectKeys, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers=project.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_shipping_product_exists_in_every_project(client: TestClient, project: ProjectKeys, make_project: Any) -> None:
    other = make_project("Other")
    for keys in (project, other):
        shipping = client.get("/v1/products/prod_5h1pp1ng", headers=keys.headers).json()
        assert shipping["id"] == "prod_5h1pp1ng" and shipping["source_id"] == "5h1pp1ng"
        assert shipping["name"] == "Shipping" and shipping["object"] == "product"
    assert client.get("/v1/products/5h1pp1ng", headers=project.headers).json()["id"] == "prod_5h1pp1ng"
    assert_error(client.delete("/v1/products/prod_5h1pp1ng", headers=project.headers), 400, "resource_protected")


def test_product_lifecycle_and_upsert(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    product = _post(
        client,
        project,
        "/v1/products",
        {"source_id": "shoe", "name": "Shoe", "price": 5000, "attributes": ["color"], "metadata": {"brand": "X"}},
    )
    assert product["id"].startswith("prod_") and product["price"] == 5000 and product["attributes"] == ["color"]
    assert product["skus"] == {"object": "list", "data_ref": "data", "data": [], "total": 0}
    assert product["updated_at"] is None

    again = _post(client, project, "/v1/products", {"source_id": "shoe", "price": 5500, "image_url": "http://i/x.png"})
    assert again["id"] == product["id"] and again["price"] == 5500 and again["name"] == "Shoe"
    assert again["image_url"] == "http://i/x.png" and again["updated_at"] is not None
    by_id = _post(client, project, "/v1/products", {"id": product["id"], "name": "Sneaker"})
    assert by_id["id"] == product["id"] and by_id["name"] == "Sneaker"
    assert_error(client.post("/v1/products", json={"id": "prod_missing"}, headers=h), 404, "not_found")

    updated = client.put("/v1/products/shoe", json={"price": 55000, "metadata": {"brand": "Y"}}, headers=h).json()
    assert updated["price"] == 55000 and updated["metadata"] == {"brand": "Y"}
    assert client.get(f"/v1/products/{product['id']}", headers=h).json()["price"] == 55000

    assert client.delete("/v1/products/shoe", headers=h).status_code == 204
    assert_error(client.get(f"/v1/products/{product['id']}", headers=h), 404, "not_found")
    assert_error(client.delete("/v1/products/shoe", headers=h), 404, "not_found")


def test_invalid_products(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    for body in ({"price": -1}, {"price": "10"}, {"price": 10.5}, {"attributes": "a"}, {"metadata": 1}, {"name": 3}):
        assert_error(client.post("/v1/products", json=body, headers=h), 400, "invalid_payload")
    assert _post(client, project, "/v1/products", {"name": "Float price", "price": 100.0})["price"] == 100


def test_product_list_paging(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    for i in range(4):
        _post(client, project, "/v1/products", {"source_id": f"p{i}", "name": f"P{i}"})
    listing = client.get("/v1/products?limit=2", headers=h).json()
    assert listing["object"] == "list" and listing["data_ref"] == "products" and listing["total"] == 5
    assert [p["source_id"] for p in listing["products"]] == ["p3", "p2"]
    oldest = client.get("/v1/products?limit=2&page=1&order=created_at", headers=h).json()["products"]
    assert [p["source_id"] for p in oldest] == ["5h1pp1ng", "p0"]
    assert client.get("/v1/products?limit=2&page=3", headers=h).json()["products"][0]["source_id"] == "5h1pp1ng"
    assert_error(client.get("/v1/products?limit=500", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/products?order=price", headers=h), 400, "invalid_query_params")


def test_skus(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    product = _post(client, project, "/v1/products", {"source_id": "tee", "name": "Tee", "price": 2000})
    sku = _post(
        client,
        project,
        f"/v1/products/{product['id']}/skus",
        {"source_id": "tee-red", "sku": "Red tee", "price": 2100, "currency": "EUR", "attributes": {"color": "red"}},
    )
    assert sku["id"].startswith("sku_") and sku["product_id"] == product["id"] and sku["object"] == "sku"
    assert sku["attributes"] == {"color": "red"} and sku["price"] == 2100
    bare = _post(client, project, "/v1/products/tee/skus", {"price": 5000})
    assert bare["sku"] is None and bare["source_id"] is None

    upserted = _post(client, project, "/v1/products/tee/skus", {"source_id": "tee-red", "price": 2200})
    assert upserted["id"] == sku["id"] and upserted["price"] == 2200 and upserted["sku"] == "Red tee"

    assert client.get(f"/v1/skus/{sku['id']}", headers=h).json()["source_id"] == "tee-red"
    assert client.get("/v1/skus/tee-red", headers=h).json()["id"] == sku["id"]
    assert client.get(f"/v1/products/tee/skus/{sku['id']}", headers=h).json()["price"] == 2200
    updated = client.put(f"/v1/products/{product['id']}/skus/tee-red", json={"price": 2000}, headers=h).json()
    assert updated["price"] == 2000

    listing = client.get("/v1/products/tee/skus", headers=h).json()
    assert listing["data_ref"] == "skus" and listing["total"] == 2
    assert [s["id"] for s in listing["skus"]] == [sku["id"], bare["id"]]
    embedded = client.get("/v1/products/tee", headers=h).json()["skus"]
    assert embedded["total"] == 2 and embedded["data"][0]["id"] == sku["id"]

    # A SKU is reached only through its own product.
    other = _post(client, project, "/v1/products", {"name": "Other"})
    assert_error(client.get(f"/v1/products/{other['id']}/skus/{sku['id']}", headers=h), 404, "not_found")
    assert_error(
        client.post(f"/v1/products/{other['id']}/skus", json={"source_id": "tee-red"}, headers=h),
        400,
        "invalid_payload",
    )

    assert client.delete(f"/v1/products/tee/skus/{sku['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/skus/{sku['id']}", headers=h), 404, "not_found")
    assert client.delete("/v1/products/tee", headers=h).status_code == 204
    assert_error(client.get(f"/v1/skus/{bare['id']}", headers=h), 404, "not_found")
    assert_error(client.get("/v1/products/tee/skus", headers=h), 404, "not_found")


def test_static_collection(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    shoe = _post(client, project, "/v1/products", {"source_id": "shoe", "name": "Shoe", "price": 100})
    sku = _post(client, project, "/v1/products/shoe/skus", {"source_id": "shoe-42", "price": 120})
    collection = _post(
        client,
        project,
        "/v1/product-collections",
        {
            "type": "STATIC",
            "name": "Picked",
            "products": [{"id": "shoe", "object": "product"}, {"id": sku["id"], "object": "sku"}],
        },
    )
    assert collection["id"].startswith("pc_") and collection["object"] == "products_collection"
    assert collection["products"] == [
        {"id": shoe["id"], "object": "product"},
        {"id": sku["id"], "product_id": shoe["id"], "object": "sku"},
    ]
    members = client.get(f"/v1/product-collections/{collection['id']}/products", headers=h).json()
    assert members["total"] == 2 and [m["object"] for m in members["data"]] == ["product", "sku"]
    assert members["data"][1]["product"]["id"] == shoe["id"] and "attributes" not in members["data"][1]
    listing = client.get("/v1/product-collections", headers=h).json()
    assert listing["data_ref"] == "data" and listing["total"] == 1
    assert client.get(f"/v1/product-collections/{collection['id']}", headers=h).json()["name"] == "Picked"
    assert_error(
        client.post(
            "/v1/product-collections",
            json={"name": "x", "type": "STATIC", "products": [{"id": "nope", "object": "product"}]},
            headers=h,
        ),
        404,
        "not_found",
    )
    assert_error(
        client.post("/v1/product-collections", json={"name": "x", "type": "STATIC"}, headers=h), 400, "invalid_payload"
    )
    assert client.delete(f"/v1/product-collections/{collection['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/product-collections/{collection['id']}", headers=h), 404, "not_found")


def test_auto_update_collection_follows_the_catalog(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    collection = _post(
        client,
        project,
        "/v1/product-collections",
        {
            "type": "AUTO_UPDATE",
            "name": "Pricey X",
            "filter": {
                "junction": "and",
                "metadata.brand": {"conditions": {"$is": ["X"]}},
                "price": {"conditions": {"$more_than": [5000]}},
            },
        },
    )
    assert collection["type"] == "AUTO_UPDATE" and collection["filter"]["junction"] == "and"
    _post(client, project, "/v1/products", {"source_id": "a", "price": 6000, "metadata": {"brand": "X"}})
    _post(client, project, "/v1/products", {"source_id": "b", "price": 4000, "metadata": {"brand": "X"}})
    _post(client, project, "/v1/products", {"source_id": "c", "price": 9000, "metadata": {"brand": "Y"}})
    path = f"/v1/product-collections/{collection['id']}/products"
    assert [p["source_id"] for p in client.get(path, headers=h).json()["data"]] == ["a"]
    client.put("/v1/products/b", json={"price": 7000}, headers=h)
    assert [p["source_id"] for p in client.get(path, headers=h).json()["data"]] == ["a", "b"]
    bad = {"name": "bad", "type": "AUTO_UPDATE", "filter": {"price": {"conditions": {"$weird": 1}}}}
    assert_error(client.post("/v1/product-collections", json=bad, headers=h), 400, "invalid_payload")
