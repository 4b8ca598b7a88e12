"""Hostile input: every malformed, oversized or tricky request is a clean 4xx in the Voucherify shape,
never a 500, and no answer leaks a traceback, SQL or a secret."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from server.body import MAX_DEPTH, MAX_ID_LENGTH, MAX_SAFE_INTEGER
from server.routing import MAX_QUERY_BYTES
from tests.conftest import ProjectKeys, assert_error
from voucherd.checkout.redeem_request import MAX_ORDER_ITEMS, MAX_REDEEMABLES
from voucherd.platform.money import MAX_MONEY

DISCOUNT = {"type": "AMOUNT", "amount_off": 500}
LEAKS = ("Traceback", 'File "', "asyncpg", "psycopg", "SELECT ", "INSERT ", "UPDATE ", "postgres", "redis://", "Error(")


def assert_clean(response: Any, project: ProjectKeys) -> None:
    """Not a 5xx, JSON, and nothing of the server's insides or the caller's secrets in it."""
    assert response.status_code < 500, response.text
    for leak in (*LEAKS, project.app_token, project.client_token):
        assert leak not in response.text, f"{leak!r} leaked: {response.text}"


def rejected(response: Any, project: ProjectKeys, status: int = 400, key: str = "invalid_payload") -> dict[str, Any]:
    assert_clean(response, project)
    return assert_error(response, status, key)


def nested(depth: int, open_: str = '{"a":', close: str = "}") -> bytes:
    return (open_ * depth + "1" + close * depth).encode()


def post_raw(client: TestClient, project: ProjectKeys, path: str, raw: bytes) -> Any:
    return client.post(path, content=raw, headers={**project.headers, "content-type": "application/json"})


# ------------------------------------------------------------------------------------------ body size and depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 1_000, 100_000])
def test_deeply_nested_bodies_are_400(client: TestClient, project: ProjectKeys, depth: int) -> None:
    meta = nested(depth)
    bodies = {
        "/v1/customers": b'{"source_id":"deep","metadata":' + meta + b"}",
        "/v1/validations": b'{"redeemables":[{"object":"voucher","id":"X"}],"order":{"metadata":' + meta + b"}}",
        "/v1/orders": b'{"amount":1,"metadata":' + meta + b"}",
        "/v1/vouchers/DEEP": b'{"discount":{"type":"AMOUNT","amount_off":1},"metadata":' + meta + b"}",
        "/v1/events": b'{"event":"e","customer":{"source_id":"x"},"metadata":' + nested(depth, "[", "]") + b"}",
    }
    for path, raw in bodies.items():
        rejected(post_raw(client, project, path, raw), project)


def test_nesting_within_the_limit_is_accepted(client: TestClient, project: ProjectKeys) -> None:
    raw = b'{"source_id":"nested","metadata":' + nested(MAX_DEPTH - 2) + b"}"
    response = post_raw(client, project, "/v1/customers", raw)
    assert response.status_code == 200, response.text


def test_oversized_bodies_are_413(client: TestClient, project: ProjectKeys, settings: Any) -> None:
    raw = b'{"source_id":"big","metadata":{"a":"' + b"x" * settings.max_body_bytes + b'"}}'
    rejected(post_raw(client, project, "/v1/customers", raw), project, 413, "query_too_large")


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"a":1,}', b"[1,2", b'{"source_id":"\\ud800"}', b"\xff\xfe", b"NaN", b'{"a":Infinity}'],
)
def test_malformed_json_is_400(client: TestClient, project: ProjectKeys, raw: bytes) -> None:
    rejected(post_raw(client, project, "/v1/customers", raw), project)


def test_a_body_that_is_not_an_object_is_400(client: TestClient, project: ProjectKeys) -> None:
    for raw in (b"[]", b"1", b'"text"', b"null,"):
        response = post_raw(client, project, "/v1/validations", raw)
        rejected(response, project)
    response = client.post("/v1/customers", content=b"a=1", headers={**project.headers, "content-type": "text/plain"})
    rejected(response, project, 415, "unsupported_media_type")


# ----------------------------------------------------------------------------------------------- string lengths

LONG = "x" * (MAX_ID_LENGTH + 1)
TOO_LONG_STRINGS = [
    ("/v1/customers", {"source_id": LONG}),
    ("/v1/customers", {"source_id": "ok", "name": LONG}),
    ("/v1/products", {"source_id": LONG, "name": "p"}),
    ("/v1/products", {"name": LONG}),
    ("/v1/orders", {"source_id": LONG, "amount": 1}),
    ("/v1/orders", {"amount": 1, "customer": {"source_id": LONG}}),
    ("/v1/orders", {"items": [{"product_id": LONG, "quantity": 1, "price": 1}]}),
    ("/v1/categories", {"name": LONG, "hierarchy": 1}),
    ("/v1/segments", {"name": LONG, "type": "static", "customers": []}),
    ("/v1/validation-rules", {"name": LONG}),
    ("/v1/campaigns", {"name": LONG, "voucher": {"type": "DISCOUNT_VOUCHER", "discount": DISCOUNT}}),
    ("/v1/vouchers", {"code": LONG, "discount": DISCOUNT}),
    ("/v1/events", {"event": LONG, "customer": {"source_id": "x"}}),
    ("/v1/events", {"event": "e", "customer": {"source_id": LONG}}),
    ("/v1/validations", {"redeemables": [{"object": "voucher", "id": LONG}]}),
    ("/v1/validations", {"redeemables": [{"object": "voucher", "id": "X"}], "customer": {"source_id": LONG}}),
    ("/v1/validations", {"redeemables": [{"object": "voucher", "id": "X"}], "tracking_id": LONG}),
    ("/v1/redemptions", {"redeemables": [{"object": "voucher", "id": "X"}], "order": {"source_id": LONG}}),
    ("/v1/qualifications", {"customer": {"source_id": LONG}}),
    ("/v1/publications", {"voucher": "X", "customer": {"source_id": LONG}}),
]


@pytest.mark.parametrize(
    ("path", "body"), TOO_LONG_STRINGS, ids=[f"{p}:{i}" for i, (p, _) in enumerate(TOO_LONG_STRINGS)]
)
def test_ids_codes_and_names_have_a_length_limit(
    client: TestClient, project: ProjectKeys, path: str, body: dict[str, Any]
) -> None:
    response = client.post(path, json=body, headers=project.headers)
    assert_clean(response, project)
    assert response.status_code == 400, response.text
    assert response.json()["key"] in ("invalid_payload", "invalid_voucher", "invalid_campaign_params")
    assert LONG not in response.text  # refused without echoing the whole string back


def test_long_text_in_metadata_is_not_an_identifier(client: TestClient, project: ProjectKeys) -> None:
    response = client.post(
        "/v1/customers", json={"source_id": "m", "metadata": {"name": LONG}}, headers=project.headers
    )
    assert response.status_code == 200, response.text


def test_long_ids_in_paths_are_404(client: TestClient, project: ProjectKeys) -> None:
    for path in ("/v1/vouchers/", "/v1/customers/", "/v1/campaigns/", "/v1/orders/", "/v1/products/"):
        response = client.get(path + "y" * 5_000, headers=project.headers)
        rejected(response, project, 404, "not_found")


# ------------------------------------------------------------------------------------- caps on items and redeemables


def test_redeemables_are_capped(client: TestClient, project: ProjectKeys) -> None:
    many = [{"object": "voucher", "id": f"C{i}"} for i in range(MAX_REDEEMABLES + 1)]
    for path in ("/v1/validations", "/v1/redemptions"):
        rejected(client.post(path, json={"redeemables": many}, headers=project.headers), project)
    within = {"redeemables": many[:MAX_REDEEMABLES]}
    assert client.post("/v1/validations", json=within, headers=project.headers).status_code == 200


def test_order_items_are_capped(client: TestClient, project: ProjectKeys) -> None:
    items = [{"product_id": f"p{i}", "quantity": 1, "price": 100} for i in range(MAX_ORDER_ITEMS + 1)]
    body = {"redeemables": [{"object": "voucher", "id": "X"}], "order": {"items": items}}
    for path in ("/v1/validations", "/v1/redemptions"):
        rejected(client.post(path, json=body, headers=project.headers), project)
    body["order"] = {"items": items[:MAX_ORDER_ITEMS]}
    assert client.post("/v1/validations", json=body, headers=project.headers).status_code == 200


# ---------------------------------------------------------------------------------------------------------- money


def _gift(client: TestClient, project: ProjectKeys) -> None:
    body = {"type": "GIFT_VOUCHER", "gift": {"amount": 10_000}}
    assert client.post("/v1/vouchers/GIFT", json=body, headers=project.headers).status_code == 200


def _discount_voucher(discount: dict[str, Any]) -> dict[str, Any]:
    return {"type": "DISCOUNT_VOUCHER", "discount": discount}


def _campaign(voucher: dict[str, Any]) -> dict[str, Any]:
    return {"name": "Money", "voucher": voucher}


def _tier(discount: dict[str, Any]) -> dict[str, Any]:
    tier = {"name": "t", "action": {"discount": discount}}
    return {"name": "Promo", "campaign_type": "PROMOTION", "promotion": {"tiers": [tier]}}


def _redeem(order: dict[str, Any], **redeemable: Any) -> dict[str, Any]:
    return {"redeemables": [{"object": "voucher", "id": "GIFT", **redeemable}], "order": order}


def bad_money(bad: Any) -> list[tuple[str, Any]]:
    """Every place money enters, with ``bad`` as the amount."""
    return [
        ("/v1/orders", {"amount": bad}),
        ("/v1/orders", {"items": [{"quantity": 1, "price": bad}]}),
        ("/v1/orders", {"items": [{"quantity": 1, "amount": bad}]}),
        ("/v1/products", {"name": "p", "price": bad}),
        ("/v1/vouchers/G", {"type": "GIFT_VOUCHER", "gift": {"amount": bad}}),
        ("/v1/vouchers/D", _discount_voucher({"type": "AMOUNT", "amount_off": bad})),
        ("/v1/vouchers/D", _discount_voucher({"type": "FIXED", "fixed_amount": bad})),
        ("/v1/vouchers/D", _discount_voucher({"type": "PERCENT", "percent_off": 10, "amount_limit": bad})),
        ("/v1/campaigns", _campaign(_discount_voucher({"type": "AMOUNT", "amount_off": bad}))),
        ("/v1/campaigns", _campaign({"type": "GIFT_VOUCHER", "gift": {"amount": bad}})),
        ("/v1/campaigns", _tier({"type": "AMOUNT", "amount_off": bad})),
        ("/v1/campaigns", _tier({"type": "PERCENT", "percent_off": 5, "amount_limit": bad})),
        ("/v1/validations", _redeem({"amount": bad})),
        ("/v1/validations", _redeem({"amount": 1000}, gift={"credits": bad})),
        ("/v1/redemptions", _redeem({"items": [{"quantity": 1, "price": bad}]})),
        ("/v1/vouchers/GIFT/validate", {"order": {"amount": bad}}),
        *([] if bad == -1 else [("/v1/vouchers/GIFT/balance", {"amount": bad})]),  # -1 takes credits away
    ]


# Lines whose price times quantity would overflow 64 bits.
OVERFLOWING_LINES: list[tuple[str, Any]] = [
    ("/v1/orders", {"items": [{"quantity": MAX_SAFE_INTEGER, "price": MAX_SAFE_INTEGER}]}),
    ("/v1/orders", {"items": [{"quantity": 1, "price": MAX_MONEY}, {"quantity": 1, "price": MAX_MONEY}]}),
    ("/v1/validations", _redeem({"items": [{"quantity": 1_000_000, "price": MAX_MONEY}] * 3})),
    ("/v1/redemptions", _redeem({"items": [{"quantity": 1_000_000, "price": MAX_MONEY}] * 3})),
    ("/v1/qualifications", {"order": {"items": [{"quantity": 1_000_000, "price": MAX_MONEY}] * 3}}),
    ("/v1/vouchers/GIFT/validate", {"order": {"items": [{"quantity": 1_000_000, "price": MAX_MONEY}]}}),
]


@pytest.mark.parametrize(
    "bad", [10.5, "1000", True, -1, [1], {"v": 1}, MAX_SAFE_INTEGER + 1, 2**63, 10**30, -(2**63) - 1, 1e300, None]
)
def test_non_integer_or_out_of_range_money_is_refused(client: TestClient, project: ProjectKeys, bad: Any) -> None:
    _gift(client, project)
    cases = OVERFLOWING_LINES if bad is None else bad_money(bad)
    for path, body in cases:
        response = client.post(path, json=body, headers=project.headers)
        assert_clean(response, project)
        assert response.status_code == 400, f"{path} {body}: {response.text}"
        assert response.json()["key"] in ("invalid_payload", "invalid_voucher", "invalid_add_balance_params")


def test_integer_money_at_the_limits_is_accepted(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    _gift(client, project)
    assert client.post("/v1/orders", json={"amount": MAX_MONEY}, headers=h).status_code == 200
    order = {"items": [{"quantity": 2, "price": MAX_MONEY // 2}]}
    assert client.post("/v1/validations", json=_redeem(order, gift={"credits": 100}), headers=h).status_code == 200
    voucher = _discount_voucher({"type": "AMOUNT", "amount_off": 1000})
    assert client.post("/v1/vouchers/INT", json=voucher, headers=h).status_code == 200


# ----------------------------------------------------------------------------------------------------- Unicode


UNICODE_CODES = ["ŻÓŁW-2024", "カード", "😀PROMO", "A?B#C%D&E+F=G", "x';DROP_TABLE_vouchers;--", "ñ" * 200]


@pytest.mark.parametrize("code", UNICODE_CODES)
def test_unicode_codes_round_trip(client: TestClient, project: ProjectKeys, code: str) -> None:
    h = project.headers
    created = client.post("/v1/vouchers", json={"code": code, **_discount_voucher(DISCOUNT)}, headers=h)
    assert created.status_code == 200, created.text
    assert created.json()["code"] == code
    path = f"/v1/vouchers/{quote(code, safe='')}"
    fetched = client.get(path, headers=h)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["code"] == code
    listed = client.get(f"/v1/vouchers?code={quote(code, safe='')}", headers=h)
    assert_clean(listed, project)
    body = {"redeemables": [{"object": "voucher", "id": code}], "order": {"amount": 1000}}
    validated = client.post("/v1/validations", json=body, headers=h).json()
    assert validated["valid"] is True and validated["redeemables"][0]["id"] == code
    legacy = client.post(f"{path}/validate", json={"order": {"amount": 1000}}, headers=h)
    assert legacy.status_code == 200 and legacy.json()["valid"] is True, legacy.text
    redeemed = client.post("/v1/redemptions", json=body, headers=h)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["redemptions"][0]["voucher"]["code"] == code
    again = client.get(path, headers=h).json()
    assert again["redemption"]["redeemed_quantity"] == 1


def test_unicode_forms_are_distinct_codes(client: TestClient, project: ProjectKeys) -> None:
    """Codes are compared as sent: the NFD spelling of a code is another code, never a silent match."""
    h = project.headers
    nfc = unicodedata.normalize("NFC", "CAFÉ")
    nfd = unicodedata.normalize("NFD", "CAFÉ")
    assert client.post(f"/v1/vouchers/{quote(nfc)}", json=_discount_voucher(DISCOUNT), headers=h).status_code == 200
    rejected(client.get(f"/v1/vouchers/{quote(nfd)}", headers=h), project, 404, "not_found")
    body = {"redeemables": [{"object": "voucher", "id": nfd}], "order": {"amount": 1000}}
    assert client.post("/v1/validations", json=body, headers=h).json()["valid"] is False


@pytest.mark.parametrize(
    "body",
    [
        {"code": "NUL\u0000CODE", **_discount_voucher(DISCOUNT)},
        {"source_id": "nul", "name": "a\u0000b"},
        {"source_id": "nul", "metadata": {"k\u0000": 1}},
        {"source_id": "nul", "metadata": {"k": ["a\u0000"]}},
    ],
)
def test_nul_characters_are_400(client: TestClient, project: ProjectKeys, body: dict[str, Any]) -> None:
    path = "/v1/vouchers" if "code" in body else "/v1/customers"
    rejected(client.post(path, json=body, headers=project.headers), project)


def test_nul_characters_in_paths_and_queries(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    rejected(client.get("/v1/customers/a%00b", headers=h), project, 404, "not_found")
    rejected(client.get("/v1/vouchers/a%00b", headers=h), project, 404, "not_found")
    rejected(client.get("/v1/vouchers?code=a%00b", headers=h), project, 400, "invalid_query_params")
    rejected(client.get("/v1/redemptions?filters[voucher_code][conditions][$is]=%00", headers=h), project, 400,
             "invalid_query_params")  # fmt: skip


def test_undecodable_bytes_in_paths_and_queries(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    rejected(client.get("/v1/vouchers/%FF%FE", headers=h), project, 404, "not_found")
    assert_clean(client.get("/v1/vouchers?code=%FF&campaign=%C0", headers=h), project)
    assert_clean(client.get("/v1/redemptions?filters[voucher_code][conditions][$is]=%FF", headers=h), project)


# --------------------------------------------------------------------------------------------------- query strings


def test_huge_query_strings_are_413(client: TestClient, project: ProjectKeys) -> None:
    query = "code=" + "x" * MAX_QUERY_BYTES
    for path in ("/v1/vouchers", "/v1/customers", "/v1/redemptions", "/v1/validations"):
        method = "POST" if path == "/v1/validations" else "GET"
        response = client.request(method, f"{path}?{query}", headers=project.headers)
        rejected(response, project, 413, "query_too_large")


PAGED = [
    "/v1/vouchers",
    "/v1/campaigns",
    "/v1/customers",
    "/v1/products",
    "/v1/orders",
    "/v1/redemptions",
    "/v1/publications",
    "/v1/validation-rules",
    "/v1/validation-rules-assignments",
    "/v1/promotions/tiers",
    "/v1/promotions/stacks",
    "/v1/product-collections",
]


@pytest.mark.parametrize(
    "query", ["limit=abc", "limit=0", "limit=101", "limit=-5", "limit=1.5", "page=-1", "page=abc", "limit=1e400"]
)
def test_malformed_paging_is_400(client: TestClient, project: ProjectKeys, query: str) -> None:
    for path in PAGED:
        rejected(client.get(f"{path}?{query}", headers=project.headers), project, 400, "invalid_query_params")


def test_limit_is_checked_where_there_is_no_page(client: TestClient, project: ProjectKeys) -> None:
    for query in ("limit=abc", "limit=0", "end_date=yesterday"):
        response = client.get(f"/v1/async-actions?{query}", headers=project.headers)
        rejected(response, project, 400, "invalid_query_params")


@pytest.mark.parametrize(
    "query",
    [
        "order=;DROP TABLE vouchers",
        "filters[code][conditions][$nope]=1",
        "filters[junction]=xor",
        "created_at[before]=not-a-date",
        "filters[created_at][conditions][$after]=99999-99-99",
        "filters[code][conditions][$in][99999999]=a",
        "filters=1&filters[x]=2",
        "ids=" + ",".join(str(i) for i in range(2_000)),
    ],
)
def test_hostile_filters_never_fail_the_server(client: TestClient, project: ProjectKeys, query: str) -> None:
    for path in ("/v1/vouchers", "/v1/redemptions", "/v1/customers", "/v1/orders", "/v1/publications"):
        response = client.get(f"{path}?{query}", headers=project.headers)
        assert_clean(response, project)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            assert response.json()["key"] in ("invalid_query_params", "invalid_payload")


def test_hostile_headers(client: TestClient, project: ProjectKeys) -> None:
    forged = {"X-App-Id": project.app_id, "X-App-Token": "' OR 1=1 --"}
    response = client.get("/v1/vouchers", headers=forged)
    rejected(response, project, 401, "unauthorized")
    long_key = {"X-App-Id": "k" * 10_000, "X-App-Token": "t" * 10_000}
    rejected(client.get("/v1/vouchers", headers=long_key), project, 401, "unauthorized")
    odd_type = {**project.headers, "content-type": "application/json; charset=latin-1"}
    assert_clean(client.post("/v1/customers", content='{"source_id":"é"}'.encode(), headers=odd_type), project)
