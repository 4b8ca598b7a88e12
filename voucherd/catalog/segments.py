"""Customer segments (``seg_``): static lists and filters evaluated on every customer write.

Membership lives in PostgreSQL (``segment_members``) and, for the hot path, in one Redis hash per
project (``keys.customer_segments``) whose fields ``id:<customer id>`` and ``src:<source id>`` hold the
customer's sorted segment ids as JSON. Redis is written right after each PostgreSQL commit and can be
rebuilt from it with ``rebuild_cache``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from voucherd.catalog import activity
from voucherd.catalog.customer_views import customer_view, facts_reader
from voucherd.platform import keys
from voucherd.platform.errors import InvalidPayload, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso, utcnow

TYPES = ("static", "auto-update", "passive")
STATIC_LIMIT = 20_000
_POSITIVE_OPS = {"$is", "$in", "$starts_with", "$ends_with", "$contains", "$has_value"}
_NEGATIVE_OPS = {"$is_not", "$not_in", "$not_contain", "$is_unknown"}
_RANGE_OPS = {"$more_than", "$less_than", "$more_than_equal", "$less_than_equal", "$after", "$before"}
_MONTH_OPS = {"$this_month", "$next_month", "$last_month"}
OPERATORS = _POSITIVE_OPS | _NEGATIVE_OPS | _RANGE_OPS | _MONTH_OPS
_DATE_FIELDS = {"created_at", "updated_at", "birthdate", "birthday", "summary.orders.last_order_date"}


@dataclass(frozen=True)
class Membership:
    """Every segment one customer belongs to, as the hot path reads it."""

    customer_id: str
    source_id: str | None
    segment_ids: list[str]
    earned: bool = False  # issue 9: an entry was recorded as a loyalty earning trigger (ring after commit)


def segment_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "type": row["type"],
        "filter": row["filter"],
        "initial_sync_status": "DONE",
        "object": "segment",
    }


# --- filters ---


def check_filter(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise InvalidPayload("Property .filter is required for auto-update and passive segments")
    junction = raw.get("junction", "and")
    if junction not in ("and", "or", "AND", "OR"):
        raise InvalidPayload("Property .filter.junction should be and or or")
    for field, spec in raw.items():
        if field == "junction":
            continue
        if field.startswith("loyalty_points."):
            raise InvalidPayload(f"Filtering segments on {field} is not supported yet")
        if field.startswith("events.") and not (field.endswith(".count") and field.count(".") >= 2):
            raise InvalidPayload(f"Property .filter.{field}: event filters take the form events.<name>.count")
        conditions = spec.get("conditions") if isinstance(spec, dict) else None
        if not isinstance(conditions, dict) or not conditions:
            raise InvalidPayload(f"Property .filter.{field} should be an object with conditions")
        for op in conditions:
            if op not in OPERATORS:
                raise InvalidPayload(f"Property .filter.{field}.conditions: unknown operator {op}")
    return raw


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(actual: Any, expected: Any) -> bool:
    a, e = _as_number(actual), _as_number(expected)
    if a is not None and e is not None and not isinstance(actual, str):
        return a == e
    return _text(actual) == _text(expected)


def _one(expected: Any) -> Any:
    return expected[0] if isinstance(expected, list) and expected else expected


def _month_offset(op: str) -> int:
    return {"$this_month": 0, "$next_month": 1, "$last_month": -1}[op]


def _test(field: str, actual: Any, op: str, expected: Any, now: datetime) -> bool:
    if op == "$has_value":
        return actual not in (None, "", [])
    if op == "$is_unknown":
        return actual in (None, "", [])
    if isinstance(actual, list):
        if op in _NEGATIVE_OPS:
            return all(_test(field, item, op, expected, now) for item in actual)
        return any(_test(field, item, op, expected, now) for item in actual)
    if actual is None:
        return op in _NEGATIVE_OPS
    if op == "$is":
        return _equal(actual, _one(expected))
    if op == "$is_not":
        return not _equal(actual, _one(expected))
    if op in ("$in", "$not_in"):
        values = expected if isinstance(expected, list) else [expected]
        found = any(_equal(actual, v) for v in values)
        return found if op == "$in" else not found
    if op in ("$starts_with", "$ends_with", "$contains", "$not_contain"):
        text, needle = _text(actual), _text(_one(expected))
        if op == "$starts_with":
            return text.startswith(needle)
        if op == "$ends_with":
            return text.endswith(needle)
        return (needle in text) == (op == "$contains")
    when = _as_time(actual) if field in _DATE_FIELDS or _as_number(actual) is None else None
    if op in _MONTH_OPS:
        if when is None:
            return False
        month = (now.month - 1 + _month_offset(op)) % 12 + 1
        return when.month == month
    if op in ("$after", "$before"):
        bound = _as_time(_one(expected))
        if when is None or bound is None:
            return False
        return when > bound if op == "$after" else when < bound
    limit = _as_number(_one(expected))
    if limit is None:
        return False
    if when is not None:
        number = (now - when).total_seconds() / 86400  # date ranges count days ago
    else:
        value = _as_number(actual)
        if value is None:
            return False
        number = value
    return {
        "$more_than": number > limit,
        "$less_than": number < limit,
        "$more_than_equal": number >= limit,
        "$less_than_equal": number <= limit,
    }[op]


Match = Callable[[dict[str, Any], datetime], bool]


def _getter(field: str) -> Callable[[dict[str, Any]], Any]:
    """What a filter field names in the facts (``events.<name>.count``: a count, 0 if none), path split once."""
    if field.startswith("events."):
        name = field[len("events.") : -len(".count")]
        return lambda facts: facts.get("_events", {}).get(name, 0)
    parts = field.split(".")
    if len(parts) == 1:
        return lambda facts: facts.get(field)

    def get(facts: dict[str, Any]) -> Any:
        value: Any = facts
        for part in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


def _condition(field: str, op: str, expected: Any) -> Callable[[Any, datetime], bool]:
    """``_test`` for one condition, with the answers that need no conversion worked out once: a missing value
    holds only for the negative operators, and text against ``$is``/``$is_not`` compares as text."""
    negative = op in _NEGATIVE_OPS
    if op in ("$is", "$is_not"):
        wanted = _text(_one(expected))

        def equality(actual: Any, now: datetime) -> bool:
            if actual is None:
                return negative
            if isinstance(actual, str):
                return (actual == wanted) != negative
            return _test(field, actual, op, expected, now)

        return equality

    def general(actual: Any, now: datetime) -> bool:
        if actual is None:
            return negative
        return _test(field, actual, op, expected, now)

    return general


def compile_filter(filter_: dict[str, Any]) -> Match:
    """A segment filter as one function of (facts, now): a bulk job tests 100,000 customers against it."""
    fields = [
        (_getter(field), [_condition(field, op, expected) for op, expected in spec["conditions"].items()])
        for field, spec in filter_.items()
        if field != "junction"
    ]
    if not fields:
        return lambda facts, now: False
    either = str(filter_.get("junction", "and")).lower() == "or"

    def match(facts: dict[str, Any], now: datetime) -> bool:
        for get, tests in fields:
            actual = get(facts)
            held = True
            for test in tests:  # a loop, not all(<generator>): this runs per customer and segment
                if not test(actual, now):
                    held = False
                    break
            if held == either:  # the first field that holds decides "or", the first that fails "and"
                return held
        return not either

    return match


def matches(filter_: dict[str, Any], facts: dict[str, Any], now: datetime | None = None) -> bool:
    """Whether a customer (its API view, plus ``_events`` counts by name) satisfies a segment filter."""
    return compile_filter(filter_)(facts, now or utcnow())


def _needs_events(filters: Iterable[dict[str, Any]]) -> bool:
    return any(field.startswith("events.") for f in filters for field in f)


async def _event_counts(
    conn: asyncpg.Connection, project_id: str, customer_ids: list[str]
) -> dict[str, dict[str, int]]:
    rows = await conn.fetch(
        "SELECT customer_id, event_name, count(*) AS n FROM customer_activity "
        "WHERE project_id = $1 AND customer_id = ANY($2::text[]) AND event_name IS NOT NULL "
        "GROUP BY customer_id, event_name",
        project_id,
        customer_ids,
    )
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r["customer_id"], {})[r["event_name"]] = r["n"]
    return counts


# --- membership ---


async def memberships(conn: asyncpg.Connection, project_id: str, customer_ids: list[str]) -> list[Membership]:
    rows = await conn.fetch(
        """SELECT c.id, c.source_id,
                  COALESCE(array_agg(m.segment_id ORDER BY m.segment_id) FILTER (WHERE m.segment_id IS NOT NULL),
                           '{}') AS segment_ids
           FROM customers c
           LEFT JOIN segment_members m ON m.project_id = c.project_id AND m.customer_id = c.id
           WHERE c.project_id = $1 AND c.id = ANY($2::text[])
           GROUP BY c.id, c.source_id""",
        project_id,
        customer_ids,
    )
    return [Membership(r["id"], r["source_id"], list(r["segment_ids"])) for r in rows]


async def evaluate_customer(conn: asyncpg.Connection, project_id: str, customer: dict[str, Any]) -> Membership:
    """Re-evaluate every filter segment for one customer (its API view); record entries and exits.

    Call inside the transaction that changed the customer; then hand the result to ``store_memberships``.
    """
    return (await evaluate_customers(conn, project_id, [customer]))[0]


async def _dynamic(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch("SELECT id, type, filter FROM segments WHERE project_id = $1 AND type <> 'static'", project_id)
    )


async def evaluate_customers(
    conn: asyncpg.Connection,
    project_id: str,
    customers: list[dict[str, Any]],
    dynamic: list[asyncpg.Record] | None = None,
    *,
    changed_only: bool = False,
) -> list[Membership]:
    """``evaluate_customer`` for many customers at once: each read and write is one statement for all of them
    (an import of 100,000 customers into a project with segments took a statement per customer and segment).
    ``changed_only``: only the customers that entered or left a segment come back."""
    if dynamic is None:
        dynamic = await _dynamic(conn, project_id)
    ids = [c["id"] for c in customers]
    current: dict[str, set[str]] = {}
    for r in await conn.fetch(
        "SELECT customer_id, segment_id FROM segment_members WHERE project_id = $1 AND customer_id = ANY($2::text[])",
        project_id,
        ids,
    ):
        current.setdefault(r["customer_id"], set()).add(r["segment_id"])
    events = await _event_counts(conn, project_id, ids) if _needs_events(s["filter"] for s in dynamic) else None
    now = utcnow()
    compiled = [(segment["id"], segment, compile_filter(segment["filter"])) for segment in dynamic]
    moves: list[tuple[dict[str, Any], set[str], list[Any], list[Any]]] = []  # customer, held, entered, left
    for customer in customers:
        facts = customer if events is None else {**customer, "_events": events.get(customer["id"], {})}
        held = current.get(customer["id"], set())
        entered, left = [], []
        for segment_id, segment, match in compiled:
            if match(facts, now):
                if segment_id not in held:
                    entered.append(segment)
            elif segment_id in held:
                left.append(segment)
        if entered or left or not changed_only:
            moves.append((customer, held, entered, left))
    entries = [(customer["id"], segment) for customer, _, entered, _ in moves for segment in entered]
    exits = [(customer["id"], segment) for customer, _, _, left in moves for segment in left]
    if entries:
        await conn.executemany(
            "INSERT INTO segment_members (project_id, segment_id, customer_id) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            [(project_id, segment["id"], customer_id) for customer_id, segment in entries],
        )
    if exits:
        await conn.execute(
            "DELETE FROM segment_members m USING unnest($2::text[], $3::text[]) AS x(customer_id, segment_id) "
            "WHERE m.project_id = $1 AND m.customer_id = x.customer_id AND m.segment_id = x.segment_id",
            project_id,
            [customer_id for customer_id, _ in exits],
            [segment["id"] for _, segment in exits],
        )
    logged = [("customer.segment.entered", *entry) for entry in entries] + [
        ("customer.segment.left", *exit_) for exit_ in exits
    ]
    activity_rows = [
        (
            project_id,
            new_id("evcus"),
            customer_id,
            kind,
            {"customer": {"id": customer_id, "object": "customer"}, "segment": {"id": segment["id"]}},
        )
        for kind, customer_id, segment in logged
        if segment["type"] == "auto-update"  # passive segments change silently
    ]
    if activity_rows:
        await conn.executemany(
            "INSERT INTO customer_activity (project_id, id, customer_id, type, data) VALUES ($1, $2, $3, $4, $5)",
            activity_rows,
        )
    # Issue 9: entries that earning rules reward become loyalty triggers, in this transaction.
    earned = await activity.record_segment_entries(
        conn, project_id, [(c["id"], [s["id"] for s in entered]) for c, _, entered, _ in moves if entered], now
    )
    return [
        Membership(
            customer["id"],
            customer.get("source_id"),
            sorted((held | {s["id"] for s in entered}) - {s["id"] for s in left}),
            customer["id"] in earned,
        )
        for customer, held, entered, left in moves
    ]


async def evaluate_rows(conn: asyncpg.Connection, project_id: str, rows: Iterable[Any]) -> list[Membership]:
    """Segment membership for customers a bulk job wrote, from their rows (``SELECT *`` or ``RETURNING *``).

    Call in the transaction that wrote them; store the result once it commits. Only the customers that
    entered or left a segment come back (the Redis hash holds the others already), and only the top-level
    fields the filters read are built from each row.
    """
    dynamic = await _dynamic(conn, project_id)
    if not dynamic:
        return []  # static segments do not follow a customer's fields
    fields = (field for segment in dynamic for field in segment["filter"] if field != "junction")
    read = {"id", "source_id", *(field.split(".", 1)[0] for field in fields)}
    read_facts = facts_reader(read)
    facts = [read_facts(row) for row in rows]
    return await evaluate_customers(conn, project_id, facts, dynamic, changed_only=True)


async def store_memberships(redis: aioredis.Redis, project_id: str, changed: Iterable[Membership]) -> None:
    key = keys.customer_segments(project_id)
    changed = list(changed)
    if not changed:
        return
    async with redis.pipeline(transaction=True) as pipe:
        for m in changed:
            fields = [f"id:{m.customer_id}"] + ([f"src:{m.source_id}"] if m.source_id else [])
            if m.segment_ids:
                value = orjson.dumps(m.segment_ids)
                pipe.hset(key, mapping=dict.fromkeys(fields, value))
            else:
                pipe.hdel(key, *fields)
        await pipe.execute()
    if any(m.earned for m in changed):  # issue 9: wake the loyalty task for the entries just committed
        await activity.ring(redis, [project_id])


async def forget_customer(redis: aioredis.Redis, project_id: str, customer_id: str, source_id: str | None) -> None:
    fields = [f"id:{customer_id}"] + ([f"src:{source_id}"] if source_id else [])
    await redis.hdel(keys.customer_segments(project_id), *fields)


async def segment_ids(redis: aioredis.Redis, project_id: str, customer: str) -> list[str]:
    """Hot path: the segment ids of the customer whose id or source_id is ``customer`` (one HMGET)."""
    by_id, by_source = await redis.hmget(keys.customer_segments(project_id), [f"id:{customer}", f"src:{customer}"])
    found = by_id if by_id is not None else by_source
    return list(orjson.loads(found)) if found is not None else []


async def rebuild_cache(conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str) -> int:
    """Rewrite the project's membership hash from PostgreSQL; returns the number of customers in a segment."""
    rows = await conn.fetch("SELECT DISTINCT customer_id FROM segment_members WHERE project_id = $1", project_id)
    found = await memberships(conn, project_id, [r["customer_id"] for r in rows])
    await redis.delete(keys.customer_segments(project_id))
    await store_memberships(redis, project_id, found)
    return len(found)


