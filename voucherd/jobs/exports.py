"""Exports (``exp_``): CSV files made by the worker, downloaded from any server process.

``create`` records the export and starts its async action (``EXPORT``) in one transaction. The
worker's ``run`` streams the rows out of PostgreSQL with ``COPY (SELECT …) TO STDOUT`` and writes the
CSV back as chunks of about a megabyte (``export_chunks``, see migration 0013), so no process ever
holds a whole file; the chunks and the ``DONE`` status commit together. ``chunks`` reads the file
back one chunk at a time for the download, which needs the export's token (in ``result.url``).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.jobs import export_fields
from voucherd.platform import async_actions, listing
from voucherd.platform.errors import InvalidExportParams, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso

ACTION_TYPE = "EXPORT"
CHUNK_BYTES = 1 << 20
Progress = Callable[[int], Awaitable[None]]

_ORDERS = {
    "created_at": "created_at, id",
    "-created_at": "created_at DESC, id DESC",
    "status": "status, created_at, id",
    "-status": "status DESC, created_at DESC, id DESC",
}


def view(row: asyncpg.Record | Mapping[str, Any], base_url: str) -> dict[str, Any]:
    result = None
    if row["status"] == "DONE":
        result = {"url": f"{base_url}/v1/exports/{row['id']}?token={row['token']}"}
    return {
        "id": row["id"],
        "object": "export",
        "created_at": iso(row["created_at"]),
        "status": row["status"],
        "channel": row["channel"],
        "exported_object": row["exported_object"],
        "parameters": _echoed(row["parameters"], row["scope"]),
        "result": result,
        "user_id": None,
    }


def _echoed(parameters: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    if not scope:
        return parameters
    filters = {**(parameters.get("filters") or {})}
    filters.setdefault(scope["column"], {"conditions": {"$in": [scope["shown"]]}})
    return {**parameters, "filters": filters}


async def create(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    body: dict[str, Any],
    base_url: str,
    *,
    exported_object: str | None = None,
    scope: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """``POST /v1/exports`` (or a per-resource export, which fixes the object and a scope)."""
    kind = exported_object or body.get("exported_object")
    if not isinstance(kind, str) or kind not in export_fields.CATALOGS:
        raise InvalidExportParams(
            f"Property .exported_object should be one of {', '.join(export_fields.CATALOGS)}",
        )
    parameters = export_fields.check(kind, body.get("parameters"))
    export_id = new_id("exp")
    async with conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO exports (id, project_id, exported_object, parameters, scope, token)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING *""",
            export_id,
            project_id,
            kind,
            parameters,
            scope or {},
            os.urandom(16).hex(),
        )
        # Last in the transaction: the worker may read the announcement before the commit.
        await async_actions.enqueue(
            conn, redis, project_id, ACTION_TYPE, {"export_id": export_id}, request_id=request_id
        )
    return view(row, base_url)


async def create_scoped(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    body: dict[str, Any],
    base_url: str,
    *,
    exported_object: str,
    column: str,
    value: str,
    shown: str,
    request_id: str | None = None,
) -> dict[str, Any]:
    """A per-resource export (a campaign's or a card's transactions, …): its rows are held to
    ``column = value`` whatever the filters say; the echoed filters name the resource as the path
    gave it (``shown``: a code, an id or a name), as Voucherify echoes them."""
    return await create(
        conn,
        redis,
        project_id,
        body,
        base_url,
        exported_object=exported_object,
        scope={"column": column, "value": value, "shown": shown},
        request_id=request_id,
    )


