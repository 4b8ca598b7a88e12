"""Exports (issue 17): created over the API, written by the worker, downloaded by their link."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.platform import db
from voucherd.platform.settings import Settings


@pytest.fixture
def h(project: ProjectKeys) -> dict[str, str]:
    return project.headers


def sql(settings: Settings, statement: str, *args: Any) -> None:
    async def go() -> None:
        conn = await db.connect(settings.database_url)
        try:
            await conn.execute(statement, *args)
        finally:
            await conn.close()

    asyncio.run(go())


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def finished(client: TestClient, h: dict[str, str], settings: Settings, export: dict[str, Any]) -> dict[str, Any]:
    """Run the worker, then the export is DONE with a download link."""
    assert export["status"] == "SCHEDULED" and export["result"] is None and export["object"] == "export"
    drain_worker(settings)
    done: dict[str, Any] = ok(client.get(f"/v1/exports/{export['id']}", headers=h))
    assert done["status"] == "DONE", done
    return done


def download(client: TestClient, export: dict[str, Any]) -> list[list[str]]:
    """The file, through the link alone (no API keys), as CSV rows (heading first)."""
    url = urlsplit(export["result"]["url"])
    assert url.path == f"/v1/exports/{export['id']}" and url.query.startswith("token=")
    response = client.get(f"{url.path}?{url.query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-disposition"].endswith('.csv"')
    return list(csv.reader(io.StringIO(response.text)))


def export_of(client: TestClient, h: dict[str, str], settings: Settings, body: dict[str, Any]) -> list[list[str]]:
    return download(client, finished(client, h, settings, ok(client.post("/v1/exports", json=body, headers=h))))


def seed_checkout(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    """Two codes of a campaign, a customer, two redemptions (one failed), an order and a publication."""
    campaign = ok(
        client.post(
            "/v1/campaigns",
            json={
                "name": "Spring",
                "type": "STATIC",
                "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 500}},
            },
            headers=h,
        )
    )
    ok(
        client.post(
            f"/v1/campaigns/{campaign['id']}/vouchers/AAA", json={"metadata": {"color": "red", "it's": "q"}}, headers=h
        )
    )
    ok(client.post(f"/v1/campaigns/{campaign['id']}/vouchers/BBB", json={"metadata": {"color": "blue"}}, headers=h))
    ok(client.post("/v1/customers", json={"source_id": "ann", "name": "Ann", "email": "ann@example.com"}, headers=h))
    body = {
        "redeemables": [{"object": "voucher", "id": "AAA"}],
        "customer": {"source_id": "ann"},
        "order": {"amount": 2000, "source_id": "o-1"},
        "metadata": {"shop": "north"},
    }
    assert ok(client.post("/v1/redemptions", json=body, headers=h))["redemptions"][0]["result"] == "SUCCESS"
    failed = client.post(
        "/v1/redemptions", json={**body, "redeemables": [{"object": "voucher", "id": "NONE"}]}, headers=h
    )
    assert failed.status_code == 400
    ok(client.post("/v1/publications", json={"voucher": "BBB", "customer": {"source_id": "ann"}}, headers=h))
    drain_worker(settings)


def test_every_object_exports_its_default_fields(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    seed_checkout(client, h, settings)
    vouchers = export_of(client, h, settings, {"exported_object": "voucher"})
    assert vouchers[0] == ["Code", "Voucher Type", "Value", "Discount Type"]
    assert sorted(vouchers[1:]) == [
        ["AAA", "DISCOUNT_VOUCHER", "500", "AMOUNT"],
        ["BBB", "DISCOUNT_VOUCHER", "500", "AMOUNT"],
    ]

    redemptions = export_of(client, h, settings, {"exported_object": "redemption"})
    assert redemptions[0] == ["ID", "Object", "Voucher Code", "Customer ID", "Date", "Result"]
    assert [r[5] for r in redemptions[1:]] == ["SUCCESS"]  # a request refused as a whole stores nothing
    assert redemptions[1][0].startswith("r_") and redemptions[1][2] == "AAA" and redemptions[1][4].endswith("Z")

    customers = export_of(client, h, settings, {"exported_object": "customer"})
    assert customers == [["Name", "Source ID"], ["Ann", "ann"]]

    orders = export_of(client, h, settings, {"exported_object": "order"})
    assert orders[0] == ["ID", "Source ID", "Status"] and [r[1:] for r in orders[1:]] == [["o-1", "PAID"]]

    publications = export_of(client, h, settings, {"exported_object": "publication"})
    assert publications[0] == ["Voucher Code", "Customer ID", "Date", "Channel"]
    assert [(r[0], r[3]) for r in publications[1:]] == [("BBB", "API")]


def test_fields_filters_and_order(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    seed_checkout(client, h, settings)
    body = {
        "exported_object": "voucher",
        "parameters": {
            "fields": ["code", "campaign", "redemption_count", "metadata.color", "metadata.it's"],
            "order": "-code",
        },
    }
    assert export_of(client, h, settings, body) == [
        ["Code", "Campaign", "Redemption Count", "color", "it's"],
        ["BBB", "Spring", "0", "blue", ""],
        ["AAA", "Spring", "1", "red", "q"],
    ]
    quoted = {
        "exported_object": "voucher",
        "parameters": {"fields": ["code"], "filters": {"metadata.it's": {"conditions": {"$is": "q"}}}},
    }
    assert export_of(client, h, settings, quoted) == [["Code"], ["AAA"]]
    filtered = {
        "exported_object": "voucher",
        "parameters": {
            "fields": ["code"],
            "filters": {"junction": "and", "metadata.color": {"conditions": {"$is": "red"}}},
        },
    }
    assert export_of(client, h, settings, filtered) == [["Code"], ["AAA"]]
    either = {
        "exported_object": "voucher",
        "parameters": {
            "fields": ["code"],
            "order": "code",
            "filters": {
                "junction": "OR",
                "code": {"conditions": {"$in": ["BBB"]}},
                "redemption_count": {"conditions": {"$more_than": 0}},
            },
        },
    }
    assert export_of(client, h, settings, either) == [["Code"], ["AAA"], ["BBB"]]
    by_campaign = {
        "exported_object": "voucher",
        "parameters": {"fields": ["code"], "order": "code", "campaign_id": "Spring"},
    }
    assert export_of(client, h, settings, by_campaign) == [["Code"], ["AAA"], ["BBB"]]
    other = {"exported_object": "voucher", "parameters": {"fields": ["code"], "campaign_id": "camp_none"}}
    assert export_of(client, h, settings, other) == [["Code"]]
    redemptions = {
        "exported_object": "redemption",
        "parameters": {
            "fields": ["voucher_code", "customer_source_id", "customer_name", "order_amount", "metadata"],
            "filters": {
                "date": {"conditions": {"$after": "2000-01-01T00:00:00Z"}},
                "result": {"conditions": {"$is": "SUCCESS"}},
            },
        },
    }
    rows = export_of(client, h, settings, redemptions)
    assert rows[0] == ["Voucher Code", "Customer Source ID", "Customer Name", "Order Amount", "Metadata"]
    assert rows[1][:4] == ["AAA", "ann", "Ann", "2000"] and '"shop": "north"' in rows[1][4]
    customers = {"exported_object": "customer", "parameters": {"fields": ["email", "redemptions_total_redeemed"]}}
    assert export_of(client, h, settings, customers) == [
        ["Email", "Redemptions Total Redeemed"],
        ["ann@example.com", "1"],
    ]


def test_an_export_runs_as_an_async_action_and_is_listed_and_deleted(
    client: TestClient, h: dict[str, str], settings: Settings, project: ProjectKeys
) -> None:
    first = ok(client.post("/v1/exports", json={"exported_object": "customer"}, headers=h))
    second = ok(client.post("/v1/exports", json={"exported_object": "order"}, headers=h))
    listed = ok(client.get("/v1/exports", headers=h))
    assert listed["object"] == "list" and listed["data_ref"] == "exports" and listed["total"] == 2
    assert [e["id"] for e in listed["exports"]] == [second["id"], first["id"]]
    assert [e["id"] for e in ok(client.get("/v1/exports?order=created_at&limit=1", headers=h))["exports"]] == [
        first["id"]
    ]
    done = finished(client, h, settings, first)
    assert download(client, done) == [["Name", "Source ID"]]  # no customers yet: the heading alone
    action = ok(client.get("/v1/async-actions?limit=10", headers=h))["async_actions"]
    exports_run = [a for a in action if a["type"] == "EXPORT"]
    assert len(exports_run) == 2 and all(a["status"] == "DONE" and a["progress"] == 100 for a in exports_run)

    assert client.delete(f"/v1/exports/{first['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/exports/{first['id']}", headers=h), 404, "not_found")
    url = urlsplit(done["result"]["url"])
    assert_error(client.get(f"{url.path}?{url.query}"), 404, "not_found")  # the link went with it
    assert ok(client.get("/v1/exports", headers=h))["total"] == 1


def test_export_errors(client: TestClient, h: dict[str, str], settings: Settings, make_project: Any) -> None:
    def refused(body: Any, key: str = "invalid_export_params") -> dict[str, Any]:
        return assert_error(client.post("/v1/exports", json=body, headers=h), 400, key)

    assert "exported_object" in refused({"exported_object": "planet"})["details"]
    refused({})
    refused({"exported_object": ["voucher"]})
    assert "colour" in refused({"exported_object": "voucher", "parameters": {"fields": ["colour"]}})["details"]
    refused({"exported_object": "voucher", "parameters": {"fields": []}})
    refused({"exported_object": "voucher", "parameters": {"order": "-value"}})
    refused({"exported_object": "voucher", "parameters": {"filters": {"code": {"conditions": {"$after": "x"}}}}})
    refused({"exported_object": "voucher", "parameters": {"filters": {"code": "AAA"}}})
    refused({"exported_object": "order", "parameters": {"filters": {"amount": {"conditions": {"$more_than": "a"}}}}})
    refused({"exported_object": "order", "parameters": {"filters": {"planet": {"conditions": {"$is": "x"}}}}})
    refused({"exported_object": "points_expiration", "parameters": {"fields": ["metadata.x"]}})
    refused({"exported_object": "order", "parameters": "all"})
    assert_error(client.post("/v1/exports", content=b"[1]", headers=h), 400, "invalid_payload")
    assert_error(client.get("/v1/exports?limit=0", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/exports?order=name", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/exports/exp_nope", headers=h), 404, "not_found")
    assert_error(client.delete("/v1/exports/exp_nope", headers=h), 404, "not_found")
    assert_error(client.get("/v1/exports"), 401, "unauthorized")

    export = finished(client, h, settings, ok(client.post("/v1/exports", json={"exported_object": "order"}, headers=h)))
    assert_error(client.get(f"/v1/exports/{export['id']}?token=wrong"), 404, "not_found")
    assert_error(client.get(f"/v1/exports/{export['id']}?token=%C3%A9t%C3%A9"), 404, "not_found")  # not ASCII
    assert_error(client.get("/v1/exports/exp_nope?token=x"), 404, "not_found")
    assert_error(client.get(f"/v1/exports/{export['id']}?xtoken=1"), 401, "unauthorized")
    other = make_project("Other").headers
    assert_error(client.get(f"/v1/exports/{export['id']}", headers=other), 404, "not_found")


def test_per_resource_exports(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    seed_checkout(client, h, settings)
    orders = ok(client.post("/v1/orders/export", json={"parameters": {"fields": ["source_id", "amount"]}}, headers=h))
    assert orders["exported_object"] == "order"
    assert download(client, finished(client, h, settings, orders)) == [["Source ID", "Amount"], ["o-1", "2000"]]
    assert ok(client.post("/v1/orders/export", headers=h))["parameters"] == {}  # no body: the default fields

    gift = ok(
        client.post(
            "/v1/campaigns",
            json={"name": "Cards", "vouchers_count": 0, "voucher": {"type": "GIFT_VOUCHER", "gift": {"amount": 1000}}},
            headers=h,
        )
    )
    card = ok(client.post(f"/v1/campaigns/{gift['id']}/vouchers/GIFT-1", headers=h))
    ok(client.post("/v1/vouchers/GIFT-1/balance", json={"amount": 700, "reason": "bonus"}, headers=h))
    ok(client.post("/v1/vouchers/GIFT-1/balance", json={"amount": -200}, headers=h))

    by_campaign = ok(client.post(f"/v1/campaigns/{gift['id']}/transactions/export", headers=h))
    assert by_campaign["exported_object"] == "voucher_transactions"
    assert by_campaign["parameters"]["filters"] == {"campaign_id": {"conditions": {"$in": [gift["id"]]}}}
    rows = download(client, finished(client, h, settings, by_campaign))
    assert rows[0] == ["ID", "Type", "Source ID", "Reason", "Source", "Balance", "Amount", "Created At"]
    assert sorted((r[1], r[3], r[5], r[6]) for r in rows[1:]) == [
        ("CREDITS_ADDITION", "bonus", "1700", "700"),
        ("CREDITS_REMOVAL", "", "1500", "-200"),
    ]

    by_code = ok(
        client.post(
            "/v1/vouchers/GIFT-1/transactions/export",
            json={"parameters": {"fields": ["type", "voucher_id"], "order": "created_at"}},
            headers=h,
        )
    )
    assert by_code["parameters"]["filters"] == {"voucher_id": {"conditions": {"$in": ["GIFT-1"]}}}
    assert download(client, finished(client, h, settings, by_code)) == [
        ["Type", "Voucher ID"],
        ["CREDITS_ADDITION", card["id"]],
        ["CREDITS_REMOVAL", card["id"]],
    ]
    # The path holds the rows to its resource, whatever the filters add.
    widened = {"parameters": {"fields": ["type"], "filters": {"junction": "or", "type": {"conditions": {"$is": "X"}}}}}
    empty = ok(client.post("/v1/vouchers/AAA/transactions/export", json=widened, headers=h))
    assert download(client, finished(client, h, settings, empty)) == [["Type"]]

    assert_error(client.post("/v1/campaigns/nope/transactions/export", headers=h), 404, "not_found")
    assert_error(client.post("/v1/vouchers/NOPE/transactions/export", headers=h), 404, "not_found")
    assert_error(
        client.post("/v1/vouchers/GIFT-1/transactions/export", json={"parameters": {"fields": ["planet"]}}, headers=h),
        400,
        "invalid_export_params",
    )


def test_loyalty_exports(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    program = ok(
        client.post(
            "/v1/loyalties",
            json={"name": "Club", "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 0}}},
            headers=h,
        )
    )
    card = ok(client.post(f"/v1/loyalties/{program['id']}/members", json={"customer": {"source_id": "max"}}, headers=h))
    soon = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    ok(
        client.post(
            f"/v1/loyalties/members/{card['code']}/balance",
            json={"points": 100, "expiration_type": "CUSTOM_DATE", "expiration_date": soon},
            headers=h,
        )
    )
    ok(client.post(f"/v1/loyalties/members/{card['code']}/balance", json={"points": 5}, headers=h))

    for path in (
        f"/v1/loyalties/{program['id']}/transactions/export",
        f"/v1/loyalties/members/{card['code']}/transactions/export",
        f"/v1/loyalties/{program['id']}/members/{card['code']}/transactions/export",
    ):
        export = ok(client.post(path, json={"parameters": {"fields": ["type", "amount", "balance"]}}, headers=h))
        rows = download(client, finished(client, h, settings, export))
        assert sorted(rows[1:]) == [["POINTS_ADDITION", "100", "100"], ["POINTS_ADDITION", "5", "105"]], path

    expiring = ok(client.post(f"/v1/loyalties/{program['id']}/points-expiration/export", headers=h))
    assert expiring["exported_object"] == "points_expiration"
    rows = download(client, finished(client, h, settings, expiring))
    assert rows[0] == ["ID", "Campaign ID", "Voucher ID", "Status", "Expires At", "Points"]
    assert [r[1:] for r in rows[1:]] == [[program["id"], card["id"], "ACTIVE", soon, "100"]]
    general = {
        "exported_object": "points_expiration",
        "parameters": {"filters": {"voucher_id": {"conditions": {"$in": [card["id"]]}}}},
    }
    assert len(export_of(client, h, settings, general)) == 2

    assert_error(client.post("/v1/loyalties/nope/points-expiration/export", headers=h), 404, "not_found")
    assert_error(client.post("/v1/loyalties/members/NOPE/transactions/export", headers=h), 404, "not_found")
    other = ok(
        client.post(
            "/v1/loyalties",
            json={"name": "Other", "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 0}}},
            headers=h,
        )
    )
    assert_error(
        client.post(f"/v1/loyalties/{other['id']}/members/{card['code']}/transactions/export", headers=h),
        404,
        "not_found",
    )


def test_points_expiration_lists_a_members_buckets(
    client: TestClient, h: dict[str, str], settings: Settings, project: ProjectKeys
) -> None:
    program = ok(
        client.post(
            "/v1/loyalties",
            json={"name": "Club", "voucher": {"type": "LOYALTY_CARD", "loyalty_card": {"points": 0}}},
            headers=h,
        )
    )
    card = ok(client.post(f"/v1/loyalties/{program['id']}/members", json={"customer": {"source_id": "max"}}, headers=h))
    soon = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    later = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    for points, when in ((100, soon), (50, later)):
        body = {"points": points, "expiration_type": "CUSTOM_DATE", "expiration_date": when}
        ok(client.post(f"/v1/loyalties/members/{card['code']}/balance", json=body, headers=h))
    ok(client.post(f"/v1/loyalties/members/{card['code']}/balance", json={"points": -30}, headers=h))
    expired = "INSERT INTO loyalty_points_buckets (id, project_id, voucher_id, code, points, expires_at) "
    expired += "VALUES ('lopb_old', $1, $2, $3, 0, now() - interval '1 day')"
    sql(settings, expired, project.project_id, card["id"], card["code"])  # left out of the list

    path = f"/v1/loyalties/{program['id']}/members/{card['code']}/points-expiration"
    listed = ok(client.get(path, headers=h))
    assert listed["object"] == "list" and listed["data_ref"] == "data" and listed["total"] == 2
    assert [(b["expires_at"], b["bucket"]["total_points"], b["status"]) for b in listed["data"]] == [
        (soon, 70, "ACTIVE"),  # spending takes the soonest-expiring points first
        (later, 50, "ACTIVE"),
    ]
    first = listed["data"][0]
    assert first["id"].startswith("lopb_") and first["object"] == "loyalty_points_bucket"
    assert first["voucher_id"] == card["id"] and first["campaign_id"] == program["id"]
    assert [b["expires_at"] for b in ok(client.get(f"{path}?limit=1&page=2", headers=h))["data"]] == [later]

    assert_error(
        client.get(f"/v1/loyalties/{program['id']}/members/NOPE/points-expiration", headers=h), 404, "not_found"
    )
    assert_error(
        client.get(f"/v1/loyalties/nope/members/{card['code']}/points-expiration", headers=h), 404, "not_found"
    )
    assert_error(client.get(f"{path}?limit=0", headers=h), 400, "invalid_query_params")


def test_campaign_transactions_list(client: TestClient, h: dict[str, str]) -> None:
    gift = ok(
        client.post(
            "/v1/campaigns",
            json={"name": "Cards", "voucher": {"type": "GIFT_VOUCHER", "gift": {"amount": 1000}}},
            headers=h,
        )
    )
    first = ok(client.post(f"/v1/campaigns/{gift['id']}/vouchers/G-1", headers=h))
    ok(client.post(f"/v1/campaigns/{gift['id']}/vouchers/G-2", headers=h))
    for code, amount in (("G-1", 100), ("G-2", 200), ("G-1", -50)):
        ok(client.post(f"/v1/vouchers/{code}/balance", json={"amount": amount}, headers=h))
    path = f"/v1/campaigns/{gift['id']}/transactions"
    listed = ok(client.get(path, headers=h))
    assert listed["object"] == "list" and listed["data_ref"] == "data" and listed["has_more"] is False
    assert [t["type"] for t in listed["data"]] == ["CREDITS_REMOVAL", "CREDITS_ADDITION", "CREDITS_ADDITION"]
    assert all(t["campaign_id"] == gift["id"] for t in listed["data"])
    page = ok(client.get(f"{path}?order=id&limit=2", headers=h))
    assert page["has_more"] is True
    rest = ok(client.get(f"{path}?order=id&limit=2&starting_after_id={page['more_starting_after']}", headers=h))
    assert [t["id"] for t in page["data"] + rest["data"]] == [t["id"] for t in reversed(listed["data"])]
    by_card = ok(client.get(f"{path}?filters[voucher_id][conditions][$in][0]={first['id']}", headers=h))
    assert len(by_card["data"]) == 2
    assert ok(client.get(f"/v1/campaigns/{gift['id']}/transactions?limit=1", headers=h))["has_more"] is True

    assert_error(client.get("/v1/campaigns/nope/transactions", headers=h), 404, "not_found")
    assert_error(client.get(f"{path}?order=created_at", headers=h), 400, "invalid_query_params")
    assert_error(client.get(f"{path}?filters[amount][conditions][$is]=1", headers=h), 400, "invalid_query_params")


def test_product_and_sku_exports(client: TestClient, h: dict[str, str], settings: Settings) -> None:
    product = ok(
        client.post(
            "/v1/products",
            json={"name": "Shirt", "price": 2500, "source_id": "shirt", "attributes": ["color"]},
            headers=h,
        )
    )
    ok(
        client.post(
            f"/v1/products/{product['id']}/skus",
            json={"sku": "Red shirt", "price": 2600, "attributes": {"color": "red"}},
            headers=h,
        )
    )
    body = {"exported_object": "product", "parameters": {"filters": {"source_id": {"conditions": {"$is": "shirt"}}}}}
    products = export_of(client, h, settings, body)
    assert products[0] == ["ID", "Name", "Price", "Image Url", "Source ID", "Attributes", "Created At"]
    assert [r[1:3] + r[4:6] for r in products[1:]] == [["Shirt", "2500", "shirt", "color"]]
    skus = export_of(
        client,
        h,
        settings,
        {"exported_object": "sku", "parameters": {"fields": ["sku", "product_id", "price", "attributes"]}},
    )
    assert skus == [
        ["Sku", "Product ID", "Price", "Attributes"],
        ["Red shirt", product["id"], "2600", '{"color": "red"}'],
    ]
