"""The CSV imports of vouchers and customers, set-based: 100,000 rows in a few seconds.

The file is parsed once (``imports.read_csv``) and COPY'd as text into a staging table, one column per CSV
column plus the row number. Every check and conversion is then SQL over the whole file: one statement gives each
row its error (or none), including duplicates within the file (a window function); dates are parsed in Python
once per distinct value. Good rows go to their table in chunks (so progress moves), each chunk one
``INSERT … SELECT … ON CONFLICT``, ``PARALLEL`` chunks at a time on their own connections (index upkeep and
foreign-key checks are most of the cost, and one backend uses one core); for vouchers the same statement returns
each code's Redis state as a JSON object, written with ``voucher_put_rows.lua`` as soon as its chunk commits.
The staging tables are UNLOGGED and named after the action (not TEMP, which only their own session could read);
they are dropped at the end, and a retry of the action drops what a crashed attempt left. Column meanings are those of
``voucherd.jobs.imports`` (money in major units, unknown columns become metadata).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from voucherd.catalog import segments
from voucherd.definitions.vouchers import MAX_CODE_LENGTH, parse_datetime
from voucherd.jobs.imports import MAX_FAILED_REPORTED, norm, put_states, read_csv
from voucherd.platform import db, keys
from voucherd.platform.errors import VoucherdError
from voucherd.platform.scripts import SOURCES

Progress = Callable[[int], Awaitable[None]]
CHUNK = 12_500
PARALLEL = 2
_MONEY = r"^\d{1,12}([.,]\d{1,2})?$"
_WHOLE = r"^\d{1,9}$"


class _Tables:
    """The staging tables of one import, named after its action so that any connection can read them."""

    def __init__(self, action_id: str) -> None:
        tag = hashlib.blake2b(action_id.encode(), digest_size=8).hexdigest()
        self.stage = f"voucherd_import_{tag}_stage"
        self.dates = f"voucherd_import_{tag}_dates"
        self.checked = f"voucherd_import_{tag}_checked"
        self.ids = f"voucherd_import_{tag}_ids"

    async def drop(self, conn: asyncpg.Connection) -> None:
        await conn.execute(f"DROP TABLE IF EXISTS {self.stage}, {self.dates}, {self.checked}, {self.ids}")


class _Staged:
    """The staging table of one CSV file and how to name its columns in SQL."""

    def __init__(self, header: list[str], tables: _Tables) -> None:
        self.header = header
        self.t = tables
        self.columns = {norm(h): f"c{i}" for i, h in enumerate(header)}

    def col(self, name: str) -> str:
        column = self.columns.get(name)
        return f"NULLIF(btrim(s.{column}), '')" if column else "NULL::text"

    def has(self, name: str) -> bool:
        return name in self.columns

    def metadata(self, known: set[str]) -> str:
        """A jsonb object of the unknown columns (original header as key), empty cells left out."""
        pairs = [
            f"'{h.replace(chr(39), chr(39) * 2)}', NULLIF(btrim(s.c{i}), '')"
            for i, h in enumerate(self.header)
            if norm(h) not in known
        ]
        if not pairs:
            return "'{}'::jsonb"
        parts = [f"jsonb_build_object({', '.join(pairs[i : i + 40])})" for i in range(0, len(pairs), 40)]
        return f"jsonb_strip_nulls({' || '.join(parts)})"


async def _stage(conn: asyncpg.Connection, tables: _Tables, header: list[str], rows: list[list[str]]) -> _Staged:
    staged = _Staged(header, tables)
    width = len(header)
    await tables.drop(conn)
    columns = ", ".join(f"c{i} text" for i in range(width))
    await conn.execute(f"CREATE UNLOGGED TABLE {tables.stage} (row_no integer NOT NULL, {columns})")
    records = [(number, *row, *[""] * (width - len(row))) for number, row in enumerate(rows, start=1)]
    await conn.copy_records_to_table(
        tables.stage, records=records, columns=["row_no", *(f"c{i}" for i in range(width))]
    )
    await conn.execute(f"ANALYZE {tables.stage}")
    return staged


async def _index_checked(conn: asyncpg.Connection, tables: _Tables) -> None:
    # Without statistics the planner takes a fresh table for a few hundred rows and joins it to a project's
    # customers or vouchers by nested loop: 100,000 rows against 10,000 customers ran for a minute.
    await conn.execute(f"CREATE INDEX ON {tables.checked} (row_no)")
    await conn.execute(f"ANALYZE {tables.checked}")


async def _in_chunks(
    pool: asyncpg.Pool, rows: int, write: Callable[[asyncpg.Connection, int, int], Awaitable[None]], progress: Progress
) -> None:
    """``write(conn, low, high)`` for each CHUNK of row numbers, PARALLEL at a time; progress 10 → 99."""
    ranges = [(low, min(low + CHUNK - 1, rows)) for low in range(1, rows + 1, CHUNK)]
    gate = asyncio.Semaphore(PARALLEL)
    finished = 0

    async def one(low: int, high: int) -> None:
        nonlocal finished
        async with gate, pool.acquire() as conn:
            await write(conn, low, high)
        finished += 1
        await progress(10 + finished * 89 // len(ranges))

    try:
        async with asyncio.TaskGroup() as group:
            for low, high in ranges:
                group.create_task(one(low, high))
    except BaseExceptionGroup as failed:
        # The first failure, as itself: callers tell a lost connection (retried) from a bad file (reported).
        raise failed.exceptions[0] from None


async def _dates(conn: asyncpg.Connection, staged: _Staged, names: list[str], *, date_only: bool = False) -> None:
    """``<dates>(v, ts, d)``: each distinct value of these columns, parsed once (NULL when invalid)."""
    await conn.execute(f"CREATE UNLOGGED TABLE {staged.t.dates} (v text PRIMARY KEY, ts timestamptz, d date)")
    present = [staged.col(n) for n in names if staged.has(n)]
    if not present:
        return
    union = " UNION ".join(f"SELECT {c} AS v FROM {staged.t.stage} s" for c in present)
    values = [r["v"] for r in await conn.fetch(f"SELECT DISTINCT v FROM ({union}) u WHERE v IS NOT NULL")]
    parsed: list[tuple[str, datetime | None, date | None]] = []
    for value in values:
        ts: datetime | None = None
        day: date | None = None
        try:
            if date_only:
                day = date.fromisoformat(value[:10]) if len(value) == 10 or value[10] in "T " else None
            else:
                ts = parse_datetime(
                    value[:10] + "T" + value[11:] if len(value) > 10 and value[10] == " " else value, "d"
                )
        except (VoucherdError, ValueError, IndexError):
            pass
        parsed.append((value, ts, day))
    await conn.copy_records_to_table(staged.t.dates, records=parsed)


async def _failed(conn: asyncpg.Connection, tables: _Tables, ref: str) -> tuple[int, list[dict[str, Any]]]:
    count = await conn.fetchval(f"SELECT count(*) FROM {tables.checked} WHERE error IS NOT NULL")
    rows = await conn.fetch(
        f"SELECT row_no, {ref} AS ref, error FROM {tables.checked} WHERE error IS NOT NULL ORDER BY row_no LIMIT $1",
        MAX_FAILED_REPORTED,
    )
    return int(count), [{"ref": r["ref"], "row": r["row_no"], "reason": r["error"]} for r in rows]


def _money(expr: str) -> str:
    return f"(replace({expr}, ',', '.')::numeric * 100)::bigint"


# --- vouchers ---------------------------------------------------------------------------------------------------

_KNOWN_VOUCHER_COLUMNS = {
    "code", "voucher_type", "value", "discount_type", "discount_effect", "category", "start_date", "expiration_date",
    "redemption_limit", "redeemed_quantity", "redeemed_amount", "active", "additional_info", "gift_amount",
    "loyalty_points", "validation_rule_id",
}  # fmt: skip
_DISCOUNT_EFFECTS = (
    "APPLY_TO_ORDER", "APPLY_TO_ITEMS", "APPLY_TO_ITEMS_PROPORTIONALLY", "APPLY_TO_ITEMS_PROPORTIONALLY_BY_QUANTITY",
    "APPLY_TO_ITEMS_BY_QUANTITY",
)  # fmt: skip

# The live-state fields of voucherd.definitions.voucher_state, as one JSON object of strings, empty ones left out.
_STATE = """jsonb_strip_nulls(jsonb_build_object(
    'id', v.id, 'campaign_id', v.campaign_id, 'type', v.type, 'active', CASE WHEN v.active THEN '1' ELSE '0' END,
    'start', (floor(extract(epoch FROM v.start_date) * 1000))::bigint::text,
    'exp', (floor(extract(epoch FROM v.expiration_date) * 1000))::bigint::text,
    'quantity', v.redemption_quantity::text, 'redeemed', v.redeemed_quantity::text,
    'def', (jsonb_build_object('metadata', v.metadata, 'category_id', v.category_id,
                               'is_referral_code', v.is_referral_code)
            || jsonb_strip_nulls(jsonb_build_object('discount', v.discount, 'gift', v.gift,
                                                    'loyalty_card', v.loyalty_card)))::text,
    'amount', CASE WHEN v.type = 'GIFT_VOUCHER' THEN COALESCE(v.gift_amount, 0)::text END,
    'balance', CASE WHEN v.type = 'GIFT_VOUCHER' THEN COALESCE(v.gift_balance, 0)::text END,
    'points', CASE WHEN v.type = 'LOYALTY_CARD' THEN COALESCE(v.loyalty_balance, 0)::text END,
    'points_total', CASE WHEN v.type = 'LOYALTY_CARD' THEN COALESCE(v.loyalty_points, 0)::text END
))::text"""


def _voucher_check_sql(staged: _Staged, template: dict[str, Any] | None) -> str:
    c = staged.col
    standalone = template is None
    if template is None:
        kind = f"upper(COALESCE({c('voucher_type')}, 'DISCOUNT_VOUCHER'))"
    else:
        kind = "'" + str(template["type"]).replace("'", "") + "'"
    dtype = f"upper({c('discount_type')})"
    checks = [
        (f"{c('code')} IS NULL", "'Code is required'"),
        (f"{c('code')} ~ '\\s' OR length({c('code')}) > {MAX_CODE_LENGTH}",
         f"'A code is a non-empty string without spaces, at most {MAX_CODE_LENGTH} characters'"),
    ]  # fmt: skip
    if standalone:
        checks += [
            (f"{kind} NOT IN ('DISCOUNT_VOUCHER', 'GIFT_VOUCHER', 'LOYALTY_CARD')",
             f"'Voucher Type should be DISCOUNT_VOUCHER, GIFT_VOUCHER or LOYALTY_CARD, got ' || {kind}"),
            (f"{kind} = 'DISCOUNT_VOUCHER' AND ({c('value')} IS NULL OR {c('discount_type')} IS NULL)",
             "'A DISCOUNT_VOUCHER row needs Value and Discount Type'"),
            (f"{kind} = 'DISCOUNT_VOUCHER' AND {dtype} NOT IN ('AMOUNT', 'PERCENT', 'FIXED', 'UNIT')",
             f"'Discount Type should be AMOUNT, PERCENT, FIXED or UNIT, got ' || {c('discount_type')}"),
            (f"{kind} = 'DISCOUNT_VOUCHER' AND {dtype} = 'UNIT' AND {c('value')} !~ '{_WHOLE}'",
             "'Value should be a whole number of units'"),
            (f"{c('value')} !~ '{_MONEY}'", "'Value should be a non-negative number with at most 2 decimals'"),
            (f"{kind} = 'DISCOUNT_VOUCHER' AND {dtype} = 'PERCENT' AND replace({c('value')}, ',', '.')::numeric > 100",
             "'Value of a PERCENT discount should be at most 100'"),
            (f"{kind} = 'LOYALTY_CARD' AND {c('value')} !~ '{_WHOLE}'", "'Value should be a whole number of points'"),
            (f"upper({c('discount_effect')}) NOT IN ({', '.join(repr(e) for e in _DISCOUNT_EFFECTS)})",
             f"'Discount Effect should be one of {', '.join(_DISCOUNT_EFFECTS)}'"),
        ]  # fmt: skip
    checks += [
        (f"{c('redemption_limit')} !~ '{_WHOLE}'", "'Redemption Limit should be a whole number'"),
        (f"{c('redeemed_quantity')} !~ '{_WHOLE}'", "'Redeemed Quantity should be a whole number'"),
        (f"{c('redeemed_amount')} !~ '{_MONEY}'", "'Redeemed Amount should be a non-negative amount'"),
        (f"{c('gift_amount')} !~ '{_MONEY}'", "'Gift Amount should be a non-negative amount'"),
        (f"{c('loyalty_points')} !~ '{_WHOLE}'", "'Loyalty Points should be a whole number'"),
        (f"lower({c('active')}) NOT IN ('true', 'false', '1', '0', 'yes', 'no')", "'Active should be TRUE or FALSE'"),
        (f"{c('start_date')} IS NOT NULL AND sd.ts IS NULL",
         f"'start_date should be an ISO 8601 date-time, got ' || {c('start_date')}"),
        (f"{c('expiration_date')} IS NOT NULL AND ed.ts IS NULL",
         f"'expiration_date should be an ISO 8601 date-time, got ' || {c('expiration_date')}"),
        (f"row_number() OVER (PARTITION BY {c('code')} ORDER BY s.row_no) > 1",
         f"'Code ' || {c('code')} || ' appears more than once in the import'"),
    ]  # fmt: skip
    error = "CASE " + " ".join(f"WHEN {cond} THEN {msg}" for cond, msg in checks) + " END"
    t = staged.t
    return f"""CREATE UNLOGGED TABLE {t.checked} AS
        SELECT s.row_no, {c("code")} AS code, {kind} AS kind, {dtype} AS dtype, {c("value")} AS value,
               upper({c("discount_effect")}) AS effect, {c("category")} AS category, sd.ts AS start_date,
               ed.ts AS expiration_date, {c("redemption_limit")} AS redemption_limit,
               {c("redeemed_quantity")} AS redeemed_quantity, {c("redeemed_amount")} AS redeemed_amount,
               {c("gift_amount")} AS gift_amount, {c("loyalty_points")} AS loyalty_points,
               lower({c("active")}) AS active, {c("additional_info")} AS additional_info,
               {staged.metadata(_KNOWN_VOUCHER_COLUMNS)} AS metadata, {error} AS error
        FROM {t.stage} s
        LEFT JOIN {t.dates} sd ON sd.v = {c("start_date")}
        LEFT JOIN {t.dates} ed ON ed.v = {c("expiration_date")}"""


def _voucher_insert_sql(tables: _Tables, template: dict[str, Any] | None) -> str:
    """$1 project, $2 action id, $3 campaign id, $4..$5 row range."""
    if template is None:
        discount = f"""CASE WHEN c.kind = 'DISCOUNT_VOUCHER' THEN jsonb_strip_nulls(jsonb_build_object('type', c.dtype,
            'amount_off', CASE WHEN c.dtype = 'AMOUNT' THEN {_money("c.value")} END,
            'percent_off', CASE WHEN c.dtype = 'PERCENT' THEN replace(c.value, ',', '.')::numeric END,
            'fixed_amount', CASE WHEN c.dtype = 'FIXED' THEN {_money("c.value")} END,
            'unit_off', CASE WHEN c.dtype = 'UNIT' THEN c.value::integer END, 'effect', c.effect)) END"""
        gift = "CASE WHEN c.kind = 'GIFT_VOUCHER' THEN '{\"effect\": \"APPLY_TO_ORDER\"}'::jsonb END"
        gift_amount = _money("COALESCE(c.value, c.gift_amount, '0')")
        points = "COALESCE(c.value, c.loyalty_points, '0')::bigint"
        quantity = "c.redemption_limit::integer"
        referral = "false"
    else:
        discount = "NULL::jsonb"
        gift = "NULL::jsonb"
        default_amount = int((template.get("gift") or {}).get("amount", 0))
        default_points = int((template.get("loyalty_card") or {}).get("points", 0))
        gift_amount = f"COALESCE({_money('c.gift_amount')}, {default_amount})"
        points = f"COALESCE(c.loyalty_points::bigint, {default_points})"
        limit = (template.get("redemption") or {}).get("quantity")
        quantity = f"COALESCE(c.redemption_limit::integer, {int(limit) if limit else 'NULL'})"
        referral = "true" if template.get("is_referral_code") else "false"
    return f"""
        INSERT INTO vouchers AS v (id, project_id, code, campaign_id, category_id, type, discount, gift, start_date,
                                   expiration_date, active, additional_info, metadata, is_referral_code,
                                   redemption_quantity, redeemed_quantity, gift_amount, gift_balance, loyalty_points,
                                   loyalty_balance)
        SELECT 'v_' || substr(md5($2), 1, 10) || lpad(to_hex(c.row_no), 10, '0'), $1, c.code, $3, cat.id, c.kind,
               {discount}, {gift},
               c.start_date, c.expiration_date, COALESCE(c.active IN ('true', '1', 'yes'), true), c.additional_info,
               c.metadata, {referral}, NULLIF({quantity}, 0), COALESCE(c.redeemed_quantity::integer, 0),
               CASE WHEN c.kind = 'GIFT_VOUCHER' THEN {gift_amount} END,
               CASE WHEN c.kind = 'GIFT_VOUCHER' THEN {gift_amount} - COALESCE({_money("c.redeemed_amount")}, 0) END,
               CASE WHEN c.kind = 'LOYALTY_CARD' THEN {points} END,
               CASE WHEN c.kind = 'LOYALTY_CARD' THEN {points} END
        FROM {tables.checked} c
        LEFT JOIN categories cat ON cat.project_id = $1 AND cat.name = c.category
        WHERE c.error IS NULL AND c.row_no BETWEEN $4 AND $5
        ON CONFLICT DO NOTHING
        RETURNING v.code, {_STATE} AS state"""


async def import_vouchers_csv(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    project_id: str,
    action_id: str,
    data: bytes,
    progress: Progress,
    *,
    campaign_id: str | None = None,
) -> dict[str, Any]:
    """``VOUCHERS.IMPORT_CSV`` (standalone codes) or ``CAMPAIGN.VOUCHERS_IMPORT_CSV`` (``campaign_id``)."""
    started = time.monotonic()
    header, rows = read_csv(data, "campaign_vouchers" if campaign_id else "vouchers")
    put_rows = redis.register_script(SOURCES["voucher_put_rows"])
    template: dict[str, Any] | None = None
    tables = _Tables(action_id)
    async with pool.acquire() as conn:
        if campaign_id is not None:
            template = await conn.fetchval(
                "SELECT voucher FROM campaigns WHERE project_id = $1 AND id = $2 AND deleted_at IS NULL",
                project_id,
                campaign_id,
            )
            if not template or not template.get("type"):
                reason = "The campaign no longer exists or has no voucher template"
                return {"message": reason, "done_count": 0, "failed_count": len(rows), "failed": []}
        try:
            staged = await _stage(conn, tables, header, rows)
            await _dates(conn, staged, ["start_date", "expiration_date"])
            await conn.execute(_voucher_check_sql(staged, template))
            await _index_checked(conn, tables)
            await conn.execute(
                f"""INSERT INTO categories (id, project_id, name)
                    SELECT 'cat_' || substr(md5(random()::text || category), 1, 20), $1, category
                    FROM (SELECT DISTINCT category FROM {tables.checked}
                          WHERE error IS NULL AND category IS NOT NULL) n
                    ON CONFLICT (project_id, name) DO NOTHING""",
                project_id,
            )
            await progress(10)
            insert = _voucher_insert_sql(tables, template)
            done = 0
            written_now: set[str] = set()

            async def write(chunk: asyncpg.Connection, low: int, high: int) -> None:
                nonlocal done
                async with chunk.transaction():
                    written = await chunk.fetch(insert, project_id, action_id, campaign_id, low, high)
                    if campaign_id is not None and written:
                        await chunk.execute(
                            "UPDATE campaigns SET vouchers_count = vouchers_count + $2, updated_at = now() "
                            "WHERE id = $1",
                            campaign_id,
                            len(written),
                        )
                written_now.update(r["code"] for r in written)
                await put_states(redis, put_rows, project_id, [(r["code"], r["state"]) for r in written], "replace")
                done += len(written)

            await _in_chunks(pool, len(rows), write, progress)
            if await conn.fetchval("SELECT attempts > 1 FROM async_actions WHERE id = $1", action_id):
                # A retry: codes the earlier attempt wrote (same derived ids) are done; their state only if absent.
                again = await conn.fetch(
                    f"""SELECT v.code, {_STATE} AS state FROM {tables.checked} c JOIN vouchers v
                          ON v.id = 'v_' || substr(md5($2), 1, 10) || lpad(to_hex(c.row_no), 10, '0')
                             AND v.project_id = $1
                        WHERE c.error IS NULL""",
                    project_id,
                    action_id,
                )
                again = [r for r in again if r["code"] not in written_now]
                await put_states(redis, put_rows, project_id, [(r["code"], r["state"]) for r in again], "if_absent")
                done += len(again)
            failed_count, failed = await _failed(conn, tables, "code")
            await db.analyse_after_bulk(conn, "vouchers", done)
            taken = await conn.fetch(
                f"""SELECT c.row_no, c.code FROM {tables.checked} c
                    WHERE c.error IS NULL AND NOT EXISTS (
                        SELECT 1 FROM vouchers v WHERE v.project_id = $1
                          AND v.id = 'v_' || substr(md5($2), 1, 10) || lpad(to_hex(c.row_no), 10, '0'))
                    ORDER BY c.row_no""",
                project_id,
                action_id,
            )
        finally:
            await tables.drop(conn)
    for row in taken:
        if len(failed) < MAX_FAILED_REPORTED:
            failed.append(
                {
                    "ref": row["code"],
                    "row": row["row_no"],
                    "reason": f"A voucher with code {row['code']} already exists",
                }
            )
    failed.sort(key=lambda f: f["row"])
    return _result("vouchers", "code", done, failed, failed_count + len(taken), started)


def _result(
    noun: str, ref: str, done: int, failed: list[dict[str, Any]], failed_count: int, started: float
) -> dict[str, Any]:
    return {
        "message": f"{done} {noun} imported, {failed_count} failed in {time.monotonic() - started:.2f} s",
        "done_count": done,
        "failed_count": failed_count,
        "failed": [{ref: f["ref"], "row": f["row"], "reason": f["reason"]} for f in failed],
    }


# --- customers --------------------------------------------------------------------------------------------------

_KNOWN_CUSTOMER_COLUMNS = {
    "id", "name", "email", "phone", "birthdate", "birthday", "source_id", "description", "address_line_1",
    "address_line_2", "address_postal_code", "postal_code", "address_city", "city", "address_state", "state",
    "address_country", "country",
}  # fmt: skip
_ADDRESS = (
    ("line_1", ("address_line_1",)),
    ("line_2", ("address_line_2",)),
    ("postal_code", ("address_postal_code", "postal_code")),
    ("city", ("address_city", "city")),
    ("state", ("address_state", "state")),
    ("country", ("address_country", "country")),
)


def _customer_check_sql(staged: _Staged) -> str:
    c = staged.col
    t = staged.t
    address_pairs = []
    for field, columns in _ADDRESS:
        present = [c(name) for name in columns if staged.has(name)]
        if present:
            address_pairs.append(f"'{field}', COALESCE({', '.join(present)})")
    address = (
        f"NULLIF(jsonb_strip_nulls(jsonb_build_object({', '.join(address_pairs)})), '{{}}'::jsonb)"
        if address_pairs
        else "NULL::jsonb"
    )
    return f"""CREATE UNLOGGED TABLE {t.checked} AS
        SELECT s.row_no, {c("source_id")} AS source_id, {c("name")} AS name, {c("email")} AS email,
               {c("phone")} AS phone, {c("description")} AS description, bd.d AS birthdate, bday.d AS birthday,
               {address} AS address, {staged.metadata(_KNOWN_CUSTOMER_COLUMNS)} AS metadata,
               CASE WHEN {c("birthdate")} IS NOT NULL AND bd.d IS NULL
                        THEN 'birthdate should be a YYYY-MM-DD date, got ' || {c("birthdate")}
                    WHEN {c("birthday")} IS NOT NULL AND bday.d IS NULL
                        THEN 'birthday should be a YYYY-MM-DD date, got ' || {c("birthday")}
                    WHEN {c("source_id")} IS NOT NULL
                         AND row_number() OVER (PARTITION BY {c("source_id")} ORDER BY s.row_no) > 1
                        THEN 'source_id ' || {c("source_id")} || ' appears more than once in the import'
               END AS error
        FROM {t.stage} s
        LEFT JOIN {t.dates} bd ON bd.v = {c("birthdate")}
        LEFT JOIN {t.dates} bday ON bday.v = {c("birthday")}"""


def _upsert_customers_sql(tables: _Tables, *, fresh: bool = False) -> str:
    """$1 project, $2..$3 row range, $4 action id. Ids: the one claimed in Redis for the source_id, else derived.
    A row that would change nothing (the same file imported again) writes nothing and records no activity.

    ``fresh``: plain inserts, for a file whose source_ids no customer had when the import began; cheaper than the
    upsert's speculative insertions. A row that exists after all fails the statement (the caller upserts)."""
    insert = f"""
WITH written AS (
    INSERT INTO customers AS c (project_id, id, source_id, name, email, phone, description, birthdate, birthday,
                                address, metadata)
    SELECT $1, COALESCE(i.id, 'cust_' || substr(md5($4 || ':' || k.row_no), 1, 20)), k.source_id, k.name, k.email,
           k.phone, k.description, k.birthdate, k.birthday, k.address, k.metadata
    FROM {tables.checked} k LEFT JOIN {tables.ids} i ON i.row_no = k.row_no
    WHERE k.error IS NULL AND k.row_no BETWEEN $2 AND $3"""
    activity = """
), activity AS (
    INSERT INTO customer_activity (project_id, id, customer_id, type, data)
    SELECT $1, 'evcus_' || substr(md5($4 || ':' || w.id), 1, 20), w.id,
           CASE WHEN w.created THEN 'customer.created' ELSE 'customer.updated' END,
           jsonb_build_object('customer',
                              jsonb_build_object('id', w.id, 'source_id', w.source_id, 'object', 'customer'))
    FROM written w"""
    if fresh:
        return f"{insert}\n    RETURNING c.*, true AS created{activity}\n)\nSELECT * FROM written\n"
    return f"""{insert}
    ON CONFLICT (project_id, source_id) DO UPDATE SET
        name = COALESCE(EXCLUDED.name, c.name), email = COALESCE(EXCLUDED.email, c.email),
        phone = COALESCE(EXCLUDED.phone, c.phone), description = COALESCE(EXCLUDED.description, c.description),
        birthdate = COALESCE(EXCLUDED.birthdate, c.birthdate), birthday = COALESCE(EXCLUDED.birthday, c.birthday),
        address = CASE WHEN EXCLUDED.address IS NULL THEN c.address
                       ELSE COALESCE(c.address, '{{}}'::jsonb) || EXCLUDED.address END,
        metadata = c.metadata || EXCLUDED.metadata, updated_at = now()
    WHERE (EXCLUDED.name IS NOT NULL AND EXCLUDED.name IS DISTINCT FROM c.name)
       OR (EXCLUDED.email IS NOT NULL AND EXCLUDED.email IS DISTINCT FROM c.email)
       OR (EXCLUDED.phone IS NOT NULL AND EXCLUDED.phone IS DISTINCT FROM c.phone)
       OR (EXCLUDED.description IS NOT NULL AND EXCLUDED.description IS DISTINCT FROM c.description)
       OR (EXCLUDED.birthdate IS NOT NULL AND EXCLUDED.birthdate IS DISTINCT FROM c.birthdate)
       OR (EXCLUDED.birthday IS NOT NULL AND EXCLUDED.birthday IS DISTINCT FROM c.birthday)
       OR (EXCLUDED.address IS NOT NULL AND COALESCE(c.address, '{{}}'::jsonb) || EXCLUDED.address
                                            IS DISTINCT FROM c.address)
       OR NOT c.metadata @> EXCLUDED.metadata
    RETURNING c.*, (xmax = 0) AS created{activity}
    ON CONFLICT DO NOTHING
)
SELECT * FROM written
"""