async def _row(conn: asyncpg.Connection, project_id: str, export_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM exports WHERE project_id = $1 AND id = $2", project_id, export_id)
    if row is None:
        raise NotFound.of("export", export_id)
    return row


async def get(conn: asyncpg.Connection, project_id: str, export_id: str, base_url: str) -> dict[str, Any]:
    return view(await _row(conn, project_id, export_id), base_url)


async def list_page(
    conn: asyncpg.Connection, project_id: str, query: Mapping[str, str], base_url: str
) -> dict[str, Any]:
    limit, offset = listing.page_params(query)
    order = listing.order_param(query, _ORDERS, "-created_at")
    total = await conn.fetchval("SELECT count(*) FROM exports WHERE project_id = $1", project_id)
    rows = await conn.fetch(
        f"SELECT * FROM exports WHERE project_id = $1 ORDER BY {order} LIMIT {limit} OFFSET {offset}", project_id
    )
    return {
        "object": "list",
        "data_ref": "exports",
        "exports": [view(r, base_url) for r in rows],
        "total": total,
    }


async def delete(conn: asyncpg.Connection, project_id: str, export_id: str) -> None:
    """The export and its file go; a run still writing it finds nothing to finish."""
    deleted = await conn.fetchval(
        "DELETE FROM exports WHERE project_id = $1 AND id = $2 RETURNING id", project_id, export_id
    )
    if deleted is None:
        raise NotFound.of("export", export_id)


async def open_download(conn: asyncpg.Connection, export_id: str, token: str) -> tuple[str, int]:
    """(file name, chunk count) of a finished export whose token matches; 404 for any other case.

    The token is the only credential of a download link (Voucherify hands such links to browsers),
    so a wrong token and a missing export answer alike.
    """
    row = await conn.fetchrow("SELECT * FROM exports WHERE id = $1", export_id)
    if row is None or row["status"] != "DONE" or not hmac.compare_digest(row["token"].encode(), token.encode()):
        raise NotFound.of("export", export_id)
    count = await conn.fetchval("SELECT count(*) FROM export_chunks WHERE export_id = $1", export_id)
    return f"{row['exported_object']}-{export_id}.csv", int(count)


async def open_project_download(conn: asyncpg.Connection, project_id: str, export_id: str) -> tuple[str, int]:
    """``open_download`` for a caller the project already trusts (the console's session), without the token."""
    row = await _row(conn, project_id, export_id)
    return await open_download(conn, export_id, row["token"])


async def chunks(pool: asyncpg.Pool, export_id: str, count: int) -> AsyncIterator[bytes]:
    """The file, chunk by chunk; a connection is held only while one chunk is read."""
    for seq in range(count):
        async with pool.acquire() as conn:
            data = await conn.fetchval(
                "SELECT data FROM export_chunks WHERE export_id = $1 AND seq = $2", export_id, seq
            )
        if data is None:
            return  # deleted meanwhile
        yield bytes(data)


# --- worker side -----------------------------------------------------------------------------------


class _ChunkWriter:
    """Collects COPY output into ~1 MiB chunks and writes each on a second connection.

    One write is in flight while the next chunk fills, so reading and writing overlap without
    more than two chunks in memory.
    """

    def __init__(self, conn: asyncpg.Connection, export_id: str, total: int, progress: Progress) -> None:
        self.conn = conn
        self.export_id = export_id
        self.total = max(total, 1)
        self.progress = progress
        self.buffer = bytearray()
        self.seq = 0
        self.lines = 0
        self.size = 0
        self.pending: asyncio.Task[Any] | None = None

    async def write(self, data: bytes) -> None:
        self.buffer += data
        self.lines += data.count(b"\n")  # rows, near enough for progress (a cell may hold a newline)
        self.size += len(data)
        if len(self.buffer) >= CHUNK_BYTES:
            await self._flush()
            await self.progress(min(99, self.lines * 100 // self.total))

    async def _flush(self) -> None:
        if self.pending is not None:
            await self.pending
        if not self.buffer:
            self.pending = None
            return
        data, self.buffer = bytes(self.buffer), bytearray()
        seq, self.seq = self.seq, self.seq + 1
        self.pending = asyncio.ensure_future(
            self.conn.execute(
                "INSERT INTO export_chunks (export_id, seq, data) VALUES ($1, $2, $3)", self.export_id, seq, data
            )
        )

    async def close(self) -> None:
        await self._flush()
        if self.pending is not None:
            await self.pending
            self.pending = None

    def cancel(self) -> None:
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()


async def run(pool: asyncpg.Pool, project_id: str, export_id: str, progress: Progress) -> dict[str, Any]:
    """Write the export's file; returns the async action's result."""
    async with pool.acquire() as reader, pool.acquire() as writer:
        row = await reader.fetchrow(
            "UPDATE exports SET status = 'IN_PROGRESS', updated_at = now() WHERE project_id = $1 AND id = $2 "
            "AND status IN ('SCHEDULED', 'IN_PROGRESS') RETURNING *",
            project_id,
            export_id,
        )
        if row is None:
            return {"message": f"export {export_id} was deleted or has finished", "export_id": export_id}
        query = export_fields.build(row["exported_object"], row["parameters"], row["scope"])
        try:
            # Every chunk and the DONE status commit together: a download never sees half a file.
            async with writer.transaction():
                out = _ChunkWriter(writer, export_id, 0, progress)
                # One snapshot for the count (progress and row_count) and the rows.
                async with reader.transaction(isolation="repeatable_read", readonly=True):
                    count = await reader.fetchval(query.count_sql, project_id, *query.args)
                    out.total = max(1, count)
                    try:
                        await reader.copy_from_query(
                            query.sql, project_id, *query.args, output=out.write, format="csv", header=True
                        )
                        await out.close()
                    finally:
                        out.cancel()
                finished = await writer.fetchval(
                    "UPDATE exports SET status = 'DONE', row_count = $2, byte_size = $3, updated_at = now() "
                    "WHERE id = $1 RETURNING id",
                    export_id,
                    count,
                    out.size,
                )
                if finished is None:
                    raise _Deleted
        except (_Deleted, asyncpg.ForeignKeyViolationError):  # its chunks found no export row
            return {"message": f"export {export_id} was deleted while it ran", "export_id": export_id}
    return {"export_id": export_id, "exported_object": row["exported_object"], "rows": count, "fields": query.fields}


class _Deleted(Exception):
    pass


async def fail(pool: asyncpg.Pool, export_id: str, message: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE exports SET status = 'ERROR', error = $2, updated_at = now() WHERE id = $1",
            export_id,
            {"message": message},
        )
