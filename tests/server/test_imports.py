"""Imports (JSON and CSV): answered at once, run by the worker, bad rows reported, good rows usable at once."""

from __future__ import annotations

from typing import Any

import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.platform import keys
from voucherd.platform.settings import Settings


def run(client: TestClient, project: ProjectKeys, settings: Settings, response: Any, status: int) -> dict[str, Any]:
    """The action a trigger answered with, after the worker ran it."""
    assert response.status_code == status, response.text
    action_id = response.json()["async_action_id"]
    assert action_id.startswith("aa_")
    drain_worker(settings)
    action: dict[str, Any] = client.get(f"/v1/async-actions/{action_id}", headers=project.headers).json()
    assert action["status"] == "DONE", action
    assert action["operation_status"] == "SUCCESS" and action["progress"] == 100
    return action


def upload(client: TestClient, project: ProjectKeys, path: str, text: str) -> Any:
    return client.post(path, headers=project.headers, files={"file": ("import.csv", text.encode(), "text/csv")})


def validate(client: TestClient, project: ProjectKeys, code: str, amount: int = 20000) -> dict[str, Any]:
    body = {"redeemables": [{"object": "voucher", "id": code}], "order": {"amount": amount}}
    answer: dict[str, Any] = client.post("/v1/validations", headers=project.headers, json=body).json()
    return answer


STANDALONE = (
    "Code,Voucher Type,Value,Discount Type,Category,Start Date,Expiration Date,Redemption Limit,Redeemed Quantity,"
    "Redeemed Amount,Active,Additional Info,Region\n"
    "IMP-AMOUNT,DISCOUNT_VOUCHER,10,AMOUNT,New,2020-01-01,2090-01-01,5,1,,TRUE,first,Europe\n"
    "IMP-PERCENT,DISCOUNT_VOUCHER,15,PERCENT,,,,,,,true,,\n"
    "IMP-BAD,DISCOUNT_VOUCHER,10,SOMETIMES,,,,,,,TRUE,,\n"
    "IMP-GIFT,GIFT_VOUCHER,100,,,,,,,25,TRUE,,Asia\n"
    "IMP-AMOUNT,DISCOUNT_VOUCHER,5,AMOUNT,,,,,,,TRUE,,\n"
    "IMP-TAKEN,DISCOUNT_VOUCHER,5,AMOUNT,,,,,,,TRUE,,\n"
    "IMP-DATE,DISCOUNT_VOUCHER,5,AMOUNT,,yesterday,,,,,TRUE,,\n"
)