async def _claim_ids(
    conn: asyncpg.Connection, redis: aioredis.Redis, tables: _Tables, project_id: str, action_id: str
) -> None:
    """The hot path names customers by source_id in Redis; imported ones take the same ids (claimed there first).
    Fills ``<ids>(row_no, id)``."""
    claim = redis.register_script(SOURCES["customer_ids_claim_many"])
    sourced = await conn.fetch(
        f"SELECT row_no, source_id FROM {tables.checked} WHERE error IS NULL AND source_id IS NOT NULL"
    )
    # Candidates are the action's stem then the row number: the customers' primary key (and the activity's index
    # by customer) then takes an import's new rows in key order, a sixth less PostgreSQL CPU than random ids.
    # The same action claims the same candidates again when retried.
    stem = hashlib.blake2b(action_id.encode(), digest_size=5).hexdigest()
    batches = [sourced[start : start + 5_000] for start in range(0, len(sourced), 5_000)]

    async def claim_batch(batch: list[asyncpg.Record]) -> list[Any]:
        args: list[str] = []
        for r in batch:
            args += [r["source_id"], f"cust_{stem}{r['row_no']:010x}"]
        result: list[Any] = await claim(keys=[keys.customer_ids(project_id)], args=args)
        return result

    claimed = await asyncio.gather(*(claim_batch(b) for b in batches))
    ids = [
        (r["row_no"], _text(i))
        for batch, got in zip(batches, claimed, strict=True)
        for r, i in zip(batch, got, strict=True)
    ]
    await conn.execute(f"CREATE UNLOGGED TABLE {tables.ids} (row_no integer PRIMARY KEY, id text NOT NULL)")
    await conn.copy_records_to_table(tables.ids, records=ids)
    await conn.execute(f"ANALYZE {tables.ids}")


