"""``/v1/customers`` over HTTP."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error


def _create(client: TestClient, project: ProjectKeys, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/customers", json=body, headers=project.headers)
    assert response.status_code == 200, response.text
    customer: dict[str, Any] = response.json()
    return customer


def test_create_returns_the_full_customer(client: TestClient, project: ProjectKeys) -> None:
    customer = _create(
        client,
        project,
        source_id="alice",
        name="Alice",
        email="alice@example.com",
        phone="+48 111",
        birthdate="1990-05-17",
        address={"city": "Warsaw", "country": "PL", "line_1": None},
        metadata={"tier": "gold", "age": 33},
        description=None,
    )
    assert customer["id"].startswith("cust_") and len(customer["id"]) == 25
    assert customer["object"] == "customer" and customer["source_id"] == "alice"
    assert customer["birthdate"] == "1990-05-17" and customer["birthday"] is None
    assert customer["address"] == {"city": "Warsaw", "country": "PL"}  # a nullable null is "not given" (issue 17)
    assert customer["metadata"] == {"tier": "gold", "age": 33}
    assert customer["summary"]["redemptions"]["total_redeemed"] == 0
    assert customer["summary"]["orders"] == {
        "total_amount": 0,
        "total_count": 0,
        "average_amount": 0,
        "last_order_amount": 0,
        "last_order_date": None,
    }
    assert customer["loyalty"] == {"points": 0, "referred_customers": 0, "campaigns": {}}
    assert customer["referrals"] == {"total": 0, "campaigns": []}
    assert customer["created_at"].endswith("Z") and customer["updated_at"] is None


def test_post_upserts_by_source_id_and_by_id(client: TestClient, project: ProjectKeys) -> None:
    first = _create(client, project, source_id="bob", name="Bob", metadata={"a": 1, "b": 2})
    again = _create(client, project, source_id="bob", email="bob@example.com", metadata={"b": None, "c": 3})
    assert again["id"] == first["id"]
    assert again["name"] == "Bob" and again["email"] == "bob@example.com"
    assert again["metadata"] == {"a": 1, "c": 3}
    assert again["updated_at"] is not None
    by_id = _create(client, project, id=first["id"], name="Robert")
    assert by_id["id"] == first["id"] and by_id["name"] == "Robert" and by_id["source_id"] == "bob"
    assert client.get("/v1/customers", headers=project.headers).json()["total"] == 1
    assert_error(client.post("/v1/customers", json={"id": "cust_nope"}, headers=project.headers), 404, "not_found")


def test_get_by_id_or_source_id_update_and_delete(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    customer = _create(client, project, source_id="carol", name="Carol", address={"city": "Oslo"})
    assert client.get(f"/v1/customers/{customer['id']}", headers=h).json()["name"] == "Carol"
    assert client.get("/v1/customers/carol", headers=h).json()["id"] == customer["id"]

    updated = client.put(
        "/v1/customers/carol", json={"email": "c@example.com", "address": {"postal_code": "0150"}}, headers=h
    )
    assert updated.status_code == 200
    assert updated.json()["email"] == "c@example.com"
    assert updated.json()["address"] == {"city": "Oslo", "postal_code": "0150"}
    # source_id cannot change through PUT
    client.put("/v1/customers/carol", json={"source_id": "other"}, headers=h)
    assert client.get("/v1/customers/carol", headers=h).json()["source_id"] == "carol"

    assert client.delete("/v1/customers/carol", headers=h).status_code == 204
    assert_error(client.get(f"/v1/customers/{customer['id']}", headers=h), 404, "not_found")
    assert_error(client.delete("/v1/customers/carol", headers=h), 404, "not_found")
    assert_error(client.put("/v1/customers/carol", json={"name": "x"}, headers=h), 404, "not_found")


def test_permanent_deletion(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    customer = _create(client, project, source_id="dave")
    response = client.post(f"/v1/customers/{customer['id']}/permanent-deletion", headers=h)
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("del_") and body["status"] == "DONE" and body["related_object"] == "customer"
    assert body["related_object_id"] == customer["id"]
    assert body["data_json"]["customer"] == 1 and body["data_json"]["customer_events"] == 1
    assert_error(client.get("/v1/customers/dave", headers=h), 404, "not_found")
    assert_error(client.post("/v1/customers/dave/permanent-deletion", headers=h), 404, "not_found")


def test_invalid_payloads(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    assert_error(client.post("/v1/customers", json={"name": 5}, headers=h), 400, "invalid_payload")
    assert_error(client.post("/v1/customers", json={"birthdate": "17/05/1990"}, headers=h), 400, "invalid_payload")
    assert_error(client.post("/v1/customers", json={"metadata": [1]}, headers=h), 400, "invalid_payload")
    assert_error(client.post("/v1/customers", json={"address": "Oslo"}, headers=h), 400, "invalid_payload")
    assert_error(client.post("/v1/customers", json={"source_id": ""}, headers=h), 400, "invalid_payload")
    assert client.get("/v1/customers", headers=h).json()["total"] == 0


def test_list_paging_and_filters(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    for i in range(5):
        _create(
            client,
            project,
            source_id=f"c{i}",
            name="Even" if i % 2 == 0 else "Odd",
            email=f"c{i}@example.com",
            address={"city": "Paris" if i < 2 else "Rome"},
        )
    page1 = client.get("/v1/customers?limit=2&order=source_id", headers=h).json()
    assert page1["object"] == "list" and page1["data_ref"] == "customers"
    assert [c["source_id"] for c in page1["customers"]] == ["c0", "c1"]
    assert page1["total"] == 5 and page1["has_more"] is True
    page3 = client.get("/v1/customers?limit=2&page=3&order=source_id", headers=h).json()
    assert [c["source_id"] for c in page3["customers"]] == ["c4"] and page3["has_more"] is False
    newest_first = client.get("/v1/customers", headers=h).json()["customers"]
    assert [c["source_id"] for c in newest_first] == ["c4", "c3", "c2", "c1", "c0"]

    assert client.get("/v1/customers?name=Even", headers=h).json()["total"] == 3
    assert client.get("/v1/customers?city=Paris", headers=h).json()["total"] == 2
    by_email = client.get("/v1/customers?email=c3@example.com", headers=h).json()
    assert [c["source_id"] for c in by_email["customers"]] == ["c3"]
    created = newest_first[2]["created_at"]
    before = client.get(f"/v1/customers?created_at[before]={created}&order=source_id", headers=h).json()
    assert [c["source_id"] for c in before["customers"]] == ["c0", "c1"]
    after = client.get("/v1/customers", params={"created_at[after]": created, "order": "-source_id"}, headers=h)
    assert [c["source_id"] for c in after.json()["customers"]] == ["c4", "c3"]

    for bad in ("limit=0", "limit=101", "page=0", "limit=x", "order=name", "created_at[before]=yesterday"):
        assert_error(client.get(f"/v1/customers?{bad}", headers=h), 400, "invalid_query_params")


def test_customers_are_scoped_by_project(client: TestClient, project: ProjectKeys, make_project: Any) -> None:
    other = make_project("Other")
    customer = _create(client, project, source_id="shared-key")
    assert_error(client.get(f"/v1/customers/{customer['id']}", headers=other.headers), 404, "not_found")
    assert_error(client.get("/v1/customers/shared-key", headers=other.headers), 404, "not_found")
    mine = client.post("/v1/customers", json={"source_id": "shared-key"}, headers=other.headers).json()
    assert mine["id"] != customer["id"]
    assert client.get("/v1/customers", headers=other.headers).json()["total"] == 1


def test_activity_is_a_cursor_list(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    customer = _create(client, project, source_id="eve", name="Eve")
    for i in range(3):
        client.put("/v1/customers/eve", json={"name": f"Eve {i}"}, headers=h)
    client.put("/v1/customers/eve", json={"name": "Eve 2"}, headers=h)  # no change, no activity
    first = client.get(f"/v1/customers/{customer['id']}/activity?limit=3", headers=h).json()
    assert first["object"] == "list" and first["data_ref"] == "data" and first["has_more"] is True
    assert [a["type"] for a in first["data"]] == ["customer.updated"] * 3
    assert first["data"][0]["data"]["customer"]["name"] == "Eve 2"
    assert first["more_starting_after"] == first["data"][-1]["id"]
    rest = client.get(
        f"/v1/customers/eve/activity?limit=3&starting_after_id={first['more_starting_after']}", headers=h
    ).json()
    assert [a["type"] for a in rest["data"]] == ["customer.created"] and rest["has_more"] is False
    assert "more_starting_after" not in rest
    oldest = client.get("/v1/customers/eve/activity?order=created_at&type=customer.created", headers=h).json()
    assert [a["type"] for a in oldest["data"]] == ["customer.created"]
    assert_error(
        client.get("/v1/customers/eve/activity?starting_after_id=evcus_x", headers=h), 400, "invalid_query_params"
    )
    assert_error(client.get("/v1/customers/nobody/activity", headers=h), 404, "not_found")
