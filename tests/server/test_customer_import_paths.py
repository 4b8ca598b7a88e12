"""The first customer import into a project takes plain inserts; what it must still get right."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, drain_worker
from voucherd.jobs import csv_imports
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
