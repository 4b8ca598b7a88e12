"""Bulk and metadata updates, order imports and metadata key purges (asynchronous actions).

Bulk and metadata updates report ``{done_count, failed_count, errors[{message, details, key, source_id}]}``
(voucher errors name the ``code``); an order import reports ``{message, done_count, failed_count,
failed[{source_id, row, reason}]}``; a purge ``{message, done_count}``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.catalog import customers, orders, products
from voucherd.definitions import metadata_schemas, voucher_state
from voucherd.definitions import version as definitions
from voucherd.definitions.voucher_state import definition_fields
from voucherd.platform import keys, listing
from voucherd.platform.errors import InvalidPayload, NotFound, VoucherdError
from voucherd.platform.scripts import SOURCES

Progress = Callable[[int], Awaitable[None]]

# Action types of the metadata key purge, by the resource name used in paths and on the command line.
PURGE_TYPES = {
    "campaigns": "CAMPAIGNS.METADATA_KEY_PURGE",
    "customers": "CUSTOMERS.METADATA_KEY_PURGE",
    "products": "PRODUCTS.METADATA_KEY_PURGE",
    "vouchers": "VOUCHERS.METADATA_KEY_PURGE",
    "orders": "ORDERS.METADATA_KEY_PURGE",
}


def _error(exc: VoucherdError | str, ref_name: str, ref: Any) -> dict[str, Any]:
    if isinstance(exc, VoucherdError):
        return {"message": exc.instance_message or exc.message, "details": str(exc), "key": exc.key, ref_name: ref}
    return {"message": exc, "details": exc, "key": "invalid_payload", ref_name: ref}


def _result(done: int, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"done_count": done, "failed_count": len(errors), "errors": errors}


def check_list(body: Any, name: str) -> list[Any]:
    """The request body of a bulk update: a JSON array (an empty body is an empty list)."""
    if body is None:
        return []
    if not isinstance(body, list):
        raise InvalidPayload(f"The request body should be an array of {name}")
    return body


def check_metadata_update(body: dict[str, Any], refs: str) -> dict[str, Any]:
    """``{source_ids|codes: [...], metadata: {...}}``; both may be absent (nothing to do)."""
    names = body.get(refs)
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) and n for n in names)):
        raise InvalidPayload(f"Property .{refs} should be an array of strings")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidPayload("Property .metadata should be an object")
    return {refs: list(dict.fromkeys(names or [])), "metadata": metadata or {}}


async def _step(progress: Progress, index: int, total: int) -> None:
    await progress(min(99, (index + 1) * 100 // max(total, 1)))


# --- customers --------------------------------------------------------------------------------------------------


async def customers_bulk(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, items: list[Any], progress: Progress
) -> dict[str, Any]:
    """``CUSTOMERS.BULK_UPDATE``: upsert each customer by source_id (created when new)."""
    errors: list[dict[str, Any]] = []
    done = 0
    async with pool.acquire() as conn:
        for index, item in enumerate(items):
            source_id = item.get("source_id") if isinstance(item, dict) else None
            try:
                if not isinstance(source_id, str) or not source_id:
                    raise InvalidPayload("Each customer needs a source_id")
                await customers.upsert_from_request(conn, project_id, {**item, "id": None}, redis=redis)
                done += 1
            except VoucherdError as exc:
                errors.append(_error(exc, "source_id", source_id))
            await _step(progress, index, len(items))
    return _result(done, errors)


async def _merge_metadata(
    pool: asyncpg.Pool, table: str, related_object: str, project_id: str, params: dict[str, Any]
) -> tuple[int, list[dict[str, Any]], list[str]]:
    """Merge ``metadata`` into the rows named by source id; null values remove keys. Returns
    (done, errors, ids of updated rows)."""
    source_ids: list[str] = params["source_ids"]
    metadata: dict[str, Any] = params["metadata"]
    if not source_ids:
        return 0, [], []
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            f"SELECT id, source_id, metadata FROM {table} WHERE project_id = $1 AND source_id = ANY($2::text[]) "
            "FOR UPDATE",
            project_id,
            source_ids,
        )
        found = {r["source_id"]: r for r in rows}
        errors = [_error(NotFound.of(related_object, s), "source_id", s) for s in source_ids if s not in found]
        updates = []
        for source_id, row in found.items():
            merged = listing.merge_metadata(row["metadata"], metadata)
            try:
                await metadata_schemas.check(conn, project_id, related_object, merged)
            except VoucherdError as exc:
                errors.append(_error(exc, "source_id", source_id))
                continue
            updates.append((row["id"], merged))
        if updates:
            await conn.execute(
                f"UPDATE {table} t SET metadata = u.metadata, updated_at = now() "
                "FROM unnest($2::text[], $3::jsonb[]) AS u(id, metadata) WHERE t.project_id = $1 AND t.id = u.id",
                project_id,
                [u[0] for u in updates],
                [u[1] for u in updates],
            )
    return len(updates), errors, [u[0] for u in updates]


async def customers_metadata(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, params: dict[str, Any], progress: Progress
) -> dict[str, Any]:
    """``CUSTOMERS.METADATA_UPDATE``; segment membership follows the new metadata."""
    from voucherd.catalog import segments

    done, errors, ids = await _merge_metadata(pool, "customers", "customer", project_id, params)
    await progress(50)
    async with pool.acquire() as conn:
        await segments.refresh_customers(conn, redis, project_id, list(ids))
    return _result(done, errors)


# --- products ---------------------------------------------------------------------------------------------------


async def products_bulk(pool: asyncpg.Pool, project_id: str, items: list[Any], progress: Progress) -> dict[str, Any]:
    """``PRODUCTS.BULK_UPDATE``: upsert each product by source_id."""
    errors: list[dict[str, Any]] = []
    done = 0
    async with pool.acquire() as conn:
        for index, item in enumerate(items):
            source_id = item.get("source_id") if isinstance(item, dict) else None
            try:
                if not isinstance(source_id, str) or not source_id:
                    raise InvalidPayload("Each product needs a source_id")
                await products.upsert_product(conn, project_id, {**item, "id": None})
                done += 1
            except VoucherdError as exc:
                errors.append(_error(exc, "source_id", source_id))
            await _step(progress, index, len(items))
    return _result(done, errors)


async def products_metadata(pool: asyncpg.Pool, project_id: str, params: dict[str, Any]) -> dict[str, Any]:
    done, errors, _ids = await _merge_metadata(pool, "products", "product", project_id, params)
    return _result(done, errors)


# --- vouchers ---------------------------------------------------------------------------------------------------


async def _patch_states(redis: aioredis.Redis, project_id: str, rows: list[asyncpg.Record]) -> None:
    """Rewrite the definition fields of present Redis hashes (pipelined); absent ones load from PostgreSQL."""
    script = redis.register_script(SOURCES["voucher_patch"])
    for start in range(0, len(rows), 5_000):
        async with redis.pipeline(transaction=False) as pipe:
            for row in rows[start : start + 5_000]:
                await voucher_state.materialise(pipe, project_id, row["code"])  # see voucher_state.patch
                flat: list[str | bytes] = []
                for name, value in definition_fields(row).items():
                    flat += [name, value]
                await script(keys=[keys.voucher_state(project_id, row["code"])], args=flat, client=pipe)
            await pipe.execute()


async def _update_voucher_metadata(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, changes: dict[str, dict[str, Any]], *, merge: bool
) -> tuple[int, list[dict[str, Any]]]:
    """Set (or merge) the metadata of the codes in ``changes``; PostgreSQL first, then each code's Redis state."""
    if not changes:
        return 0, []
    async with pool.acquire() as conn:
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT id, code, metadata FROM vouchers WHERE project_id = $1 AND code = ANY($2::text[]) "
                "AND deleted_at IS NULL FOR UPDATE",
                project_id,
                list(changes),
            )
            found = {r["code"]: r for r in rows}
            errors = [_error(NotFound.of("voucher", c), "code", c) for c in changes if c not in found]
            updates = []
            for code, row in found.items():
                metadata = listing.merge_metadata(row["metadata"], changes[code]) if merge else changes[code]
                try:
                    await metadata_schemas.check(conn, project_id, "voucher", metadata)
                except VoucherdError as exc:
                    errors.append(_error(exc, "code", code))
                    continue
                updates.append((row["id"], metadata))
            fresh = await conn.fetch(
                "UPDATE vouchers v SET metadata = u.metadata, updated_at = now() "
                "FROM unnest($2::text[], $3::jsonb[]) AS u(id, metadata) WHERE v.project_id = $1 AND v.id = u.id "
                "RETURNING v.*",
                project_id,
                [u[0] for u in updates],
                [u[1] for u in updates],
            )
        await _patch_states(redis, project_id, list(fresh))
    return len(fresh), errors


