"""Asynchronous actions: enqueued by the API, run by the worker, reported by ``/v1/async-actions``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.platform import async_actions, db
from voucherd.platform.redis_client import create_redis
from voucherd.platform.settings import Settings
from worker.operations import OPERATIONS, OperationContext, OperationFailed, operation

if "TEST.ECHO" not in OPERATIONS:

    @operation("TEST.ECHO")
    async def echo(op: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
        await op.progress(50)
        if params.get("fail"):
            raise OperationFailed({"message": "asked to fail", "failed_count": 1})
        if params.get("crash"):
            raise ZeroDivisionError("bug")
        return {"echo": params["value"], "project": op.project_id}


def enqueue(settings: Settings, project_id: str, type: str, params: dict[str, Any]) -> str:
    async def go() -> str:
        conn = await db.connect(settings.database_url)
        client = create_redis(settings.redis_url)
        try:
            result = await async_actions.enqueue(conn, client, project_id, type, params, request_id="v-test")
            return result["async_action_id"]
        finally:
            await client.aclose()
            await conn.close()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("params", "status", "operation_status", "result"),
    [
        ({"value": 7}, "DONE", "SUCCESS", {"echo": 7, "project": None}),
        ({"value": 1, "fail": True}, "FAILED", "FAILED", {"message": "asked to fail", "failed_count": 1}),
        ({"value": 1, "crash": True}, "FAILED", "FAILED", {"message": "ZeroDivisionError: bug"}),
    ],
)
def test_an_action_runs_to_its_end(
    client: TestClient,
    project: ProjectKeys,
    settings: Settings,
    params: dict[str, Any],
    status: str,
    operation_status: str,
    result: dict[str, Any],
) -> None:
    action_id = enqueue(settings, project.project_id, "TEST.ECHO", params)
    before = client.get(f"/v1/async-actions/{action_id}", headers=project.headers).json()
    assert before["status"] == "ENQUEUED" and before["progress"] == 0 and before["processing_time"] is None

    drain_worker(settings)

    after = client.get(f"/v1/async-actions/{action_id}", headers=project.headers).json()
    if "project" in result:
        result = {**result, "project": project.project_id}
    assert after["status"] == status and after["operation_status"] == operation_status
    assert after["result"] == result
    assert after["object"] == "async_action" and after["request_id"] == "v-test"
    assert isinstance(after["processing_time"], int) and after["processing_time"] >= 0
    assert after["progress"] == (100 if status == "DONE" else 50)


def test_unknown_type_fails_with_a_reason(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    action_id = enqueue(settings, project.project_id, "NOBODY.KNOWS", {})
    drain_worker(settings)
    action = client.get(f"/v1/async-actions/{action_id}", headers=project.headers).json()
    assert action["status"] == "FAILED" and "NOBODY.KNOWS" in action["result"]["message"]


def test_list_is_newest_first_with_paging(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    ids = [enqueue(settings, project.project_id, "TEST.ECHO", {"value": n}) for n in range(3)]
    page = client.get("/v1/async-actions?limit=2", headers=project.headers).json()
    assert page["object"] == "list" and page["data_ref"] == "async_actions" and page["has_more"] is True
    assert [a["id"] for a in page["async_actions"]] == ids[::-1][:2]
    assert "result" not in page["async_actions"][0]
    everything = client.get("/v1/async-actions?limit=10", headers=project.headers).json()
    assert everything["has_more"] is False and len(everything["async_actions"]) == 3


def test_actions_are_private_to_their_project(client: TestClient, make_project: Any, settings: Settings) -> None:
    a, b = make_project("A"), make_project("B")
    action_id = enqueue(settings, a.project_id, "TEST.ECHO", {"value": 1})
    body = assert_error(client.get(f"/v1/async-actions/{action_id}", headers=b.headers), 404, "not_found")
    assert body["resource_type"] == "async_action"
    assert client.get("/v1/async-actions", headers=b.headers).json()["async_actions"] == []


def test_bad_query_params_are_400(client: TestClient, project: ProjectKeys) -> None:
    assert_error(client.get("/v1/async-actions?limit=0", headers=project.headers), 400, "invalid_query_params")
    assert_error(client.get("/v1/async-actions?limit=x", headers=project.headers), 400, "invalid_query_params")
    assert_error(client.get("/v1/async-actions?end_date=nope", headers=project.headers), 400, "invalid_query_params")