# --- segments ---


async def _resolve_customers(conn: asyncpg.Connection, project_id: str, refs: Any) -> list[str]:
    if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
        raise InvalidPayload("Property .customers should be an array of customer ids")
    if len(refs) > STATIC_LIMIT:
        raise InvalidPayload(f"A static segment holds at most {STATIC_LIMIT} customers")
    rows = await conn.fetch(
        "SELECT id, source_id FROM customers WHERE project_id = $1 AND (id = ANY($2::text[]) OR source_id = ANY($2))",
        project_id,
        refs,
    )
    by_ref = {r["source_id"]: r["id"] for r in rows if r["source_id"]}
    by_ref.update({r["id"]: r["id"] for r in rows})
    missing = [r for r in refs if r not in by_ref]
    if missing:
        raise NotFound.of("customer", missing[0])
    return sorted({by_ref[r] for r in refs})


async def create(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidPayload("Property .name is required and should be a non-empty string")
    type_ = body.get("type") or ("static" if body.get("customers") is not None else "auto-update")
    if type_ not in TYPES:
        raise InvalidPayload(f"Property .type should be one of {', '.join(TYPES)}")
    segment_id = new_id("seg")
    async with conn.transaction():
        if type_ == "static":
            member_ids = await _resolve_customers(conn, project_id, body.get("customers"))
            filter_ = None
        else:
            filter_ = check_filter(body.get("filter"))
        row = await conn.fetchrow(
            "INSERT INTO segments (project_id, id, name, type, filter) VALUES ($1, $2, $3, $4, $5) RETURNING *",
            project_id,
            segment_id,
            name,
            type_,
            filter_,
        )
        if filter_ is not None:
            member_ids = await _initial_members(conn, project_id, filter_)
        await conn.executemany(
            "INSERT INTO segment_members (project_id, segment_id, customer_id) VALUES ($1, $2, $3)",
            [(project_id, segment_id, customer_id) for customer_id in member_ids],
        )
        changed = await memberships(conn, project_id, member_ids)
    await store_memberships(redis, project_id, changed)
    return segment_view(row)


async def _initial_members(conn: asyncpg.Connection, project_id: str, filter_: dict[str, Any]) -> list[str]:
    members = []
    now = utcnow()
    needs_events = _needs_events([filter_])
    match = compile_filter(filter_)
    async with conn.transaction():
        cursor = conn.cursor("SELECT * FROM customers WHERE project_id = $1", project_id, prefetch=500)
        async for row in cursor:
            facts = customer_view(row)
            if needs_events:
                facts["_events"] = await _event_counts(conn, project_id, row["id"])
            if match(facts, now):
                members.append(row["id"])
    return members


async def get(conn: asyncpg.Connection, project_id: str, segment_id: str) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT * FROM segments WHERE project_id = $1 AND id = $2", project_id, segment_id)
    if row is None:
        raise NotFound.of("segment", segment_id)
    return segment_view(row)


async def delete(conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, segment_id: str) -> None:
    async with conn.transaction():
        members = await conn.fetch(
            "SELECT customer_id FROM segment_members WHERE project_id = $1 AND segment_id = $2",
            project_id,
            segment_id,
        )
        status = await conn.execute("DELETE FROM segments WHERE project_id = $1 AND id = $2", project_id, segment_id)
        if status == "DELETE 0":
            raise NotFound.of("segment", segment_id)
        changed = await memberships(conn, project_id, [r["customer_id"] for r in members])
    await store_memberships(redis, project_id, changed)


async def of_customer(conn: asyncpg.Connection, project_id: str, customer_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT s.id, s.name FROM segment_members m JOIN segments s ON s.project_id = m.project_id "
        "AND s.id = m.segment_id WHERE m.project_id = $1 AND m.customer_id = $2 ORDER BY s.created_at, s.id",
        project_id,
        customer_id,
    )
    return [{"id": r["id"], "name": r["name"], "object": "segment"} for r in rows]


async def refresh_customer(
    conn: asyncpg.Connection, redis: aioredis.Redis | None, project_id: str, customer: dict[str, Any]
) -> Membership:
    """Re-evaluate one customer outside a customer write (after a custom event, for instance)."""
    async with conn.transaction():
        membership = await evaluate_customer(conn, project_id, customer)
    if redis is not None:
        await store_memberships(redis, project_id, [membership])
    return membership


REFRESH_BATCH = 5_000


async def refresh_customers(
    conn: asyncpg.Connection, redis: aioredis.Redis, project_id: str, customer_ids: list[str]
) -> None:
    """Re-evaluate customers a bulk job wrote (a metadata update, say), ``REFRESH_BATCH`` at a time."""
    for start in range(0, len(customer_ids), REFRESH_BATCH):
        rows = await conn.fetch(
            "SELECT * FROM customers WHERE project_id = $1 AND id = ANY($2::text[])",
            project_id,
            customer_ids[start : start + REFRESH_BATCH],
        )
        async with conn.transaction():
            changed = await evaluate_rows(conn, project_id, rows)
        await store_memberships(redis, project_id, changed)