async def vouchers_bulk(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, items: list[Any], progress: Progress
) -> dict[str, Any]:
    """``VOUCHERS.BULK_UPDATE``: ``[{code, metadata}]``; each code's metadata is merged with what is sent."""
    errors: list[dict[str, Any]] = []
    changes: dict[str, dict[str, Any]] = {}
    for item in items:
        code = item.get("code") if isinstance(item, dict) else None
        if not isinstance(code, str) or not code:
            errors.append(_error("Each item needs a code", "code", code))
        elif not isinstance(item.get("metadata"), dict):
            errors.append(_error("Property .metadata should be an object", "code", code))
        else:
            changes[code] = {**changes.get(code, {}), **item["metadata"]}
    await progress(10)
    done, more = await _update_voucher_metadata(pool, redis, project_id, changes, merge=True)
    return _result(done, errors + more)


async def vouchers_metadata(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    """``VOUCHERS.METADATA_UPDATE``: ``{codes, metadata}`` merged into every code."""
    changes = dict.fromkeys(params["codes"], params["metadata"])
    done, errors = await _update_voucher_metadata(pool, redis, project_id, changes, merge=True)
    return _result(done, errors)


# --- orders -----------------------------------------------------------------------------------------------------


async def import_orders(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, items: list[Any], progress: Progress
) -> dict[str, Any]:
    """``ORDERS.IMPORT``: create (or update by source_id) each order, upserting its customer and referrer."""
    started = time.monotonic()
    failed: list[dict[str, Any]] = []
    done = 0
    async with pool.acquire() as conn:
        for index, item in enumerate(items):
            source_id = item.get("source_id") if isinstance(item, dict) else None
            try:
                if not isinstance(item, dict):
                    raise InvalidPayload("Each order should be an object")
                await orders.upsert_from_request(conn, project_id, item, redis=redis)
                done += 1
            except VoucherdError as exc:
                failed.append({"source_id": source_id, "row": index + 1, "reason": str(exc)})
            await _step(progress, index, len(items))
    message = f"{done} orders imported, {len(failed)} failed in {time.monotonic() - started:.2f} s"
    return {"message": message, "done_count": done, "failed_count": len(failed), "failed": failed}


# --- metadata key purge -----------------------------------------------------------------------------------------


async def enqueue_purge(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    project_id: str,
    resource: str,
    key: str,
    *,
    request_id: str | None = None,
) -> dict[str, str]:
    """Start a metadata key purge (management API and ``voucherd purge-metadata-key``): ``{async_action_id}``."""
    from voucherd.platform import async_actions, projects

    action_type = check_purge(resource, key)
    await projects.get_project(conn, project_id)
    return await async_actions.enqueue(conn, redis, project_id, action_type, {"key": key}, request_id=request_id)


def check_purge(resource: str, key: str) -> str:
    """The action type for purging ``key`` from ``resource``'s metadata; 400 for an unknown resource."""
    action_type = PURGE_TYPES.get(resource.lower())
    if action_type is None:
        raise InvalidPayload(f"resource should be one of {', '.join(PURGE_TYPES)}, got {resource!r}")
    if not key or len(key) > 200:
        raise InvalidPayload("The metadata key should be 1 to 200 characters")
    return action_type


async def purge_metadata_key(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, resource: str, key: str, progress: Progress
) -> dict[str, Any]:
    """Remove ``key`` from the metadata of every object of ``resource`` in the project, in batches."""
    table = resource.lower()
    if table not in PURGE_TYPES:
        raise InvalidPayload(f"resource should be one of {', '.join(PURGE_TYPES)}")
    done = 0
    returning = "v.*" if table == "vouchers" else "t.id"
    alias = "v" if table == "vouchers" else "t"
    async with pool.acquire() as conn:
        total = await conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE project_id = $1 AND metadata ? $2", project_id, key
        )
        while True:
            async with conn.transaction():
                rows = await conn.fetch(
                    f"UPDATE {table} {alias} SET metadata = {alias}.metadata - $2, updated_at = now() "
                    f"WHERE ({alias}.project_id, {alias}.id) IN (SELECT project_id, id FROM {table} "
                    "WHERE project_id = $1 AND metadata ? $2 LIMIT 10000) "
                    f"RETURNING {returning}",
                    project_id,
                    key,
                )
            if not rows:
                break
            if table == "vouchers":
                await _patch_states(redis, project_id, list(rows))
            done += len(rows)
            await progress(min(99, done * 100 // max(total, 1)))
    if table == "campaigns" and done:
        await definitions.bump(redis, project_id)
    return {"message": f"metadata key {key!r} removed from {done} {table}", "done_count": done}
