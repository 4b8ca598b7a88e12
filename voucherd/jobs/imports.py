"""Imports: vouchers (JSON or CSV, standalone or into a campaign), customers, products and SKUs (CSV).

Rows are checked in Python; a bad row is reported (``failed[{code|source_id, row, reason}]``) and the rest
go on. Good rows go to PostgreSQL in chunks: COPY into a temporary table, then one set-based
``INSERT … SELECT … ON CONFLICT`` per chunk. Voucher ids are derived from the action id and the row number,
so a retried action recognises the codes its earlier attempt already wrote instead of reporting them as
duplicates. Imported vouchers get their Redis state in the same chunk (one Lua call per 5,000 codes), so
they validate as soon as the chunk is done.

CSV files (UTF-8, header row required, ``row`` numbers exclude the header): header names are matched
without regard to case, spaces or underscores; unknown columns become metadata (their header as the key).
Money columns (discount ``Value`` of AMOUNT/FIXED, gift ``Value``/``Gift Amount``/``Redeemed Amount``,
product and SKU ``price``) are in major units (``10`` or ``10.50``) and stored in minor units (times 100);
points, quantities and PERCENT/UNIT values are taken as they are.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from voucherd.catalog import products
from voucherd.definitions import metadata_schemas, voucher_state, vouchers
from voucherd.platform import keys
from voucherd.platform.errors import InvalidPayload, VoucherdError
from voucherd.platform.ids import new_id
from voucherd.platform.scripts import SOURCES

Progress = Callable[[int], Awaitable[None]]
CHUNK = 20_000
REDIS_BATCH = 5_000
MAX_FAILED_REPORTED = 1_000

# CSV kinds -> the columns each must have (normalised names).
CSV_REQUIRED: dict[str, tuple[str, ...]] = {
    "vouchers": ("code",),
    "campaign_vouchers": ("code",),
    "customers": (),
    "products": ("name",),
    "skus": ("product_id", "source_id"),
}


def norm(header: str) -> str:
    return "_".join(header.strip().lower().replace("_", " ").split())


# --- CSV ------------------------------------------------------------------------------------------------------


def read_csv(data: bytes, kind: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of an uploaded CSV; ``InvalidPayload`` (400) saying what is wrong with it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(f"The CSV file is not UTF-8 text (byte {exc.start}).") from None
    if "\x00" in text:
        raise InvalidPayload("The CSV file contains NUL bytes; upload a text file.")
    try:
        # Blank lines come back as [] and whitespace-only rows are rare: test the joined row once, not each cell.
        table = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if "".join(row).strip()]
    except csv.Error as exc:
        raise InvalidPayload(f"The CSV file is malformed: {exc}.") from None
    if not table:
        raise InvalidPayload("The CSV file is empty; it needs a header row.")
    header = [cell.strip() for cell in table[0]]
    names = [norm(h) for h in header]
    if "" in names:
        raise InvalidPayload(f"The CSV header has an empty column name (column {names.index('') + 1}).")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InvalidPayload(f"The CSV header repeats the column(s): {', '.join(duplicated)}.")
    missing = [c for c in CSV_REQUIRED[kind] if c not in names]
    if missing:
        raise InvalidPayload(f"The CSV header lacks the required column(s): {', '.join(missing)}.")
    rows = table[1:]
    width = len(header)
    if any(len(row) > width for row in rows):
        number, row = next((n, r) for n, r in enumerate(rows, start=1) if len(r) > width)
        raise InvalidPayload(f"Row {number} of the CSV file has {len(row)} cells; the header has {width}.")
    return header, rows


def _records(header: list[str], rows: list[list[str]]) -> Iterable[tuple[int, dict[str, str], dict[str, str]]]:
    """(row number, known cells by normalised name, all non-empty cells by original header)."""
    names = [norm(h) for h in header]
    for number, row in enumerate(rows, start=1):
        cells = {names[i]: v.strip() for i, v in enumerate(row) if v.strip()}
        raw = {header[i]: v.strip() for i, v in enumerate(row) if v.strip()}
        yield number, cells, raw


def _money(text: str, name: str) -> int:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise InvalidPayload(f"{name} should be a number, got {text!r}") from None
    cents = value * 100
    if value < 0 or cents != cents.to_integral_value():
        raise InvalidPayload(f"{name} should be a non-negative amount with at most 2 decimals, got {text!r}")
    return int(cents)


def _count(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidPayload(f"{name} should be a whole number, got {text!r}") from None
    if value < 0:
        raise InvalidPayload(f"{name} should not be negative, got {text!r}")
    return value


def _bool(text: str, name: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidPayload(f"{name} should be TRUE or FALSE, got {text!r}")


# --- vouchers -------------------------------------------------------------------------------------------------


def _voucher_id(action_id: str, row: int) -> str:
    return "v_" + hashlib.blake2b(f"{action_id}:{row}".encode(), digest_size=10).hexdigest()


def _date(value: Any, name: str) -> datetime | None:
    if isinstance(value, str) and len(value) > 10 and value[10] == " ":
        value = value[:10] + "T" + value[11:]
    return vouchers.parse_datetime(value, name)


def _voucher_columns(item: Any, template: dict[str, Any] | None, campaign_id: str | None) -> dict[str, Any]:
    """The ``vouchers`` row of one import item (no I/O; the category stays a name until resolved)."""
    if not isinstance(item, dict):
        raise InvalidPayload("Each voucher should be an object")
    code = vouchers.check_code(item.get("code"))
    row: dict[str, Any] = {"code": code, "campaign_id": campaign_id, "active": True, "metadata": {}}
    if template is not None:
        kind = template["type"]
        if item.get("type") not in (None, kind):
            raise InvalidPayload(f"Vouchers of this campaign are of type {kind}")
        row["is_referral_code"] = bool(template.get("is_referral_code", False))
        quantity = (template.get("redemption") or {}).get("quantity")
    else:
        kind = item.get("type") or "DISCOUNT_VOUCHER"
        if kind not in vouchers.VOUCHER_TYPES:
            raise InvalidPayload(f"Property .type should be one of {', '.join(vouchers.VOUCHER_TYPES)}")
        if kind == "DISCOUNT_VOUCHER" and item.get("discount") is None:
            raise InvalidPayload("A DISCOUNT_VOUCHER needs a discount")
        if kind == "GIFT_VOUCHER" and item.get("gift") is None:
            raise InvalidPayload("A GIFT_VOUCHER needs a gift")
        row["is_referral_code"] = bool(item.get("is_referral_code", False))
        quantity = None
    row["type"] = kind
    if kind == "DISCOUNT_VOUCHER" and item.get("discount") is not None:
        row["discount"] = vouchers.check_discount(dict(item["discount"]))
    if kind == "GIFT_VOUCHER":
        gift = (template or {}).get("gift") or {}
        if item.get("gift") is not None:
            gift = vouchers.check_gift(item["gift"])
            if "effect" in gift or template is None:
                row["gift"] = {"effect": gift.get("effect", "APPLY_TO_ORDER")}
        amount = int(gift.get("amount", 0))
        redeemed = int(item.get("redeemed_amount") or 0)
        if redeemed > amount:
            raise InvalidPayload("Redeemed Amount is larger than the gift amount")
        row["gift_amount"], row["gift_balance"] = amount, amount - redeemed
    if kind == "LOYALTY_CARD":
        card = (template or {}).get("loyalty_card") or {}
        if item.get("loyalty_card") is not None:
            card = vouchers.check_loyalty_card(item["loyalty_card"])
            if "expiration_rules" in card:
                row["loyalty_card"] = {"expiration_rules": card["expiration_rules"]}
        row["loyalty_points"] = row["loyalty_balance"] = int(card.get("points", 0))
    if item.get("redemption") is not None:
        quantity = vouchers.check_redemption_quantity(item["redemption"])
    row["redemption_quantity"] = quantity
    row["redeemed_quantity"] = vouchers.check_int(item.get("redeemed_quantity") or 0, "redeemed_quantity")
    row["start_date"] = _date(item.get("start_date"), "start_date")
    row["expiration_date"] = _date(item.get("expiration_date"), "expiration_date")
    row.update({k: v for k, v in vouchers.check_validity(item).items() if v is not None})
    if item.get("active") is not None:
        row["active"] = vouchers.check_bool(item["active"], "active")
    if item.get("additional_info") is not None:
        row["additional_info"] = vouchers.check_str(item["additional_info"], "additional_info")
    if item.get("metadata") is not None:
        row["metadata"] = vouchers.check_object(item["metadata"], "metadata")
    category = item.get("category")
    if category is not None and (not isinstance(category, str) or not category.strip()):
        raise InvalidPayload("Property .category should be a non-empty string")
    row["_category"] = category
    row["category_id"] = item.get("category_id")
    return row


_TEMP_VOUCHERS = """
CREATE TEMP TABLE IF NOT EXISTS voucherd_import_vouchers (
    id text, code text, campaign_id text, category_id text, type text, discount text, gift text, loyalty_card text,
    start_date timestamptz, expiration_date timestamptz, validity_timeframe text, validity_day_of_week text,
    validity_hours text, active boolean, additional_info text, metadata text, is_referral_code boolean,
    redemption_quantity integer, redeemed_quantity integer, gift_amount bigint, gift_balance bigint,
    loyalty_points bigint, loyalty_balance bigint
) ON COMMIT DELETE ROWS
"""
_COPY_COLUMNS = (
    "id", "code", "campaign_id", "category_id", "type", "discount", "gift", "loyalty_card", "start_date",
    "expiration_date", "validity_timeframe", "validity_day_of_week", "validity_hours", "active", "additional_info",
    "metadata", "is_referral_code", "redemption_quantity", "redeemed_quantity", "gift_amount", "gift_balance",
    "loyalty_points", "loyalty_balance",
)  # fmt: skip
_JSON_COLUMNS = {"discount", "gift", "loyalty_card", "validity_timeframe", "validity_day_of_week", "validity_hours"}
_INSERT_VOUCHERS = f"""
INSERT INTO vouchers (project_id, {", ".join(_COPY_COLUMNS)})
SELECT $1, {", ".join(f"{c}::jsonb" if c in _JSON_COLUMNS or c == "metadata" else c for c in _COPY_COLUMNS)}
FROM voucherd_import_vouchers
ON CONFLICT DO NOTHING
RETURNING id
"""


async def _categories(conn: asyncpg.Connection, project_id: str, rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Category name -> id for every name the rows use, creating the new ones (one statement)."""
    names = sorted({r["_category"] for r in rows if r.get("_category")})
    ids = (
        {r["id"] for r in await conn.fetch("SELECT id FROM categories WHERE project_id = $1", project_id)}
        if any(r.get("category_id") for r in rows)
        else set()
    )
    for r in rows:
        if r.get("category_id") and r["category_id"] not in ids:
            raise InvalidPayload(f"Category {r['category_id']} does not exist")
    if not names:
        return {}
    found = await conn.fetch(
        """INSERT INTO categories (id, project_id, name)
           SELECT i, $1, n FROM unnest($2::text[], $3::text[]) AS c(i, n)
           ON CONFLICT (project_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id, name""",
        project_id,
        [new_id("cat") for _ in names],
        names,
    )
    return {r["name"]: r["id"] for r in found}


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _state_json(row: dict[str, Any]) -> bytes:
    fields = voucher_state.state_fields(
        {**dict.fromkeys(vouchers.COLUMN_TYPES), "holder_id": None, "redeemed_quantity": 0, **row}
    )
    return orjson.dumps({k: v.decode() if isinstance(v, bytes) else v for k, v in fields.items() if v != ""})


