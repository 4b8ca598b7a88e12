"""The first customer import into a project takes plain inserts; what it must still get right."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson
import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, drain_worker
from tests.server.test_loyalty import join, make_program, member, ok
from voucherd.jobs import csv_imports
from voucherd.platform import db, keys
from voucherd.platform.settings import Settings

ROWS = "".join(f"Customer {i},src-{i},c{i}@example.com\n" for i in range(60))
CSV = "Name,Source_id,Email\n" + ROWS


def import_csv(client: TestClient, project: ProjectKeys, settings: Settings, text: str) -> dict[str, Any]:
    response = client.post(
        "/v1/customers/importCSV", headers=project.headers, files={"file": ("c.csv", text.encode(), "text/csv")}
    )
    assert response.status_code == 202, response.text
    drain_worker(settings)
    action: dict[str, Any] = client.get(
        f"/v1/async-actions/{response.json()['async_action_id']}", headers=project.headers
    ).json()
    assert action["status"] == "DONE" and action["operation_status"] == "SUCCESS", action
    return action


def test_a_customer_written_meanwhile_sends_its_chunk_to_the_upsert(
    client: TestClient, project: ProjectKeys, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No customer had any of the file's source_ids when the import began; one appears before the inserts run
    (as the write-behind of a redemption would make it): its chunk upserts instead, nothing is lost."""
    monkeypatch.setattr(csv_imports, "CHUNK", 20)
    original = csv_imports._in_chunks

    async def meanwhile(pool: asyncpg.Pool, *args: Any) -> None:
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO customers (project_id, id, source_id, name, metadata) "
                "VALUES ($1, 'cust_meanwhile', 'src-30', 'Early', '{\"tier\": \"gold\"}')",
                project.project_id,
            )
        await original(pool, *args)

    monkeypatch.setattr(csv_imports, "_in_chunks", meanwhile)
    action = import_csv(client, project, settings, CSV)
    assert action["result"]["done_count"] == 60 and action["result"]["failed_count"] == 0
    listed = client.get("/v1/customers?limit=100", headers=project.headers).json()
    assert listed["total"] == 60 and len({c["id"] for c in listed["customers"]}) == 60
    early = client.get("/v1/customers/src-30", headers=project.headers).json()
    assert early["id"] == "cust_meanwhile" and early["name"] == "Customer 30"
    assert early["metadata"] == {"tier": "gold"} and early["email"] == "c30@example.com"
    later = client.get("/v1/customers/src-59", headers=project.headers).json()
    assert later["name"] == "Customer 59" and later["id"].startswith("cust_") and len(later["id"]) == 25


def test_a_deleted_projects_customers_and_activity_go_with_it(settings: Settings) -> None:
    async def body() -> tuple[int, int]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute("INSERT INTO projects (id, name) VALUES ('proj_gone', 'gone')")
            await conn.execute("INSERT INTO customers (project_id, id, source_id) VALUES ('proj_gone', 'cust_1', 's')")
            await conn.execute(
                "INSERT INTO customer_activity (project_id, id, customer_id, type) "
                "VALUES ('proj_gone', 'evcus_1', 'cust_1', 'customer.created')"
            )
            await conn.execute("DELETE FROM projects WHERE id = 'proj_gone'")
            customers = await conn.fetchval("SELECT count(*) FROM customers WHERE project_id = 'proj_gone'")
            activity = await conn.fetchval("SELECT count(*) FROM customer_activity WHERE project_id = 'proj_gone'")
            return int(customers), int(activity)
        finally:
            await conn.close()

    assert asyncio.run(body()) == (0, 0)


def test_an_import_places_its_customers_in_segments_in_batches(
    client: TestClient, project: ProjectKeys, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segment membership is evaluated chunk by chunk from the rows each wrote: entries, exits, their activity,
    the Redis hash and the loyalty trigger of a rewarded entry are those a customer write would make."""
    h = project.headers
    monkeypatch.setattr(csv_imports, "CHUNK", 7)
    gold = {"metadata.tier": {"conditions": {"$is": "gold"}}}
    vip = ok(client.post("/v1/segments", json={"name": "Gold", "type": "auto-update", "filter": gold}, headers=h))
    quiet = ok(client.post("/v1/segments", json={"name": "Quiet", "type": "passive", "filter": gold}, headers=h))
    program = make_program(client, h)
    card = join(client, h, program["id"], "src-3")
    ok(
        client.post(
            f"/v1/loyalties/{program['id']}/earning-rules",
            json=[
                {
                    "event": "customer.segment.entered",
                    "segment": {"id": vip["id"]},
                    "loyalty": {"type": "FIXED", "points": 40},
                }
            ],
            headers=h,
        )
    )
    ok(client.post("/v1/customers", json={"source_id": "src-1", "metadata": {"tier": "gold"}}, headers=h))
    assert [s["name"] for s in client.get("/v1/customers/src-1/segments", headers=h).json()["data"]] == [
        "Gold",
        "Quiet",
    ]
    # Every third row is gold; src-1 was gold and the file makes it silver.
    rows = "".join(f"Customer {i},src-{i},{'gold' if i % 3 == 0 else 'silver'}\n" for i in range(30))
    action = import_csv(client, project, settings, "Name,Source_id,tier\n" + rows)
    assert action["result"]["done_count"] == 30
    members = {vip["id"]: set(), quiet["id"]: set()}
    for segment_id in members:
        listed = client.get(f"/v1/customers?segment_id={segment_id}&limit=100", headers=h).json()
        members[segment_id] = {c["source_id"] for c in listed["customers"]}
    expected = {f"src-{i}" for i in range(0, 30, 3)}
    assert members == {vip["id"]: expected, quiet["id"]: expected}
    cache = redis.Redis.from_url(settings.redis_url)
    try:
        cached = cache.hget(keys.customer_segments(project.project_id), "src:src-9")
        assert cached is not None and sorted(orjson.loads(cached)) == sorted([vip["id"], quiet["id"]])
        assert cache.hget(keys.customer_segments(project.project_id), "src:src-1") is None
    finally:
        cache.close()

    def kinds(source_id: str) -> list[str]:
        activity = client.get(f"/v1/customers/{source_id}/activity?order=created_at", headers=h).json()["data"]
        return [a["type"] for a in activity if a["type"].startswith("customer.segment.")]

    assert kinds("src-1") == ["customer.segment.entered", "customer.segment.left"]  # auto-update only
    assert kinds("src-9") == ["customer.segment.entered"] and kinds("src-10") == []
    drain_worker(settings)
    assert member(client, h, card["code"])["balance"] == 40  # src-3 entered the rewarded segment


def test_a_large_import_leaves_fresh_statistics(
    client: TestClient, project: ProjectKeys, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plans made before autovacuum's next visit must see the imported rows (see db.analyse_after_bulk)."""

    async def analyses() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(await conn.fetchval("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'customers'"))
        finally:
            await conn.close()

    before = asyncio.run(analyses())
    monkeypatch.setattr(db, "BULK_ANALYSE_ROWS", 100)
    import_csv(client, project, settings, CSV)  # 60 rows: under the threshold
    assert asyncio.run(analyses()) == before
    monkeypatch.setattr(db, "BULK_ANALYSE_ROWS", 60)
    import_csv(client, project, settings, "Name,Source_id,Email\n" + ROWS.replace("src-", "new-"))
    assert asyncio.run(analyses()) == before + 1
