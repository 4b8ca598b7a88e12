"""Explicit nulls in request bodies: dropped where the contract marks the field nullable, refused where it
declares the field and does not, kept where an update clears the field with them (server/nulls.py)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from server import nulls
from tests.conftest import ProjectKeys, assert_error
from voucherd.platform.errors import InvalidPayload

# A made-up contract with what the compiler must handle: $ref, allOf, oneOf, arrays, recursion, Any.
DOCUMENT: dict[str, Any] = {
    "paths": {
        "/v1/things/{thingId}": {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}
            },
            "get": {},
        },
        "/v1/lists": {
            "post": {
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
                        }
                    }
                }
            }
        },
    },
    "components": {
        "schemas": {
            "Any": {"type": "array", "items": {"type": "string"}},
            "Thing": {
                "allOf": [
                    {"properties": {"name": {"type": "string", "nullable": True}, "size": {"type": "integer"}}},
                    {"$ref": "#/components/schemas/Extra"},
                ]
            },
            "Extra": {
                "properties": {
                    "metadata": {"type": "object", "nullable": True},
                    "choice": {
                        "oneOf": [
                            {"properties": {"a": {"type": "string", "nullable": True}, "b": {"type": "string"}}},
                            {"properties": {"b": {"type": "string", "nullable": True}, "c": {"type": "string"}}},
                        ]
                    },
                    "wildcard": {"$ref": "#/components/schemas/Any"},
                    "tags": {"type": "array", "items": {"properties": {"label": {"type": "string", "nullable": True}}}},
                }
            },
            "Node": {
                "properties": {
                    "value": {"type": "string", "nullable": True},
                    "count": {"type": "integer"},
                    "child": {"$ref": "#/components/schemas/Node"},
                }
            },
        }
    },
}


@pytest.fixture(scope="module")
def shapes() -> dict[tuple[str, str], nulls.Shape]:
    return nulls.compile_contract(DOCUMENT)


def test_nullable_nulls_go_and_the_rest_stays(shapes: dict[tuple[str, str], nulls.Shape]) -> None:
    body = {
        "name": None,
        "size": 3,
        "metadata": {"kept": None},  # metadata keys are the merchant's, not the contract's
        "choice": {"a": None, "b": None},  # b is nullable in one branch: null there is fine
        "wildcard": None,
        "tags": [{"label": None, "other": None}],
        "unknown": None,  # undeclared fields pass as they came
    }
    nulls.settle(body, shapes[("POST", "/v1/things/{}")])
    assert body == {"size": 3, "metadata": {"kept": None}, "choice": {}, "tags": [{"other": None}], "unknown": None}
    assert ("GET", "/v1/things/{}") not in shapes


def test_a_null_the_contract_does_not_allow_is_refused_with_its_path(
    shapes: dict[tuple[str, str], nulls.Shape],
) -> None:
    with pytest.raises(InvalidPayload, match=r"Property \.size should not be null"):
        nulls.settle({"size": None}, shapes[("POST", "/v1/things/{}")])
    with pytest.raises(InvalidPayload, match=r"Property \.choice\.c should not be null"):
        nulls.settle({"choice": {"c": None}}, shapes[("POST", "/v1/things/{}")])


def test_recursive_schemas_and_array_bodies(shapes: dict[tuple[str, str], nulls.Shape]) -> None:
    body = [{"value": None, "child": {"value": None, "child": {"value": "x", "child": {"value": None, "child": None}}}}]
    nulls.settle(body, shapes[("POST", "/v1/lists")])
    assert body == [{"child": {"child": {"value": "x", "child": {}}}}]
    with pytest.raises(InvalidPayload, match=r"Property \[1\]\.child\.child\.count should not be null"):
        nulls.settle([{}, {"child": {"child": {"count": None}}}], shapes[("POST", "/v1/lists")])


def test_a_property_that_only_names_a_schema_may_be_null(shapes: dict[tuple[str, str], nulls.Shape]) -> None:
    """OpenAPI 3.0 cannot mark a bare $ref nullable, so the contract leaves it unsaid; the SDKs send null."""
    body = {"choice": None, "wildcard": None, "size": 1}
    nulls.settle(body, shapes[("POST", "/v1/things/{}")])
    assert body == {"size": 1}


def test_an_update_keeps_the_top_level_nulls_it_clears_with(shapes: dict[tuple[str, str], nulls.Shape]) -> None:
    body = {"name": None, "size": None, "tags": [{"label": None}]}
    nulls.settle(body, shapes[("POST", "/v1/things/{}")], clears=frozenset(("name", "size")))
    assert body == {"name": None, "size": None, "tags": [{}]}


def test_every_served_operation_with_a_body_has_a_shape() -> None:
    served = nulls.contract_shapes()
    assert len(served) >= 70
    assert nulls.shape_for("POST", "/v1/qualifications") is served[("POST", "/v1/qualifications")]
    assert nulls.shape_for("POST", "/v1/campaigns/{campaignId}/vouchers/{code}") is not None
    assert nulls.shape_for("GET", "/v1/campaigns") is None


ISSUE_BODY = {  # QualificationsCheckEligibilityRequestBody.from_dict({...}) as the SDK sends it (issue 17)
    "scenario": "ALL",
    "order": {"amount": 20000},
    "options": {
        "limit": 50,
        "filters": {
            "resource_type": {"conditions": {"$in": ["promotion_tier"], "$is": None}},
            "campaign_type": None,
            "holder_role": None,
        },
        "expand": None,
        "sorting_rule": None,
    },
    "customer": {"source_id": "c1", "name": None, "metadata": None, "address": None},
    "tracking_id": None,
    "session": None,
    "metadata": None,
}


def test_the_sdks_qualification_body_is_answered(client: TestClient, project: ProjectKeys) -> None:
    response = client.post("/v1/qualifications", json=ISSUE_BODY, headers=project.headers)
    assert response.status_code == 200, response.text
    assert response.json()["redeemables"]["object"] == "list"


def test_a_null_the_contract_refuses_gets_a_voucherify_error(client: TestClient, project: ProjectKeys) -> None:
    hours = {"daily": [{"start_time": "10:00", "expiration_time": None, "days_of_week": [1]}]}
    body = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}, "validity_hours": hours}
    error = assert_error(client.post("/v1/vouchers", json=body, headers=project.headers), 400, "invalid_payload")
    assert error["details"] == "Property .validity_hours.daily[0].expiration_time should not be null"
    assert client.get("/v1/vouchers", headers=project.headers).json()["total"] == 0


def test_a_campaign_update_clears_with_null_and_ignores_the_rest(client: TestClient, project: ProjectKeys) -> None:
    headers = project.headers
    created = client.post(
        "/v1/campaigns",
        json={
            "name": "Clearing",
            "description": "first",
            "expiration_date": "2090-10-08T12:57:09.386Z",
            "voucher": {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100, "effect": None}},
        },
        headers=headers,
    )
    assert created.status_code == 200, created.text
    campaign_id = created.json()["id"]
    # CampaignsUpdateRequestBody.from_dict({"description": "second"}) sends every other field as null.
    update = {"description": "second", "expiration_date": None, "join_once": None, "auto_join": None, "type": None}
    updated = client.put(f"/v1/campaigns/{campaign_id}", json=update, headers=headers)
    assert updated.status_code == 200, updated.text
    assert updated.json()["description"] == "second"
    assert updated.json()["expiration_date"] is None
    assert updated.json()["name"] == "Clearing" and updated.json()["type"] == created.json()["type"]


def test_a_category_update_reads_null_as_not_given(client: TestClient, project: ProjectKeys) -> None:
    created = client.post("/v1/categories", json={"name": "Sale", "hierarchy": 1}, headers=project.headers)
    assert created.status_code == 200, created.text
    updated = client.put(
        f"/v1/categories/{created.json()['id']}", json={"name": None, "hierarchy": 3}, headers=project.headers
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Sale" and updated.json()["hierarchy"] == 3