async def import_vouchers(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    project_id: str,
    action_id: str,
    items: Sequence[tuple[int, Any]],
    progress: Progress,
    *,
    campaign_id: str | None = None,
) -> dict[str, Any]:
    """Import ``(row, item | error message)`` pairs; returns the async action's result."""
    started = time.monotonic()
    template: dict[str, Any] | None = None
    if campaign_id is not None:
        async with pool.acquire() as conn:
            campaign = await conn.fetchrow(
                "SELECT id, voucher FROM campaigns WHERE project_id = $1 AND id = $2 AND deleted_at IS NULL",
                project_id,
                campaign_id,
            )
        if campaign is None:
            return _result("vouchers", 0, [{"reason": f"Campaign {campaign_id} no longer exists"}], started)
        template = campaign["voucher"] or {}
        if not template.get("type"):
            return _result("vouchers", 0, [{"reason": "The campaign has no voucher template"}], started)
    schema = await _strict_schema(pool, project_id, "voucher")
    failed: list[dict[str, Any]] = []
    failed_count = done = 0
    seen: set[str] = set()
    put_rows = redis.register_script(SOURCES["voucher_put_rows"])
    async with pool.acquire() as conn:
        await conn.execute(_TEMP_VOUCHERS)
        for start in range(0, len(items), CHUNK):
            good: list[dict[str, Any]] = []
            for number, item in items[start : start + CHUNK]:
                code = item.get("code") if isinstance(item, dict) else None
                try:
                    if isinstance(item, dict) and "_error" in item:
                        raise InvalidPayload(item["_error"])
                    row = _voucher_columns(item, template, campaign_id)
                    if row["code"] in seen:
                        raise InvalidPayload(f"Code {row['code']} appears more than once in the import")
                    if schema is not None and (problems := metadata_schemas.violations(schema, row["metadata"])):
                        raise InvalidPayload("; ".join(problems))
                except VoucherdError as exc:
                    failed_count += 1
                    if len(failed) < MAX_FAILED_REPORTED:
                        failed.append({"code": code, "row": number, "reason": str(exc)})
                    continue
                seen.add(row["code"])
                row["id"] = _voucher_id(action_id, number)
                row["_row"] = number
                good.append(row)
            if good:
                inserted, again = await _write_chunk(conn, project_id, campaign_id, good)
                await _put_state(redis, put_rows, project_id, [r for r in good if r["id"] in inserted], "replace")
                await _put_state(redis, put_rows, project_id, [r for r in good if r["id"] in again], "if_absent")
                for r in good:
                    if r["id"] not in inserted and r["id"] not in again:
                        failed_count += 1
                        if len(failed) < MAX_FAILED_REPORTED:
                            reason = f"A voucher with code {r['code']} already exists"
                            failed.append({"code": r["code"], "row": r["_row"], "reason": reason})
                done += len(inserted) + len(again)
            await progress(min(99, (start + CHUNK) * 100 // max(len(items), 1)))
    failed.sort(key=lambda f: f.get("row") or 0)
    return _result("vouchers", done, failed, started, failed_count)


async def _write_chunk(
    conn: asyncpg.Connection, project_id: str, campaign_id: str | None, good: list[dict[str, Any]]
) -> tuple[set[str], set[str]]:
    """Insert one chunk; returns (ids inserted now, ids an earlier attempt of this import inserted)."""
    async with conn.transaction():
        names = await _categories(conn, project_id, good)
        for r in good:
            if r.get("_category"):
                r["category_id"] = names[r["_category"]]
        await conn.copy_records_to_table(
            "voucherd_import_vouchers",
            records=[
                tuple(_json(r.get(c)) if c in _JSON_COLUMNS or c == "metadata" else r.get(c) for c in _COPY_COLUMNS)
                for r in good
            ],
            columns=list(_COPY_COLUMNS),
        )
        inserted = {r["id"] for r in await conn.fetch(_INSERT_VOUCHERS, project_id)}
        rest = [r["id"] for r in good if r["id"] not in inserted]
        again: set[str] = set()
        if rest:
            again = {r["id"] for r in await conn.fetch("SELECT id FROM vouchers WHERE id = ANY($1::text[])", rest)}
        if campaign_id is not None and inserted:
            await conn.execute(
                "UPDATE campaigns SET vouchers_count = vouchers_count + $2, updated_at = now() WHERE id = $1",
                campaign_id,
                len(inserted),
            )
    return inserted, again


async def _put_state(
    redis: aioredis.Redis, script: Any, project_id: str, rows: list[dict[str, Any]], mode: str
) -> None:
    await put_states(redis, script, project_id, [(r["code"], _state_json(r)) for r in rows], mode)


async def put_states(
    redis: aioredis.Redis, script: Any, project_id: str, states: Sequence[tuple[str, bytes | str]], mode: str
) -> None:
    """Write ``(code, JSON object of its state fields)`` pairs with ``voucher_put_rows.lua`` (pipelined batches)."""
    if not states:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for start in range(0, len(states), REDIS_BATCH):
            batch = states[start : start + REDIS_BATCH]
            await script(
                keys=[keys.voucher_state(project_id, code) for code, _state in batch],
                args=[mode, *(state for _code, state in batch)],
                client=pipe,
            )
        await pipe.execute()


def _result(
    noun: str, done: int, failed: list[dict[str, Any]], started: float, failed_count: int | None = None
) -> dict[str, Any]:
    count = len(failed) if failed_count is None else failed_count
    message = f"{done} {noun} imported, {count} failed in {time.monotonic() - started:.2f} s"
    return {"message": message, "done_count": done, "failed_count": count, "failed": failed}


async def _strict_schema(pool: asyncpg.Pool, project_id: str, related_object: str) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT related_object, allow_defined_only, properties FROM metadata_schemas "
            "WHERE project_id = $1 AND related_object = $2 AND allow_defined_only",
            project_id,
            related_object,
        )
    return dict(row) if row is not None else None


# --- products and SKUs ----------------------------------------------------------------------------------------

_PRODUCT_COLUMNS = {"id", "name", "source_id", "price", "attributes", "image_url"}
_SKU_COLUMNS = {"id", "product_id", "sku", "source_id", "price", "attributes", "image_url", "currency"}


def _sku_attributes(text: str) -> dict[str, Any]:
    for candidate in (text, text.replace("'", '"')):
        try:
            value = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise InvalidPayload(f"attributes should be a JSON object, got {text!r}")


async def import_products_csv(pool: asyncpg.Pool, project_id: str, data: bytes, progress: Progress) -> dict[str, Any]:
    """``PRODUCTS.IMPORT_CSV``: upsert on source_id; ``attributes`` is a comma-separated list."""
    started = time.monotonic()
    header, rows = read_csv(data, "products")
    failed: list[dict[str, Any]] = []
    done = 0
    records = list(_records(header, rows))
    async with pool.acquire() as conn:
        for index, (number, cells, raw) in enumerate(records):
            body: dict[str, Any] = {"name": cells.get("name"), "source_id": cells.get("source_id")}
            try:
                if "price" in cells:
                    body["price"] = _money(cells["price"], "price")
                if "attributes" in cells:
                    body["attributes"] = [a.strip() for a in cells["attributes"].split(",") if a.strip()]
                if "image_url" in cells:
                    body["image_url"] = cells["image_url"]
                metadata = {h: v for h, v in raw.items() if norm(h) not in _PRODUCT_COLUMNS}
                if metadata:
                    body["metadata"] = metadata
                if not body["name"]:
                    raise InvalidPayload("name is required")
                await products.upsert_product(conn, project_id, body)
                done += 1
            except VoucherdError as exc:
                failed.append({"source_id": body.get("source_id"), "row": number, "reason": str(exc)})
            await progress(min(99, (index + 1) * 100 // len(records)))
    return _result("products", done, failed, started)


async def import_skus_csv(pool: asyncpg.Pool, project_id: str, data: bytes, progress: Progress) -> dict[str, Any]:
    """``SKUS.IMPORT_CSV``: ``product_id`` names the product by source id (or id); upsert on the SKU source_id."""
    started = time.monotonic()
    header, rows = read_csv(data, "skus")
    failed: list[dict[str, Any]] = []
    done = 0
    records = list(_records(header, rows))
    async with pool.acquire() as conn:
        for index, (number, cells, raw) in enumerate(records):
            body: dict[str, Any] = {"source_id": cells.get("source_id"), "sku": cells.get("sku")}
            try:
                if not body["source_id"] or not cells.get("product_id"):
                    raise InvalidPayload("product_id and source_id are required")
                product = await products.find_product(conn, project_id, cells["product_id"])
                if product is None:
                    raise InvalidPayload(f"Product {cells['product_id']} does not exist")
                if "price" in cells:
                    body["price"] = _money(cells["price"], "price")
                if "attributes" in cells:
                    body["attributes"] = _sku_attributes(cells["attributes"])
                for name in ("image_url", "currency"):
                    if name in cells:
                        body[name] = cells[name]
                metadata = {h: v for h, v in raw.items() if norm(h) not in _SKU_COLUMNS}
                if metadata:
                    body["metadata"] = metadata
                await products.upsert_sku(conn, project_id, product, body)
                done += 1
            except VoucherdError as exc:
                failed.append({"source_id": body.get("source_id"), "row": number, "reason": str(exc)})
            await progress(min(99, (index + 1) * 100 // len(records)))
    return _result("SKUs", done, failed, started)
