"""``/v1/segments`` over HTTP, and segment membership in PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error
from voucherd.catalog import segments
from voucherd.platform import db, keys
from voucherd.platform.redis_client import create_redis
from voucherd.platform.settings import Settings


@pytest.fixture
def cache(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    client.close()


def _post(client: TestClient, project: ProjectKeys, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers=project.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _cached(cache: redis.Redis, project: ProjectKeys, field: str) -> list[str] | None:
    raw = cache.hget(keys.customer_segments(project.project_id), field)
    return None if raw is None else list(orjson.loads(raw))


def _segment_names(client: TestClient, project: ProjectKeys, customer: str) -> list[str]:
    body = client.get(f"/v1/customers/{customer}/segments", headers=project.headers).json()
    assert body["object"] == "list" and body["total"] == len(body["data"])
    return [s["name"] for s in body["data"]]


def test_static_segment(client: TestClient, project: ProjectKeys, cache: redis.Redis) -> None:
    h = project.headers
    a = _post(client, project, "/v1/customers", {"source_id": "a"})
    _post(client, project, "/v1/customers", {"source_id": "b"})
    segment = _post(client, project, "/v1/segments", {"name": "Picked", "type": "static", "customers": [a["id"], "b"]})
    assert segment["id"].startswith("seg_") and segment["object"] == "segment" and segment["type"] == "static"
    assert segment["initial_sync_status"] == "DONE" and segment["filter"] is None
    assert client.get(f"/v1/segments/{segment['id']}", headers=h).json()["name"] == "Picked"
    assert _segment_names(client, project, "a") == ["Picked"]
    assert _cached(cache, project, f"id:{a['id']}") == [segment["id"]]
    assert _cached(cache, project, "src:b") == [segment["id"]]
    listed = client.get(f"/v1/customers?segment_id={segment['id']}", headers=h).json()
    assert listed["total"] == 2

    assert client.delete(f"/v1/segments/{segment['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/segments/{segment['id']}", headers=h), 404, "not_found")
    assert_error(client.delete(f"/v1/segments/{segment['id']}", headers=h), 404, "not_found")
    assert _segment_names(client, project, "a") == []
    assert _cached(cache, project, f"id:{a['id']}") is None and _cached(cache, project, "src:b") is None


def test_invalid_segments(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    assert_error(
        client.post("/v1/segments", json={"type": "static", "customers": []}, headers=h), 400, "invalid_payload"
    )
    assert_error(client.post("/v1/segments", json={"name": "x", "type": "weird"}, headers=h), 400, "invalid_payload")
    assert_error(
        client.post("/v1/segments", json={"name": "x", "type": "auto-update"}, headers=h), 400, "invalid_payload"
    )
    bad_op = {"name": "x", "type": "auto-update", "filter": {"name": {"conditions": {"$like": "a"}}}}
    assert_error(client.post("/v1/segments", json=bad_op, headers=h), 400, "invalid_payload")
    loyalty = {
        "name": "x",
        "type": "auto-update",
        "filter": {"loyalty_points.campaigns.L.points": {"conditions": {"$more_than": 1}}},
    }
    assert_error(client.post("/v1/segments", json=loyalty, headers=h), 400, "invalid_payload")
    missing = {"name": "x", "type": "static", "customers": ["cust_nobody"]}
    assert_error(client.post("/v1/segments", json=missing, headers=h), 404, "not_found")


def test_auto_update_segment_follows_customer_changes(
    client: TestClient, project: ProjectKeys, cache: redis.Redis
) -> None:
    h = project.headers
    before = _post(
        client,
        project,
        "/v1/customers",
        {"source_id": "early", "metadata": {"club": "Gold"}, "address": {"country": "Poland"}},
    )
    segment = _post(
        client,
        project,
        "/v1/segments",
        {
            "name": "Polish club",
            "type": "auto-update",
            "filter": {
                "junction": "and",
                "address.country": {"conditions": {"$is": "Poland"}},
                "metadata.club": {"conditions": {"$in": ["Gold", "Silver"]}},
            },
        },
    )
    assert segment["type"] == "auto-update" and segment["filter"]["junction"] == "and"
    # Initial sync picked up the existing customer.
    assert _segment_names(client, project, "early") == ["Polish club"]
    assert _cached(cache, project, f"id:{before['id']}") == [segment["id"]]

    _post(
        client,
        project,
        "/v1/customers",
        {"source_id": "late", "metadata": {"club": "Bronze"}, "address": {"country": "Poland"}},
    )
    assert _segment_names(client, project, "late") == [] and _cached(cache, project, "src:late") is None
    client.put("/v1/customers/late", json={"metadata": {"club": "Silver"}}, headers=h)
    assert _segment_names(client, project, "late") == ["Polish club"]
    assert _cached(cache, project, "src:late") == [segment["id"]]

    client.put("/v1/customers/late", json={"address": {"country": "Germany"}}, headers=h)
    assert _segment_names(client, project, "late") == [] and _cached(cache, project, "src:late") is None
    activity = client.get("/v1/customers/late/activity?order=created_at", headers=h).json()["data"]
    kinds = [a["type"] for a in activity]
    assert "customer.segment.entered" in kinds and "customer.segment.left" in kinds
    assert kinds.index("customer.segment.entered") < kinds.index("customer.segment.left")

    # Deleting the customer drops it from Redis as well.
    client.delete("/v1/customers/early", headers=h)
    assert _cached(cache, project, f"id:{before['id']}") is None and _cached(cache, project, "src:early") is None


def test_passive_or_filters_and_silence(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    _post(
        client,
        project,
        "/v1/segments",
        {
            "name": "Gmail or named Zed",
            "type": "passive",
            "filter": {
                "junction": "or",
                "email": {"conditions": {"$ends_with": "@gmail.com"}},
                "name": {"conditions": {"$starts_with": "Zed"}},
            },
        },
    )
    _post(client, project, "/v1/customers", {"source_id": "g", "email": "g@gmail.com"})
    _post(client, project, "/v1/customers", {"source_id": "z", "name": "Zed Z"})
    _post(client, project, "/v1/customers", {"source_id": "n", "name": "Ned", "email": "n@example.com"})
    assert _segment_names(client, project, "g") == ["Gmail or named Zed"]
    assert _segment_names(client, project, "z") == ["Gmail or named Zed"]
    assert _segment_names(client, project, "n") == []
    kinds = [a["type"] for a in client.get("/v1/customers/g/activity", headers=h).json()["data"]]
    assert "customer.segment.entered" not in kinds  # passive segments change silently


def test_hot_path_lookup_reads_redis_only(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    customer = _post(client, project, "/v1/customers", {"source_id": "vip", "metadata": {"vip": True}})
    s1 = _post(
        client,
        project,
        "/v1/segments",
        {"name": "VIP", "type": "auto-update", "filter": {"metadata.vip": {"conditions": {"$is": True}}}},
    )
    s2 = _post(client, project, "/v1/segments", {"name": "All", "type": "static", "customers": ["vip"]})
    expected = sorted([s1["id"], s2["id"]])

    async def lookups() -> tuple[list[str], list[str], list[str], int]:
        r = create_redis(settings.redis_url)
        try:
            by_id = await segments.segment_ids(r, project.project_id, customer["id"])
            by_source = await segments.segment_ids(r, project.project_id, "vip")
            unknown = await segments.segment_ids(r, project.project_id, "nobody")
            await r.delete(keys.customer_segments(project.project_id))
            conn = await db.connect(settings.database_url)
            try:
                rebuilt = await segments.rebuild_cache(conn, r, project.project_id)
            finally:
                await conn.close()
            assert await segments.segment_ids(r, project.project_id, "vip") == expected
            return by_id, by_source, unknown, rebuilt
        finally:
            await r.aclose()

    by_id, by_source, unknown, rebuilt = asyncio.run(lookups())
    assert by_id == expected and by_source == expected and unknown == [] and rebuilt == 1


@pytest.mark.parametrize(
    ("conditions", "facts", "expected"),
    [
        (
            {"created_at": {"conditions": {"$after": ["2021-12-01T00:00:00.000Z"]}}},
            {"created_at": "2022-01-01T00:00:00.000Z"},
            True,
        ),
        (
            {"created_at": {"conditions": {"$before": ["2021-12-01T00:00:00.000Z"]}}},
            {"created_at": "2022-01-01T00:00:00.000Z"},
            False,
        ),
        ({"metadata.age": {"conditions": {"$more_than": [18]}}}, {"metadata": {"age": 30}}, True),
        ({"metadata.age": {"conditions": {"$less_than_equal": 18}}}, {"metadata": {"age": 30}}, False),
        ({"metadata.tags": {"conditions": {"$in": ["a"]}}}, {"metadata": {"tags": ["b", "a"]}}, True),
        ({"metadata.tags": {"conditions": {"$not_in": ["a"]}}}, {"metadata": {"tags": ["b", "a"]}}, False),
        ({"phone": {"conditions": {"$is_unknown": ""}}}, {"phone": None}, True),
        ({"phone": {"conditions": {"$has_value": ""}}}, {"phone": None}, False),
        ({"name": {"conditions": {"$contains": "nn"}}}, {"name": "Anna"}, True),
        ({"name": {"conditions": {"$not_contain": "nn"}}}, {"name": "Anna"}, False),
        ({"name": {"conditions": {"$is_not": "Bob"}}}, {"name": None}, True),
        ({"birthdate": {"conditions": {"$next_month": [True]}}}, {"birthdate": "1990-02-10"}, True),
        ({"birthdate": {"conditions": {"$next_month": [True]}}}, {"birthdate": "1990-01-10"}, False),
        ({"events.signup.count": {"conditions": {"$more_than_equal": [2]}}}, {"_events": {"signup": 2}}, True),
        ({"summary.orders.total_count": {"conditions": {"$is": 0}}}, {"summary": {"orders": {"total_count": 0}}}, True),
        # Text against $is / $is_not compares as text; a number against a number-like value as numbers.
        ({"metadata.tier": {"conditions": {"$is": ["gold"]}}}, {"metadata": {"tier": "gold"}}, True),
        ({"metadata.tier": {"conditions": {"$is": ["gold"]}}}, {"metadata": {"tier": "silver"}}, False),
        ({"metadata.tier": {"conditions": {"$is_not": ["gold"]}}}, {"metadata": {"tier": "silver"}}, True),
        ({"metadata.tier": {"conditions": {"$is": ["gold"]}}}, {"metadata": {}}, False),
        ({"metadata.n": {"conditions": {"$is": ["5"]}}}, {"metadata": {"n": 5}}, True),
        ({"metadata.n": {"conditions": {"$is": [5]}}}, {"metadata": {"n": "5.0"}}, False),
        ({"metadata.ok": {"conditions": {"$is": ["true"]}}}, {"metadata": {"ok": True}}, True),
        ({"metadata.tags": {"conditions": {"$is": ["a"]}}}, {"metadata": {"tags": ["b", "a"]}}, True),
        ({"metadata.tags": {"conditions": {"$is_not": ["a"]}}}, {"metadata": {"tags": ["b", "a"]}}, False),
        (
            {"metadata": {"conditions": {"$is": ["x"]}}, "metadata.x": {"conditions": {"$is": ["y"]}}},
            {"metadata": "x"},
            False,
        ),
        (
            {"junction": "or", "name": {"conditions": {"$is": "Ann"}}, "email": {"conditions": {"$contains": "@"}}},
            {"name": "Bob", "email": "b@example.com"},
            True,
        ),
        (
            {"junction": "and", "name": {"conditions": {"$is": "Ann"}}, "email": {"conditions": {"$contains": "@"}}},
            {"name": "Bob", "email": "b@example.com"},
            False,
        ),
        ({"name": {"conditions": {"$starts_with": "A", "$ends_with": "a"}}}, {"name": "Anna"}, True),
        ({"name": {"conditions": {"$starts_with": "A", "$ends_with": "x"}}}, {"name": "Anna"}, False),
    ],
)
def test_filter_operators(conditions: dict[str, Any], facts: dict[str, Any], expected: bool) -> None:
    from datetime import UTC, datetime

    segments.check_filter(conditions)
    assert segments.matches(conditions, facts, datetime(2024, 1, 15, tzinfo=UTC)) is expected


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, "", "a", "b", "ab", "1", "2.0", "-3", "true", "2024-01-10", "2023-12-01T00:00:00Z"]),
)


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    op=st.sampled_from(sorted(segments.OPERATORS)),
    expected=st.one_of(_VALUES, st.lists(_VALUES, min_size=1, max_size=2)),
    actual=st.one_of(_VALUES, st.lists(_VALUES, max_size=3)),
    field=st.sampled_from(["metadata.x", "name", "created_at"]),
)
def test_compiled_filter_answers_as_each_condition_does(op: str, expected: Any, actual: Any, field: str) -> None:
    """The compiled filter's shortcuts (missing values, text against $is) agree with the operator's own test."""
    from datetime import UTC, datetime

    now = datetime(2024, 1, 15, tzinfo=UTC)
    facts: dict[str, Any] = {"metadata": {"x": actual}} if field == "metadata.x" else {field: actual}
    wanted = segments._test(field, actual, op, expected, now)
    assert segments.compile_filter({field: {"conditions": {op: expected}}})(facts, now) is wanted