async def import_customers_csv(
    pool: asyncpg.Pool, redis: aioredis.Redis, project_id: str, action_id: str, data: bytes, progress: Progress
) -> dict[str, Any]:
    """``CUSTOMERS.IMPORT_CSV``: upsert on source_id (merging metadata and address); rows without one are new."""
    started = time.monotonic()
    header, rows = read_csv(data, "customers")
    tables = _Tables(action_id)
    async with pool.acquire() as conn:
        try:
            staged = await _stage(conn, tables, header, rows)
            await _dates(conn, staged, ["birthdate", "birthday"], date_only=True)
            await conn.execute(_customer_check_sql(staged))
            await _index_checked(conn, tables)
            await _claim_ids(conn, redis, tables, project_id, action_id)
            await progress(10)
            upsert = _upsert_customers_sql(tables)
            # A file of new customers only (the first import into a project, say): plain inserts; a chunk that
            # meets a customer created meanwhile (the hot path, another import) rolls back and upserts instead.
            fresh = not await conn.fetchval(
                f"""SELECT EXISTS (SELECT 1 FROM {tables.checked} k JOIN customers c
                                   ON c.project_id = $1 AND c.source_id = k.source_id WHERE k.error IS NULL)""",
                project_id,
            )
            insert = _upsert_customers_sql(tables, fresh=True)

            async def write(chunk: asyncpg.Connection, low: int, high: int) -> None:
                async with chunk.transaction():
                    written = None
                    if fresh:
                        try:
                            async with chunk.transaction():
                                written = await chunk.fetch(insert, project_id, low, high, action_id)
                        except asyncpg.UniqueViolationError:
                            written = None
                    if written is None:
                        written = await chunk.fetch(upsert, project_id, low, high, action_id)
                    # Its customers are placed in segments from the rows it wrote, in its transaction.
                    changed = await segments.evaluate_rows(chunk, project_id, written)
                await segments.store_memberships(redis, project_id, changed)

            await _in_chunks(pool, len(rows), write, progress)
            # Every good row is imported: written, or already as the file says.
            done = int(await conn.fetchval(f"SELECT count(*) FROM {tables.checked} WHERE error IS NULL"))
            mismatched: dict[str, str] = {
                r["source_id"]: r["id"]
                for r in await conn.fetch(
                    f"""SELECT k.source_id, c.id FROM {tables.checked} k
                        JOIN {tables.ids} i ON i.row_no = k.row_no
                        JOIN customers c ON c.project_id = $1 AND c.source_id = k.source_id
                        WHERE k.error IS NULL AND c.id <> i.id""",
                    project_id,
                )
            }
            if mismatched:  # customers PostgreSQL knew under another id than Redis had: PostgreSQL wins
                await redis.hset(keys.customer_ids(project_id), mapping=mismatched)  # type: ignore[arg-type]
            failed_count, failed = await _failed(conn, tables, "source_id")
            await db.analyse_after_bulk(conn, "customers", done)
        finally:
            await tables.drop(conn)
    return _result("customers", "source_id", done, failed, failed_count, started)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
