"""Orders (``ord_``, lines ``ordli_``): upserted by id or ``source_id`` with their customer and referrer.

Items resolve against the catalog (``product_id``, ``sku_id``, ``source_id`` + ``related_object``, or nested
``product`` / ``sku`` objects); a missing price comes from the catalog and ``override: true`` writes the
payload's product or SKU data back to it. Discounts are not applied here: the calculated discount fields
carry what the request stated (0 by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.catalog import activity, customers, products
from voucherd.definitions import metadata_schemas
from voucherd.platform import listing
from voucherd.platform.errors import InvalidPayload, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.money import MAX_MONEY
from voucherd.platform.timeutil import iso

STATUSES = ("CREATED", "PAID", "CANCELED", "FULFILLED")
MAX_ITEMS = 500
_ORDERS = {
    "created_at": "created_at ASC, id ASC",
    "-created_at": "created_at DESC, id DESC",
    "updated_at": "updated_at ASC NULLS FIRST, id ASC",
    "-updated_at": "updated_at DESC NULLS LAST, id DESC",
}
_STATUS_ACTIVITY = {
    "PAID": "customer.order.paid",
    "CANCELED": "customer.order.canceled",
    "FULFILLED": "customer.order.fulfilled",
}


def _int(value: Any, field: str, *, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidPayload(f"Property .{field} should be an integer >= {minimum}")
    return value


def _calculated(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    amount = row["amount"]
    discount, items_discount = row["discount_amount"], row["items_discount_amount"]
    total_discount = discount + items_discount
    return {
        "amount": amount,
        "initial_amount": row["initial_amount"],
        "discount_amount": discount,
        "items_discount_amount": items_discount,
        "total_discount_amount": total_discount,
        "total_amount": max(0, amount - total_discount) if amount is not None else None,
    }


def order_view(row: asyncpg.Record | Mapping[str, Any]) -> dict[str, Any]:
    customer_id, referrer_id = row["customer_id"], row["referrer_id"]
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "status": row["status"],
        **_calculated(row),
        "items": row["items"],
        "metadata": row["metadata"],
        "customer": {"id": customer_id, "object": "customer"} if customer_id else None,
        "customer_id": customer_id,
        "referrer": {"id": referrer_id, "object": "customer"} if referrer_id else None,
        "referrer_id": referrer_id,
        "redemptions": row["redemptions"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "object": "order",
    }


# --- items ---


def _nested(item: dict[str, Any], name: str, index: int) -> dict[str, Any] | None:
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidPayload(f"Property .items[{index}].{name} should be an object")
    return value


async def _catalog_product(
    conn: asyncpg.Connection, project_id: str, item: dict[str, Any], data: dict[str, Any] | None, index: int
) -> asyncpg.Record | None:
    ref = item.get("product_id") or (data or {}).get("id")
    source_id = (data or {}).get("source_id")
    if ref is None and source_id is None and item.get("related_object", "product") == "product":
        source_id = item.get("source_id")
    if data is not None and data.get("override") is True:
        body = {k: data.get(k) for k in ("name", "price", "metadata")}
        if ref is not None:
            existing = await products.find_product(conn, project_id, ref)
            if existing is None:
                raise NotFound.of("product", ref)
            return await products.upsert_product(conn, project_id, {**body, "id": existing["id"]})
        if source_id is None:
            raise InvalidPayload(f"Property .items[{index}].product needs id or source_id to override the catalog")
        return await products.upsert_product(conn, project_id, {**body, "source_id": source_id})
    if ref is not None:
        row = await products.find_product(conn, project_id, ref)
        if row is None:
            raise NotFound.of("product", ref)
        return row
    if source_id is not None:
        return await products.find_product(conn, project_id, source_id)
    return None


async def _catalog_sku(
    conn: asyncpg.Connection,
    project_id: str,
    item: dict[str, Any],
    data: dict[str, Any] | None,
    product: asyncpg.Record | None,
    index: int,
) -> asyncpg.Record | None:
    ref = item.get("sku_id") or (data or {}).get("id")
    source_id = (data or {}).get("source_id")
    if ref is None and source_id is None and item.get("related_object") == "sku":
        source_id = item.get("source_id")
    if data is not None and data.get("override") is True:
        body = {"sku": data.get("sku"), "price": data.get("price"), "metadata": data.get("metadata")}
        key = ref or source_id
        existing = await products.find_sku(conn, project_id, str(key)) if key else None
        if existing is None and ref is not None:
            raise NotFound.of("sku", ref)
        owner = product
        if existing is not None and owner is None:
            owner = await products.find_product(conn, project_id, existing["product_id"])
        if owner is None:
            raise InvalidPayload(f"Property .items[{index}].sku needs its product to be created in the catalog")
        target = {"id": existing["id"]} if existing is not None else {"source_id": source_id}
        if existing is None and source_id is None:
            raise InvalidPayload(f"Property .items[{index}].sku needs id or source_id to override the catalog")
        return await products.upsert_sku(conn, project_id, owner, {**body, **target})
    if ref is not None:
        row = await products.find_sku(conn, project_id, ref)
        if row is None:
            raise NotFound.of("sku", ref)
        return row
    if source_id is not None:
        return await products.find_sku(conn, project_id, source_id)
    return None


async def _item(conn: asyncpg.Connection, project_id: str, raw: Any, index: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidPayload(f"Property .items[{index}] should be an object")
    related = raw.get("related_object")
    if related is not None and related not in ("product", "sku"):
        raise InvalidPayload(f"Property .items[{index}].related_object should be product or sku")
    for name in ("product_id", "sku_id", "source_id"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise InvalidPayload(f"Property .items[{index}].{name} should be a string")
    quantity = _int(raw.get("quantity"), f"items[{index}].quantity")
    price = _int(raw.get("price"), f"items[{index}].price")
    amount = _int(raw.get("amount"), f"items[{index}].amount")
    discount = _int(raw.get("discount_amount"), f"items[{index}].discount_amount") or 0
    metadata = listing.checked_metadata(raw.get("metadata"), f"items[{index}].metadata")
    product_data, sku_data = _nested(raw, "product", index), _nested(raw, "sku", index)

    product = await _catalog_product(conn, project_id, raw, product_data, index)
    sku = await _catalog_sku(conn, project_id, raw, sku_data, product, index)
    if product is None and sku is not None:
        product = await products.find_product(conn, project_id, sku["product_id"])

    if price is None:
        catalog_price = None
        if sku_data is not None and sku_data.get("price") is not None:
            catalog_price = _int(sku_data["price"], f"items[{index}].sku.price")
        elif sku is not None and sku["price"] is not None:
            catalog_price = sku["price"]
        elif product_data is not None and product_data.get("price") is not None:
            catalog_price = _int(product_data["price"], f"items[{index}].product.price")
        elif product is not None:
            catalog_price = product["price"]
        price = catalog_price
    if amount is None and price is not None:
        amount = price * (quantity if quantity is not None else 1)
    if amount is not None and amount > MAX_MONEY:
        raise InvalidPayload(f"Property .items[{index}].amount should be at most {MAX_MONEY}")

    item: dict[str, Any] = {"id": new_id("ordli"), "object": "order_item"}
    if sku is not None:
        item.update(sku_id=sku["id"], related_object="sku", source_id=sku["source_id"])
    elif product is not None:
        item.update(product_id=product["id"], related_object="product", source_id=product["source_id"])
    else:
        item.update(related_object=related or "product", source_id=raw.get("source_id"))
        if raw.get("product_id"):
            item["product_id"] = raw["product_id"]
    if product is not None:
        item["product_id"] = product["id"]
        item["product"] = {
            "id": product["id"],
            "source_id": product["source_id"],
            "name": product["name"],
            "price": product["price"],
            "metadata": product["metadata"],
        }
    elif product_data is not None:
        item["product"] = {
            k: product_data.get(k) for k in ("source_id", "name", "price", "metadata") if k in product_data
        }
    if sku is not None:
        item["sku"] = {
            "id": sku["id"],
            "source_id": sku["source_id"],
            "sku": sku["sku"],
            "price": sku["price"],
            "metadata": sku["metadata"],
        }
    elif sku_data is not None:
        item["sku"] = {k: sku_data.get(k) for k in ("source_id", "sku", "price", "metadata") if k in sku_data}
    item.update(
        quantity=quantity,
        price=price,
        amount=amount,
        initial_quantity=quantity,
        initial_amount=amount,
        discount_amount=discount,
        subtotal_amount=max(0, amount - discount) if amount is not None else None,
        metadata=metadata or {},
    )
    return {k: v for k, v in item.items() if v is not None}


async def _items(conn: asyncpg.Connection, project_id: str, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidPayload("Property .items should be an array")
    if len(raw) > MAX_ITEMS:
        raise InvalidPayload(f"Property .items should have at most {MAX_ITEMS} entries")
    return [await _item(conn, project_id, item, i) for i, item in enumerate(raw)]


# --- orders ---


async def _party(
    conn: asyncpg.Connection, redis: aioredis.Redis | None, project_id: str, body: dict[str, Any], name: str
) -> str | None:
    value = body.get(name)
    if value is not None:
        if not isinstance(value, dict):
            raise InvalidPayload(f"Property .{name} should be an object")
        if any(v is not None for v in value.values()):
            return str((await customers.upsert_from_request(conn, project_id, value, redis=redis))["id"])
    ref = body.get(f"{name}_id")
    if ref is not None:
        if not isinstance(ref, str):
            raise InvalidPayload(f"Property .{name}_id should be a string")
        row = await customers.find(conn, project_id, ref)
        if row is None:
            raise NotFound.of("customer", ref)
        return str(row["id"])
    return None


async def _fields(
    conn: asyncpg.Connection, redis: aioredis.Redis | None, project_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    status = body.get("status")
    if status is not None:
        if status not in STATUSES:
            raise InvalidPayload(f"Property .status should be one of {', '.join(STATUSES)}")
        fields["status"] = status
    for name in ("amount", "initial_amount", "discount_amount"):
        value = _int(body.get(name), name)
        if value is not None:
            fields[name] = value
    if body.get("items") is not None:
        items = await _items(conn, project_id, body["items"])
        fields["items"] = items
        fields["items_discount_amount"] = sum(i.get("discount_amount", 0) for i in items)
        if "amount" not in fields and any("amount" in i for i in items):
            fields["amount"] = sum(i.get("amount", 0) for i in items)
        if max(fields.get("amount") or 0, fields["items_discount_amount"]) > MAX_MONEY:
            raise InvalidPayload(f"Property .items add up to more than {MAX_MONEY}")
    metadata = listing.checked_metadata(body.get("metadata"))
    if metadata is not None:
        await metadata_schemas.check(conn, project_id, "order", metadata)
        fields["metadata"] = metadata
    if body.get("created_at") is not None:
        try:
            fields["created_at"] = datetime.fromisoformat(str(body["created_at"]).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidPayload("Property .created_at should be an ISO-8601 date-time") from None
    for name in ("customer", "referrer"):
        party = await _party(conn, redis, project_id, body, name)
        if party is not None:
            fields[f"{name}_id"] = party
    return fields


async def upsert_from_request(
    conn: asyncpg.Connection, project_id: str, body: dict[str, Any], *, redis: aioredis.Redis | None = None
) -> dict[str, Any]:
    """Create, or update the order named by ``id`` / ``source_id``, upserting its customer and referrer."""
    order_id, source_id = body.get("id"), body.get("source_id")
    for name, value in (("id", order_id), ("source_id", source_id)):
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidPayload(f"Property .{name} should be a non-empty string")
    async with conn.transaction():
        existing = None
        if order_id is not None:
            existing = await conn.fetchrow(
                "SELECT * FROM orders WHERE project_id = $1 AND id = $2 FOR UPDATE", project_id, order_id
            )
            if existing is None:
                raise NotFound.of("order", order_id)
        elif source_id is not None:
            existing = await conn.fetchrow(
                "SELECT * FROM orders WHERE project_id = $1 AND source_id = $2 FOR UPDATE", project_id, source_id
            )
        fields = await _fields(conn, redis, project_id, body)
        if existing is None:
            fields.setdefault("initial_amount", fields.get("amount"))
            values = {"project_id": project_id, "id": new_id("ord"), "source_id": source_id, **fields}
            placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
            row = await conn.fetchrow(
                f"INSERT INTO orders ({', '.join(values)}) VALUES ({placeholders}) RETURNING *", *values.values()
            )
        elif fields:
            sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=3)]
            row = await conn.fetchrow(
                f"UPDATE orders SET {', '.join([*sets, 'updated_at = now()'])} "
                "WHERE project_id = $1 AND id = $2 RETURNING *",
                project_id,
                existing["id"],
                *fields.values(),
            )
        else:
            row = existing
        await _after_write(conn, project_id, existing, row)
        await activity.record_order(conn, project_id, existing, row)  # issue 9: order.paid earning trigger
    if redis is not None and row["status"] == "PAID":
        await activity.ring(redis, [project_id])  # issue 9: wake the worker's loyalty task
    return order_view(row)


async def _after_write(
    conn: asyncpg.Connection, project_id: str, before: asyncpg.Record | None, row: asyncpg.Record
) -> None:
    """Customer activity and order summaries of everyone the order names, before and after."""
    if before is not None and before is row:
        return
    customer_id = row["customer_id"]
    if customer_id is not None:
        data = {"order": {"id": row["id"], "source_id": row["source_id"], "status": row["status"], "object": "order"}}
        kind = "customer.order.created" if before is None else "customer.order.updated"
        await customers.record_activity(conn, project_id, customer_id, kind, data)
        if row["status"] in _STATUS_ACTIVITY and (before is None or before["status"] != row["status"]):
            await customers.record_activity(conn, project_id, customer_id, _STATUS_ACTIVITY[row["status"]], data)
    touched = {customer_id, before["customer_id"] if before is not None else None} - {None}
    for cid in touched:
        await customers.refresh_order_summary(conn, project_id, str(cid))


async def create(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    return await upsert_from_request(conn, project_id, body, redis=redis)


async def _require(conn: asyncpg.Connection, project_id: str, ref: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM orders WHERE project_id = $1 AND (id = $2 OR source_id = $2) ORDER BY id = $2 DESC LIMIT 1",
        project_id,
        ref,
    )
    if row is None:
        raise NotFound.of("order", ref)
    return row


async def get(conn: asyncpg.Connection, project_id: str, ref: str) -> dict[str, Any]:
    return order_view(await _require(conn, project_id, ref))


async def update(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, ref: str, body: dict[str, Any]
) -> dict[str, Any]:
    row = await _require(conn, project_id, ref)
    return await upsert_from_request(conn, project_id, {**body, "id": row["id"], "source_id": None}, redis=redis)


async def list_page(conn: asyncpg.Connection, project_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    limit, offset = listing.page_params(query)
    order = listing.order_param(query, _ORDERS, "-created_at")
    total = await conn.fetchval("SELECT count(*) FROM orders WHERE project_id = $1", project_id)
    rows = await conn.fetch(
        f"SELECT * FROM orders WHERE project_id = $1 ORDER BY {order} LIMIT {limit} OFFSET {offset}", project_id
    )
    return {"object": "list", "data_ref": "orders", "orders": [order_view(r) for r in rows], "total": total}
