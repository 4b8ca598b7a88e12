"""Locations (issue 17): read only; the operator writes them, as Voucherify's are drawn in its dashboard."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error
from voucherd.platform import db
from voucherd.platform.settings import Settings

CIRCLE = {"type": "circle", "format": "distance", "distance": {"center": "geo:40.79,-74.15", "radius": "1.54 km"}}
POLYGON = {"type": "polygon", "format": "geojson", "geojson": {"type": "Polygon", "coordinates": [[[18.5, 50.5]]]}}


def insert(settings: Settings, project_id: str, rows: list[tuple[str, str, dict[str, Any], datetime]]) -> None:
    async def go() -> None:
        conn = await db.connect(settings.database_url)
        try:
            await conn.executemany(
                "INSERT INTO locations (id, project_id, name, shape, created_at) VALUES ($1, $2, $3, $4, $5)",
                [(i, project_id, n, s, c) for i, n, s, c in rows],
            )
        finally:
            await conn.close()

    asyncio.run(go())


def test_locations_are_listed_filtered_and_read(
    client: TestClient, project: ProjectKeys, settings: Settings, make_project: Any
) -> None:
    h = project.headers
    insert(
        settings,
        project.project_id,
        [
            ("loc_a", "Belleville", CIRCLE, datetime(2022, 7, 15, tzinfo=UTC)),
            ("loc_b", "Poland", POLYGON, datetime(2023, 1, 1, tzinfo=UTC)),
            ("loc_c", "Paris", CIRCLE, datetime(2024, 1, 1, tzinfo=UTC)),
        ],
    )
    listed = client.get("/v1/locations", headers=h).json()
    assert listed["object"] == "list" and listed["data_ref"] == "data" and listed["has_more"] is False
    assert [loc["id"] for loc in listed["data"]] == ["loc_a", "loc_b", "loc_c"]
    assert listed["data"][0] == {
        "id": "loc_a",
        "object": "location",
        "name": "Belleville",
        "shape": CIRCLE,
        "created_at": "2022-07-15T00:00:00.000Z",
        "updated_at": None,
    }
    newest = client.get("/v1/locations?order=-created_at&limit=1", headers=h).json()
    assert [loc["id"] for loc in newest["data"]] == ["loc_c"] and newest["has_more"] is True
    named = client.get("/v1/locations?filters[name][conditions][$starts_with]=P", headers=h).json()
    assert [loc["name"] for loc in named["data"]] == ["Poland", "Paris"]
    recent = client.get("/v1/locations?filters[created_at][conditions][$after]=2023-06-01T00:00:00Z", headers=h).json()
    assert [loc["name"] for loc in recent["data"]] == ["Paris"]
    assert client.get("/v1/locations/loc_b", headers=h).json()["shape"] == POLYGON

    assert_error(client.get("/v1/locations/loc_b", headers=make_project("Other").headers), 404, "not_found")
    assert_error(client.get("/v1/locations/loc_nope", headers=h), 404, "not_found")
    assert_error(client.get("/v1/locations?order=name", headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/locations?limit=101", headers=h), 400, "invalid_query_params")
    bad_date = "/v1/locations?filters[created_at][conditions][$after]=soon"
    assert_error(client.get(bad_date, headers=h), 400, "invalid_query_params")
    assert_error(client.get("/v1/locations"), 401, "unauthorized")