def test_voucher_csv_import_reports_bad_rows_and_codes_validate_at_once(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    taken = {"code": "IMP-TAKEN", "type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}
    assert client.post("/v1/vouchers", headers=project.headers, json=taken).status_code == 200

    action = run(client, project, settings, upload(client, project, "/v1/vouchers/importCSV", STANDALONE), 202)

    assert action["type"] == "VOUCHERS.IMPORT_CSV"
    result = action["result"]
    assert result["done_count"] == 3 and result["failed_count"] == 4
    failed = {f["row"]: f for f in result["failed"]}
    assert set(failed) == {3, 5, 6, 7}
    assert failed[3]["code"] == "IMP-BAD" and "Discount Type" in failed[3]["reason"]
    assert "more than once" in failed[5]["reason"]
    assert failed[6]["code"] == "IMP-TAKEN" and "already exists" in failed[6]["reason"]
    assert "start_date" in failed[7]["reason"]

    voucher = client.get("/v1/vouchers/IMP-AMOUNT", headers=project.headers).json()
    assert voucher["discount"] == {"type": "AMOUNT", "amount_off": 1000}
    assert voucher["redemption"]["quantity"] == 5 and voucher["redemption"]["redeemed_quantity"] == 1
    assert voucher["metadata"] == {"Region": "Europe"} and voucher["additional_info"] == "first"
    assert voucher["category"] == "New"
    gift = client.get("/v1/vouchers/IMP-GIFT", headers=project.headers).json()
    assert gift["gift"]["amount"] == 10000 and gift["gift"]["balance"] == 7500

    checked = validate(client, project, "IMP-AMOUNT")
    assert checked["valid"] is True, checked
    assert checked["redeemables"][0]["result"]["discount"]["amount_off"] == 1000
    assert validate(client, project, "IMP-PERCENT")["valid"] is True


def test_voucher_json_import_into_a_campaign(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    campaign = client.post(
        "/v1/campaigns",
        headers=project.headers,
        json={
            "name": "Imported",
            "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 300}},
        },
    ).json()
    items = [
        {"code": "CAMP-1"},
        {"code": "CAMP-2", "metadata": {"a": 1}},
        {"code": "bad code"},
        {"code": "CAMP-3", "type": "GIFT_VOUCHER"},
    ]
    response = client.post(f"/v1/campaigns/{campaign['id']}/import", headers=project.headers, json=items)
    action = run(client, project, settings, response, 202)

    assert action["result"]["done_count"] == 2 and action["result"]["failed_count"] == 2
    assert [f["row"] for f in action["result"]["failed"]] == [3, 4]
    listed = client.get(f"/v1/vouchers?campaign_id={campaign['id']}", headers=project.headers).json()
    assert sorted(v["code"] for v in listed["vouchers"]) == ["CAMP-1", "CAMP-2"]
    checked = validate(client, project, "CAMP-2")
    assert checked["valid"] is True and checked["redeemables"][0]["result"]["discount"]["amount_off"] == 300


def test_campaign_csv_import_takes_the_standalone_header(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    campaign = client.post(
        "/v1/campaigns",
        headers=project.headers,
        json={
            "name": "CSV",
            "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "PERCENT", "percent_off": 10}},
        },
    ).json()
    response = upload(client, project, "/v1/campaigns/CSV/importCSV", STANDALONE.replace("IMP-", "CSV-"))
    action = run(client, project, settings, response, 200)

    assert action["type"] == "CAMPAIGN.VOUCHERS_IMPORT_CSV"
    # into a campaign the discount comes from the campaign: only the duplicated code and the bad date fail
    assert action["result"]["failed_count"] == 2, action["result"]
    listed = client.get(f"/v1/vouchers?campaign_id={campaign['id']}&limit=100", headers=project.headers).json()
    assert len(listed["vouchers"]) == 5
    assert validate(client, project, "CSV-BAD")["valid"] is True


def test_vouchers_json_import(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    items = [
        {"code": "JSON-1", "type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 500}},
        {"code": "JSON-2", "type": "GIFT_VOUCHER", "gift": {"amount": 5000}},
        {"code": "JSON-3", "type": "DISCOUNT_VOUCHER"},
        "not an object",
    ]
    action = run(
        client, project, settings, client.post("/v1/vouchers/import", headers=project.headers, json=items), 202
    )
    assert action["result"]["done_count"] == 2 and action["result"]["failed_count"] == 2
    assert validate(client, project, "JSON-1")["valid"] is True


def test_bad_uploads_get_a_clear_400(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    assert_error(upload(client, project, "/v1/vouchers/importCSV", ""), 400, "invalid_payload")
    body = assert_error(
        upload(client, project, "/v1/vouchers/importCSV", "Value,Active\n1,TRUE\n"), 400, "invalid_payload"
    )
    assert "code" in body["details"]
    body = assert_error(upload(client, project, "/v1/vouchers/importCSV", 'Code\n"OPEN\n'), 400, "invalid_payload")
    assert "malformed" in body["details"]
    latin = client.post(
        "/v1/customers/importCSV",
        headers=project.headers,
        files={"file": ("c.csv", "Name\nJos\xe9\n".encode("latin-1"))},
    )
    assert "UTF-8" in assert_error(latin, 400, "invalid_payload")["details"]
    no_file = client.post("/v1/vouchers/importCSV", headers=project.headers, json={"file": "x"})
    assert "multipart" in assert_error(no_file, 400, "invalid_payload")["details"]
    wrong_field = client.post(
        "/v1/vouchers/importCSV", headers=project.headers, files={"upload": ("a.csv", b"Code\nA\n")}
    )
    assert "'file'" in assert_error(wrong_field, 400, "invalid_payload")["details"]
    big = "Code\n" + "X" * (settings.max_upload_bytes + 10) + "\n"
    assert (
        "limit"
        in assert_error(upload(client, project, "/v1/vouchers/importCSV", big), 400, "invalid_payload")["details"]
    )
    missing = upload(client, project, "/v1/campaigns/nope/importCSV", "Code\nA\n")
    assert_error(missing, 404, "not_found")


CUSTOMERS = (
    "Name,Source_id,Description,Email,Phone,Address_line_1,Address_line_2,City,Postal_Code,State,Country,Birthdate,"
    "favorite_brands\n"
    "John Smith,john,A good customer.,john@example.com,+1 555,100 Main St,,New York,12345,NY,US,2022-07-03,"
    '"Nike,Fenty"\n'
    "Ann,ann,,ann@example.com,,,,,,,,not-a-date,\n"
    "Nobody,,,nobody@example.com,,,,,,,,,\n"
)


def test_customer_csv_import_upserts_on_source_id(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    existing = client.post(
        "/v1/customers", headers=project.headers, json={"source_id": "john", "name": "J", "metadata": {"tier": "gold"}}
    ).json()
    response = upload(client, project, "/v1/customers/importCSV", CUSTOMERS)
    action = run(client, project, settings, response, 202)

    assert action["result"]["done_count"] == 2 and action["result"]["failed_count"] == 1
    assert action["result"]["failed"][0]["row"] == 2 and action["result"]["failed"][0]["source_id"] == "ann"
    john = client.get("/v1/customers/john", headers=project.headers).json()
    assert john["id"] == existing["id"] and john["name"] == "John Smith"
    assert john["metadata"] == {"tier": "gold", "favorite_brands": "Nike,Fenty"}
    assert john["address"]["city"] == "New York" and john["address"]["postal_code"] == "12345"
    assert john["birthdate"] == "2022-07-03"
    listed = client.get("/v1/customers?limit=100", headers=project.headers).json()
    assert {c["email"] for c in listed["customers"]} == {"john@example.com", "nobody@example.com"}


def test_product_and_sku_csv_imports(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    products_csv = (
        "name,source_id,price,attributes,image_url,Fashion\n"
        'T-Shirt,tshirt,21,"color,size",https://images.example/t.jpg,slim\n'
        ",nameless,5,,,\n"
        "Cap,cap,abc,,,\n"
    )
    action = run(client, project, settings, upload(client, project, "/v1/products/importCSV", products_csv), 200)
    assert action["result"]["done_count"] == 1 and action["result"]["failed_count"] == 2
    product = client.get("/v1/products/tshirt", headers=project.headers).json()
    assert product["price"] == 2100 and product["attributes"] == ["color", "size"]
    assert product["metadata"] == {"Fashion": "slim"}

    skus_csv = (
        "product_id,sku,source_id,price,image_url,attributes\n"
        "tshirt,Small Red,sku-1,14.5,,\"{'color':'red','size':'S'}\"\n"
        "missing,Other,sku-2,1,,\n"
    )
    action = run(client, project, settings, upload(client, project, "/v1/skus/importCSV", skus_csv), 200)
    assert action["result"]["done_count"] == 1 and action["result"]["failed_count"] == 1
    sku = client.get("/v1/skus/sku-1", headers=project.headers).json()
    assert sku["price"] == 1450 and sku["attributes"] == {"color": "red", "size": "S"}


def test_orders_import(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    orders = [
        {"source_id": "o-1", "amount": 1000, "status": "PAID", "customer": {"source_id": "buyer"}},
        {"source_id": "o-2", "amount": -5},
        {"source_id": "o-3", "amount": 300},
    ]
    action = run(client, project, settings, client.post("/v1/orders/import", headers=project.headers, json=orders), 200)
    assert action["result"]["done_count"] == 2 and action["result"]["failed_count"] == 1
    assert action["result"]["failed"][0]["source_id"] == "o-2"
    assert client.get("/v1/orders/o-1", headers=project.headers).json()["status"] == "PAID"
    assert client.get("/v1/customers/buyer", headers=project.headers).status_code == 200


def test_customer_csv_reimport_writes_only_changes_and_keeps_redis_ids_in_step(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    h = project.headers
    known = client.post("/v1/customers", headers=h, json={"source_id": "known", "name": "K"}).json()
    store = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        store.hdel(keys.customer_ids(project.project_id), "known")  # Redis forgot it: the import must not fork it
        text = "Source_id,Name,Tier\nknown,K,\na,Ann,gold\nb,Bob,silver\n"
        first = run(client, project, settings, upload(client, project, "/v1/customers/importCSV", text), 202)
        assert first["result"]["done_count"] == 3 and first["result"]["failed_count"] == 0
        assert store.hget(keys.customer_ids(project.project_id), "known") == known["id"]
        bob = client.get("/v1/customers/b", headers=h).json()
        again = text.replace("Bob,silver", "Bobby,silver")
        second = run(client, project, settings, upload(client, project, "/v1/customers/importCSV", again), 202)
        assert second["result"]["done_count"] == 3 and second["result"]["failed_count"] == 0
    finally:
        store.close()
    assert client.get("/v1/customers/known", headers=h).json()["id"] == known["id"]
    ann = client.get("/v1/customers/a", headers=h).json()
    assert ann["metadata"] == {"Tier": "gold"} and ann["updated_at"] is None  # unchanged rows are not rewritten
    bobby = client.get("/v1/customers/b", headers=h).json()
    assert bobby["id"] == bob["id"] and bobby["name"] == "Bobby" and bobby["updated_at"] is not None
