"""Asynchronous actions: recorded in PostgreSQL, announced on the ``async_actions`` stream.

The API answers at once with ``{"async_action_id": …}``; a worker runs the
operation registered for the action's type and records status, progress,
result and processing time, which ``GET /v1/async-actions/{id}`` reports.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.platform.errors import InvalidQueryParams, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.messages import publish
from voucherd.platform.timeutil import iso

STREAM = "async_actions"


class Status(enum.StrEnum):
    ENQUEUED = "ENQUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    FAILED = "FAILED"


# What the API shows of an action: never ``upload`` (a CSV file of megabytes while the action runs;
# a client polling an import's progress had PostgreSQL decompress and send it on every poll).
VIEW_COLUMNS = (
    "id, type, status, operation_status, result, progress, request_id, created_at, updated_at, started_at, finished_at"
)


def view(row: asyncpg.Record, *, with_result: bool = True) -> dict[str, Any]:
    processing_time = None
    if row["started_at"] is not None and row["finished_at"] is not None:
        processing_time = int((row["finished_at"] - row["started_at"]).total_seconds() * 1000)
    body: dict[str, Any] = {
        "id": row["id"],
        "type": row["type"],
        "status": row["status"],
        "operation_status": row["operation_status"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "request_id": row["request_id"],
        "processing_time": processing_time,
        "progress": row["progress"],
        "object": "async_action",
    }
    if with_result:
        body["result"] = row["result"]
    return body


async def enqueue(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    type: str,
    params: dict[str, Any],
    *,
    upload: bytes | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    """Record the action, then announce it; if the announcement fails, the record goes too."""
    action_id = new_id("aa")
    await conn.execute(
        """INSERT INTO async_actions (id, project_id, type, params, upload, request_id)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        action_id,
        project_id,
        type,
        params,
        upload,
        request_id,
    )
    try:
        await publish(redis, STREAM, {"project_id": project_id, "action_id": action_id})
    except Exception:
        await conn.execute("DELETE FROM async_actions WHERE id = $1", action_id)
        raise
    return {"async_action_id": action_id}


async def get(conn: asyncpg.Connection, project_id: str, action_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"SELECT {VIEW_COLUMNS} FROM async_actions WHERE project_id = $1 AND id = $2", project_id, action_id
    )
    if row is None:
        raise NotFound.of("async_action", action_id)
    return view(row)


# The list's result, without an import's failed rows (up to a thousand per action; its own page shows them).
_RESULT_SUMMARY = "CASE WHEN jsonb_typeof(result) = 'object' THEN result - 'failed' ELSE result END AS result"


async def recent_summaries(conn: asyncpg.Connection, project_id: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` actions with their results but not the rows that failed (the console's monitor)."""
    columns = VIEW_COLUMNS.replace("result", _RESULT_SUMMARY, 1)
    rows = await conn.fetch(
        f"SELECT {columns} FROM async_actions WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        project_id,
        limit,
    )
    return [view(r) for r in rows]


async def list_recent(
    conn: asyncpg.Connection, project_id: str, limit: int, end_date: datetime | None
) -> tuple[list[dict[str, Any]], bool]:
    if not 1 <= limit <= 100:
        raise InvalidQueryParams("limit must be between 1 and 100")
    rows = await conn.fetch(
        f"""SELECT {VIEW_COLUMNS} FROM async_actions
           WHERE project_id = $1 AND ($2::timestamptz IS NULL OR created_at < $2)
           ORDER BY created_at DESC, id DESC LIMIT $3""",
        project_id,
        end_date,
        limit + 1,
    )
    return [view(r, with_result=False) for r in rows[:limit]], len(rows) > limit


async def latest_for(
    conn: asyncpg.Connection, project_id: str, type: str, param: str, value: str
) -> dict[str, Any] | None:
    """The newest action of ``type`` whose params have ``param = value`` (a campaign's code generation,
    say), without its result; None when there is none."""
    row = await conn.fetchrow(
        f"""SELECT {VIEW_COLUMNS} FROM async_actions
           WHERE project_id = $1 AND type = $2 AND params ->> $3 = $4
           ORDER BY created_at DESC, id DESC LIMIT 1""",
        project_id,
        type,
        param,
        value,
    )
    return view(row, with_result=False) if row is not None else None


# --- worker side -------------------------------------------------------------------------------


async def claim(conn: asyncpg.Connection, action_id: str) -> asyncpg.Record | None:
    """Mark the action in progress and return it, or None when it already finished (a redelivery)."""
    return await conn.fetchrow(
        """UPDATE async_actions
           SET status = 'IN_PROGRESS', started_at = COALESCE(started_at, now()), updated_at = now(),
               attempts = attempts + 1
           WHERE id = $1 AND status IN ('ENQUEUED', 'IN_PROGRESS')
           RETURNING *""",
        action_id,
    )


async def exists(conn: asyncpg.Connection, action_id: str) -> bool:
    """Whether the action's row is visible: committed, whatever its status."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM async_actions WHERE id = $1)", action_id))


async def set_progress(conn: asyncpg.Connection, action_id: str, progress: int) -> None:
    await conn.execute(
        "UPDATE async_actions SET progress = $2, updated_at = now() WHERE id = $1 AND status = 'IN_PROGRESS'",
        action_id,
        max(0, min(100, progress)),
    )


async def finish(conn: asyncpg.Connection, action_id: str, *, ok: bool, result: dict[str, Any]) -> None:
    await conn.execute(
        """UPDATE async_actions
           SET status = $2, operation_status = $3, result = $4,
               progress = CASE WHEN $2 = 'DONE' THEN 100 ELSE progress END,
               finished_at = now(), updated_at = now(), upload = NULL
           WHERE id = $1""",
        action_id,
        Status.DONE.value if ok else Status.FAILED.value,
        "SUCCESS" if ok else "FAILED",
        result,
    )
