"""The catalog: products (``prod_``), their SKUs (``sku_``) and product collections (``pc_``).

Products and SKUs upsert by id or ``source_id``; every project holds the built-in shipping
product ``prod_5h1pp1ng`` (inserted by a trigger when the project is created).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from voucherd.catalog.segments import check_filter, compile_filter
from voucherd.definitions import metadata_schemas
from voucherd.platform.errors import InvalidPayload, NotFound, ResourceProtected
from voucherd.platform.ids import new_id
from voucherd.platform.listing import checked_metadata, order_param, page_params, time_param
from voucherd.platform.timeutil import iso, utcnow

SHIPPING_PRODUCT_ID = "prod_5h1pp1ng"
_ORDERS = {
    "created_at": "created_at ASC, id ASC",
    "-created_at": "created_at DESC, id DESC",
    "updated_at": "updated_at ASC NULLS FIRST, id ASC",
    "-updated_at": "updated_at DESC NULLS LAST, id DESC",
}
# The spec's order enum for these lists also names voucher fields (type, code, campaign, category): accepted, unused.
for _name in ("type", "code", "campaign", "category"):
    _ORDERS[_name] = _ORDERS["created_at"]
    _ORDERS[f"-{_name}"] = _ORDERS["-created_at"]


# --- views ---


def sku_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "product_id": row["product_id"],
        "sku": row["sku"],
        "price": row["price"],
        "currency": row["currency"],
        "attributes": row["attributes"],
        "image_url": row["image_url"],
        "metadata": row["metadata"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "sku",
    }


def product_base_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "name": row["name"],
        "price": row["price"],
        "attributes": row["attributes"],
        "metadata": row["metadata"],
        "image_url": row["image_url"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "product",
    }


def product_view(row: asyncpg.Record, skus: list[asyncpg.Record]) -> dict[str, Any]:
    items = [sku_view(s) for s in skus]
    return {
        **product_base_view(row),
        "skus": {"object": "list", "data_ref": "data", "data": items, "total": len(items)},
    }


async def _skus_of(
    conn: asyncpg.Connection, project_id: str, product_ids: list[str]
) -> dict[str, list[asyncpg.Record]]:
    rows = await conn.fetch(
        "SELECT * FROM skus WHERE project_id = $1 AND product_id = ANY($2::text[]) ORDER BY created_at, id",
        project_id,
        product_ids,
    )
    by_product: dict[str, list[asyncpg.Record]] = {pid: [] for pid in product_ids}
    for row in rows:
        by_product[row["product_id"]].append(row)
    return by_product


# --- validation ---


def _price(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidPayload(f"Property .{field} should be a non-negative integer (minor units)")
    return value


def _text(body: dict[str, Any], name: str, fields: dict[str, Any], prefix: str = "") -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidPayload(f"Property .{prefix}{name} should be a string")
    fields[name] = value


def _product_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    _text(body, "name", fields)
    _text(body, "image_url", fields)
    if body.get("price") is not None:
        fields["price"] = _price(body["price"], "price")
    attributes = body.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
            raise InvalidPayload("Property .attributes should be an array of strings")
        fields["attributes"] = attributes
    metadata = checked_metadata(body.get("metadata"))
    if metadata is not None:
        fields["metadata"] = metadata
    return fields


def _sku_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    _text(body, "sku", fields)
    _text(body, "currency", fields)
    _text(body, "image_url", fields)
    if body.get("price") is not None:
        fields["price"] = _price(body["price"], "price")
    attributes = body.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, dict):
            raise InvalidPayload("Property .attributes should be an object")
        fields["attributes"] = attributes
    metadata = checked_metadata(body.get("metadata"))
    if metadata is not None:
        fields["metadata"] = metadata
    return fields


def _ref(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidPayload(f"Property .{name} should be a non-empty string")
    return value


async def _upsert_row(
    conn: asyncpg.Connection,
    table: str,
    project_id: str,
    existing: asyncpg.Record | None,
    fields: dict[str, Any],
    insert: dict[str, Any],
) -> asyncpg.Record:
    """Update ``existing`` with ``fields``, or insert ``insert`` + ``fields``."""
    if existing is not None:
        if not fields:
            return existing
        sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=3)]
        row: asyncpg.Record = await conn.fetchrow(
            f"UPDATE {table} SET {', '.join([*sets, 'updated_at = now()'])} "
            "WHERE project_id = $1 AND id = $2 RETURNING *",
            project_id,
            existing["id"],
            *fields.values(),
        )
        return row
    values = {"project_id": project_id, **insert, **fields}
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({placeholders}) RETURNING *", *values.values()
    )
    return row


# --- products ---


async def find_product(conn: asyncpg.Connection, project_id: str, ref: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM products WHERE project_id = $1 AND (id = $2 OR source_id = $2) ORDER BY id = $2 DESC LIMIT 1",
        project_id,
        ref,
    )


async def _require_product(conn: asyncpg.Connection, project_id: str, ref: str) -> asyncpg.Record:
    row = await find_product(conn, project_id, ref)
    if row is None:
        raise NotFound.of("product", ref)
    return row


async def _lock_existing(
    conn: asyncpg.Connection, table: str, kind: str, project_id: str, object_id: str | None, source_id: str | None
) -> asyncpg.Record | None:
    """The row an upsert names, locked: by ``id`` (which must exist) or else by ``source_id``."""
    assert table in ("products", "skus")  # never from input
    if object_id is not None:
        row = await conn.fetchrow(
            f"SELECT * FROM {table} WHERE project_id = $1 AND id = $2 FOR UPDATE", project_id, object_id
        )
        if row is None:
            raise NotFound.of(kind, object_id)
        return row
    if source_id is not None:
        return await conn.fetchrow(
            f"SELECT * FROM {table} WHERE project_id = $1 AND source_id = $2 FOR UPDATE", project_id, source_id
        )
    return None


async def upsert_product(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> asyncpg.Record:
    """Create, or update the product named by ``id`` / ``source_id`` (metadata is replaced as a whole)."""
    fields = _product_fields(body)
    product_id, source_id = _ref(body, "id"), _ref(body, "source_id")
    if "metadata" in fields:
        await metadata_schemas.check(conn, project_id, "product", fields["metadata"])
    async with conn.transaction():
        existing = await _lock_existing(conn, "products", "product", project_id, product_id, source_id)
        return await _upsert_row(
            conn, "products", project_id, existing, fields, {"id": new_id("prod"), "source_id": source_id}
        )


async def create_product(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    row = await upsert_product(conn, project_id, body)
    return product_view(row, (await _skus_of(conn, project_id, [row["id"]]))[row["id"]])


async def get_product(conn: asyncpg.Connection, project_id: str, ref: str) -> dict[str, Any]:
    row = await _require_product(conn, project_id, ref)
    return product_view(row, (await _skus_of(conn, project_id, [row["id"]]))[row["id"]])


async def update_product(conn: asyncpg.Connection, project_id: str, ref: str, body: dict[str, Any]) -> dict[str, Any]:
    row = await _require_product(conn, project_id, ref)
    return await create_product(conn, project_id, {**body, "id": row["id"], "source_id": None})


async def delete_product(conn: asyncpg.Connection, project_id: str, ref: str) -> None:
    """Removes the product with its SKUs (``force`` is accepted: nothing else holds a product back yet)."""
    row = await _require_product(conn, project_id, ref)
    if row["id"] == SHIPPING_PRODUCT_ID:
        raise ResourceProtected("The built-in shipping product cannot be deleted.")
    await conn.execute("DELETE FROM products WHERE project_id = $1 AND id = $2", project_id, row["id"])


async def list_products(conn: asyncpg.Connection, project_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    limit, offset = page_params(query)
    order = order_param(query, _ORDERS, "-created_at")
    where: list[str] = ["project_id = $1"]
    args: list[Any] = [project_id]
    for name, op in (("start_date", ">="), ("end_date", "<=")):
        value = time_param(query, name)
        if value is not None:
            args.append(value)
            where.append(f"created_at {op} ${len(args)}")
    condition = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM products WHERE {condition}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM products WHERE {condition} ORDER BY {order} LIMIT {limit} OFFSET {offset}", *args
    )
    skus = await _skus_of(conn, project_id, [r["id"] for r in rows])
    items = [product_view(r, skus[r["id"]]) for r in rows]
    return {"object": "list", "data_ref": "products", "products": items, "total": total}


# --- SKUs ---


async def find_sku(conn: asyncpg.Connection, project_id: str, ref: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM skus WHERE project_id = $1 AND (id = $2 OR source_id = $2) ORDER BY id = $2 DESC LIMIT 1",
        project_id,
        ref,
    )


async def _require_sku(
    conn: asyncpg.Connection, project_id: str, ref: str, product: asyncpg.Record | None = None
) -> asyncpg.Record:
    row = await find_sku(conn, project_id, ref)
    if row is None or (product is not None and row["product_id"] != product["id"]):
        raise NotFound.of("sku", ref)
    return row


async def upsert_sku(
    conn: asyncpg.Connection, project_id: str, product: asyncpg.Record, body: dict[str, Any]
) -> asyncpg.Record:
    fields = _sku_fields(body)
    sku_id, source_id = _ref(body, "id"), _ref(body, "source_id")
    if "metadata" in fields:
        await metadata_schemas.check(conn, project_id, "sku", fields["metadata"])
    async with conn.transaction():
        existing = await _lock_existing(conn, "skus", "sku", project_id, sku_id, source_id)
        if existing is not None and existing["product_id"] != product["id"]:
            raise InvalidPayload(f"SKU {existing['id']} belongs to product {existing['product_id']}")
        return await _upsert_row(
            conn,
            "skus",
            project_id,
            existing,
            fields,
            {"id": new_id("sku"), "source_id": source_id, "product_id": product["id"]},
        )


async def create_sku(
    conn: asyncpg.Connection, project_id: str, product_ref: str, body: dict[str, Any]
) -> dict[str, Any]:
    product = await _require_product(conn, project_id, product_ref)
    return sku_view(await upsert_sku(conn, project_id, product, body))


async def get_sku(
    conn: asyncpg.Connection, project_id: str, ref: str, product_ref: str | None = None
) -> dict[str, Any]:
    product = await _require_product(conn, project_id, product_ref) if product_ref is not None else None
    return sku_view(await _require_sku(conn, project_id, ref, product))


async def update_sku(
    conn: asyncpg.Connection, project_id: str, product_ref: str, ref: str, body: dict[str, Any]
) -> dict[str, Any]:
    product = await _require_product(conn, project_id, product_ref)
    sku = await _require_sku(conn, project_id, ref, product)
    return sku_view(await upsert_sku(conn, project_id, product, {**body, "id": sku["id"], "source_id": None}))


async def delete_sku(conn: asyncpg.Connection, project_id: str, product_ref: str, ref: str) -> None:
    product = await _require_product(conn, project_id, product_ref)
    sku = await _require_sku(conn, project_id, ref, product)
    await conn.execute("DELETE FROM skus WHERE project_id = $1 AND id = $2", project_id, sku["id"])


async def list_skus(
    conn: asyncpg.Connection, project_id: str, product_ref: str, query: Mapping[str, str]
) -> dict[str, Any]:
    product = await _require_product(conn, project_id, product_ref)
    limit, offset = page_params(query)
    order = order_param(query, _ORDERS, "created_at")
    where: list[str] = ["project_id = $1", "product_id = $2"]
    args: list[Any] = [project_id, product["id"]]
    for name, op in (("start_date", ">="), ("end_date", "<=")):
        value = time_param(query, name)
        if value is not None:
            args.append(value)
            where.append(f"created_at {op} ${len(args)}")
    condition = " AND ".join(where)
    total = await conn.fetchval(f"SELECT count(*) FROM skus WHERE {condition}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM skus WHERE {condition} ORDER BY {order} LIMIT {limit} OFFSET {offset}", *args
    )
    return {"object": "list", "data_ref": "skus", "skus": [sku_view(r) for r in rows], "total": total}


# --- product collections ---

COLLECTION_TYPES = ("STATIC", "AUTO_UPDATE")


def collection_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "filter": row["filter"],
        "products": row["products"] if row["type"] == "STATIC" else None,
        "created_at": iso(row["created_at"]),
        "object": "products_collection",
    }


async def _static_entries(conn: asyncpg.Connection, project_id: str, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidPayload("Property .products is required for a STATIC collection and should be a non-empty array")
    entries = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise InvalidPayload(f"Property .products[{i}] should have required property 'id'")
        kind = item.get("object")
        if kind == "product":
            product = await _require_product(conn, project_id, item["id"])
            entries.append({"id": product["id"], "object": "product"})
        elif kind == "sku":
            sku = await _require_sku(conn, project_id, item["id"])
            entries.append({"id": sku["id"], "product_id": sku["product_id"], "object": "sku"})
        else:
            raise InvalidPayload(f"Property .products[{i}].object should be product or sku")
    return entries


async def create_collection(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidPayload("Property .name is required and should be a non-empty string")
    kind = body.get("type") or "STATIC"
    if kind not in COLLECTION_TYPES:
        raise InvalidPayload("Property .type should be STATIC or AUTO_UPDATE")
    entries: list[dict[str, Any]] = []
    filter_ = None
    if kind == "STATIC":
        entries = await _static_entries(conn, project_id, body.get("products"))
    else:
        filter_ = check_filter(body.get("filter"))
    row = await conn.fetchrow(
        "INSERT INTO product_collections (project_id, id, name, type, filter, products) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        project_id,
        new_id("pc"),
        name,
        kind,
        filter_,
        entries,
    )
    return collection_view(row)


async def _require_collection(conn: asyncpg.Connection, project_id: str, collection_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM product_collections WHERE project_id = $1 AND id = $2", project_id, collection_id
    )
    if row is None:
        raise NotFound.of("products_collection", collection_id)
    return row


async def get_collection(conn: asyncpg.Connection, project_id: str, collection_id: str) -> dict[str, Any]:
    return collection_view(await _require_collection(conn, project_id, collection_id))


async def delete_collection(conn: asyncpg.Connection, project_id: str, collection_id: str) -> None:
    status = await conn.execute(
        "DELETE FROM product_collections WHERE project_id = $1 AND id = $2", project_id, collection_id
    )
    if status == "DELETE 0":
        raise NotFound.of("products_collection", collection_id)


async def list_collections(conn: asyncpg.Connection, project_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    limit, offset = page_params(query)
    order = order_param(query, _ORDERS, "created_at")
    total = await conn.fetchval("SELECT count(*) FROM product_collections WHERE project_id = $1", project_id)
    rows = await conn.fetch(
        f"SELECT * FROM product_collections WHERE project_id = $1 ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        project_id,
    )
    return {"object": "list", "data_ref": "data", "data": [collection_view(r) for r in rows], "total": total}


def _collection_sku_item(sku: asyncpg.Record, product: asyncpg.Record | None) -> dict[str, Any]:
    # The collection listing types `attributes` as a list of strings, which SKU attributes (an object) are not.
    item = {k: v for k, v in sku_view(sku).items() if k != "attributes"}
    item["product"] = product_base_view(product) if product is not None else None
    return item


async def collection_members(conn: asyncpg.Connection, project_id: str, collection_id: str) -> list[dict[str, Any]]:
    """The products and SKUs in a collection (the filter of AUTO_UPDATE ones is evaluated now)."""
    row = await _require_collection(conn, project_id, collection_id)
    products = {
        r["id"]: r
        for r in await conn.fetch("SELECT * FROM products WHERE project_id = $1 ORDER BY created_at, id", project_id)
    }
    items: list[dict[str, Any]] = []
    if row["type"] == "STATIC":
        sku_ids = [e["id"] for e in row["products"] if e["object"] == "sku"]
        skus = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT * FROM skus WHERE project_id = $1 AND id = ANY($2::text[])", project_id, sku_ids
            )
        }
        for entry in row["products"]:
            if entry["object"] == "product" and entry["id"] in products:
                items.append(product_base_view(products[entry["id"]]))
            elif entry["object"] == "sku" and entry["id"] in skus:
                sku = skus[entry["id"]]
                items.append(_collection_sku_item(sku, products.get(sku["product_id"])))
        return items
    filter_: dict[str, Any] = row["filter"]
    match, now = compile_filter(filter_), utcnow()
    for product in products.values():
        if match(product_base_view(product), now):
            items.append(product_base_view(product))
    if "object" in filter_:  # SKUs join only filters that say which object they want
        for sku in await conn.fetch("SELECT * FROM skus WHERE project_id = $1 ORDER BY created_at, id", project_id):
            if match(sku_view(sku), now):
                items.append(_collection_sku_item(sku, products.get(sku["product_id"])))
    return items


async def list_collection_products(
    conn: asyncpg.Connection, project_id: str, collection_id: str, query: Mapping[str, str]
) -> dict[str, Any]:
    limit, offset = page_params(query)
    items = await collection_members(conn, project_id, collection_id)
    return {"object": "list", "data_ref": "data", "data": items[offset : offset + limit], "total": len(items)}
