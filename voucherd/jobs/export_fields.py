"""What each exported object can put in its CSV file, and how its order becomes SQL.

One ``Catalog`` (voucherd.platform.sql_filters) per ``exported_object``: the rows it reads (``FROM`` and the
project's scope), each field of the contract as an SQL expression (with the joins it needs, added only
when asked for), the fields sent when none are named, and the orders the contract allows. ``build``
turns the export's ``parameters`` (already checked by ``check``) into one ``SELECT`` with positional
arguments; the worker runs it under ``COPY … TO STDOUT``. Times are written in UTC, as
``2022-03-09T09:16:32.521Z``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from voucherd.platform import sql_filters
from voucherd.platform.errors import InvalidExportParams
from voucherd.platform.sql_filters import Catalog, Field


def _ts(expression: str) -> str:
    return f"to_char(({expression}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


def _date(column: str, joins: tuple[str, ...] = ()) -> Field:
    return Field(_ts(column), "date", column, joins)


_CUSTOMER_OF = "LEFT JOIN customers cu ON cu.project_id = {a}.project_id AND cu.id = {a}.{c}"
# A voucher's own discount, else its campaign's template (codes inherit what they do not override).
_DISCOUNT = "coalesce(v.discount, c.voucher->'discount')"


def _voucher_value() -> str:
    d = _DISCOUNT
    return (
        "CASE v.type WHEN 'GIFT_VOUCHER' THEN v.gift_balance::text WHEN 'LOYALTY_CARD' THEN v.loyalty_balance::text "
        f"ELSE CASE {d}->>'type' WHEN 'AMOUNT' THEN {d}->>'amount_off' WHEN 'PERCENT' THEN {d}->>'percent_off' "
        f"WHEN 'UNIT' THEN {d}->>'unit_off' WHEN 'FIXED' THEN {d}->>'fixed_amount' END END"
    )


VOUCHERS = Catalog(
    source="vouchers v LEFT JOIN campaigns c ON c.id = v.campaign_id",
    scope="v.project_id = $1 AND v.deleted_at IS NULL AND c.deleted_at IS NULL",
    key="v.id",
    joins={
        "category": "LEFT JOIN categories cat ON cat.id = v.category_id",
        "holder": _CUSTOMER_OF.format(a="v", c="holder_id"),
    },
    fields={
        "code": Field("v.code"),
        "voucher_type": Field("v.type"),
        "value": Field(_voucher_value()),
        "formula": Field(
            f"coalesce({_DISCOUNT}->>'amount_off_formula', {_DISCOUNT}->>'percent_off_formula', "
            f"{_DISCOUNT}->>'unit_off_formula', {_DISCOUNT}->>'fixed_amount_formula')"
        ),
        "discount_type": Field(f"{_DISCOUNT}->>'type'"),
        "campaign": Field("c.name"),
        "category": Field("cat.name", joins=("category",)),
        "start_date": _date("coalesce(v.start_date, c.start_date)"),
        "expiration_date": _date("coalesce(v.expiration_date, c.expiration_date)"),
        "gift_balance": Field("v.gift_balance", "number"),
        "loyalty_balance": Field("v.loyalty_balance", "number"),
        "redemption_quantity": Field(
            "coalesce(v.redemption_quantity, (c.voucher->'redemption'->>'quantity')::integer)", "number"
        ),
        "redemption_count": Field("v.redeemed_quantity", "number"),
        "active": Field("v.active::text", "bool"),
        "qr_code": Field("NULL::text"),
        "bar_code": Field("NULL::text"),
        "metadata": Field("v.metadata"),
        "id": Field("v.id"),
        "is_referral_code": Field("v.is_referral_code::text", "bool"),
        "created_at": _date("v.created_at"),
        "updated_at": _date("v.updated_at"),
        "validity_timeframe_interval": Field("coalesce(v.validity_timeframe, c.validity_timeframe)->>'interval'"),
        "validity_timeframe_duration": Field("coalesce(v.validity_timeframe, c.validity_timeframe)->>'duration'"),
        "validity_day_of_week": Field(
            "translate(coalesce(v.validity_day_of_week, c.validity_day_of_week)::text, '[] ', '')"
        ),
        "discount_amount_limit": Field(f"{_DISCOUNT}->>'amount_limit'"),
        "campaign_id": Field("v.campaign_id"),
        "additional_info": Field("v.additional_info"),
        "customer_id": Field("v.holder_id"),
        "discount_effect": Field(f"{_DISCOUNT}->>'effect'"),
        "discount_unit_type": Field(f"{_DISCOUNT}->>'unit_type'"),
        "discount_unit_effect": Field(f"CASE WHEN {_DISCOUNT}->>'type' = 'UNIT' THEN {_DISCOUNT}->>'effect' END"),
        "validation_rules_id": Field(
            "(SELECT string_agg(a.rule_id, ',' ORDER BY a.created_at) FROM validation_rules_assignments a "
            "WHERE a.project_id = v.project_id AND a.related_object_id = v.id)"
        ),
        "customer_source_id": Field("cu.source_id", joins=("holder",)),
    },
    defaults=("code", "voucher_type", "value", "discount_type"),
    orders={"created_at": "v.created_at", "updated_at": "v.updated_at", "code": "v.code"},
    prefixes={"metadata.": "v.metadata"},
)

REDEMPTIONS = Catalog(
    source="redemptions r",
    scope="r.project_id = $1",
    key="r.id",
    joins={"customer": _CUSTOMER_OF.format(a="r", c="customer_id")},
    fields={
        "id": Field("r.id"),
        "object": Field("r.object"),
        "date": _date("r.date"),
        "voucher_code": Field("r.voucher_code"),
        "campaign": Field("r.campaign_name"),
        "promotion_tier_id": Field("CASE WHEN r.related_object_type = 'promotion_tier' THEN r.related_object_id END"),
        "customer_id": Field("r.customer_id"),
        "customer_source_id": Field("coalesce(r.body->'customer'->>'source_id', cu.source_id)", joins=("customer",)),
        "customer_name": Field("coalesce(r.body->'customer'->>'name', cu.name)", joins=("customer",)),
        "tracking_id": Field("r.tracking_id"),
        "order_id": Field("r.order_id"),
        "order_amount": Field("(r.body->'order'->>'amount')::bigint", "number"),
        "gift_amount": Field("(r.body->'gift'->>'amount')::bigint", "number"),
        "loyalty_points": Field("(r.body->'loyalty_card'->>'points')::bigint", "number"),
        "result": Field("r.result"),
        "failure_code": Field("r.failure_code"),
        "failure_message": Field("r.body->>'failure_message'"),
        "metadata": Field("r.body->'metadata'"),
    },
    defaults=("id", "object", "voucher_code", "customer_id", "date", "result"),
    orders={
        "id": "r.id",
        "voucher_code": "r.voucher_code",
        "tracking_id": "r.tracking_id",
        "customer_id": "r.customer_id",
        "created_at": "r.date",
    },
    prefixes={"metadata.": "r.body->'metadata'"},
    filter_only={
        "created_at": Field(_ts("r.date"), "date", "r.date"),
        "status": Field("r.status"),
        "campaign_id": Field("r.campaign_id"),
        "parent_id": Field("r.parent_id"),
    },
)


def _address(part: str) -> Field:
    return Field(f"cu.address->>'{part}'")


CUSTOMERS = Catalog(
    source="customers cu",
    scope="cu.project_id = $1",
    key="cu.id",
    fields={
        "name": Field("cu.name"),
        "id": Field("cu.id"),
        "description": Field("cu.description"),
        "email": Field("cu.email"),
        "source_id": Field("cu.source_id"),
        "created_at": _date("cu.created_at"),
        "address_city": _address("city"),
        "address_state": _address("state"),
        "address_line_1": _address("line_1"),
        "address_line_2": _address("line_2"),
        "address_country": _address("country"),
        "address_postal_code": _address("postal_code"),
        **{
            f"redemptions_total_{name}": Field(f"cu.redemptions_total_{name}", "number")
            for name in ("redeemed", "failed", "succeeded", "rolled_back", "rollback_failed", "rollback_succeeded")
        },
        "orders_total_amount": Field("cu.orders_total_amount", "number"),
        "orders_total_count": Field("cu.orders_total_count", "number"),
        "orders_average_amount": Field(
            "CASE WHEN cu.orders_total_count > 0 THEN cu.orders_total_amount / cu.orders_total_count ELSE 0 END",
            "number",
        ),
        "orders_last_order_amount": Field("cu.orders_last_amount", "number"),
        "orders_last_order_date": _date("cu.orders_last_date"),
        "loyalty_points": Field("(cu.loyalty->>'points')::bigint", "number"),
        "loyalty_referred_customers": Field("(cu.loyalty->>'referred_customers')::bigint", "number"),
        "updated_at": _date("cu.updated_at"),
        "phone": Field("cu.phone"),
        "birthday": Field("cu.birthday::text", "text"),
        "metadata": Field("cu.metadata"),
        "birthdate": Field("cu.birthdate::text", "text"),
    },
    defaults=("name", "source_id"),
    orders={
        "name": "cu.name",
        "id": "cu.id",
        "email": "cu.email",
        "source_id": "cu.source_id",
        "created_at": "cu.created_at",
        "updated_at": "cu.updated_at",
    },
    prefixes={"metadata.": "cu.metadata", "address.": "cu.address", "system_metadata.": "cu.system_metadata"},
)

ORDERS = Catalog(
    source="orders o",
    scope="o.project_id = $1",
    key="o.id",
    fields={
        "id": Field("o.id"),
        "source_id": Field("o.source_id"),
        "created_at": _date("o.created_at"),
        "updated_at": _date("o.updated_at"),
        "status": Field("o.status"),
        "amount": Field("o.amount", "number"),
        "discount_amount": Field("o.discount_amount", "number"),
        "items_discount_amount": Field("o.items_discount_amount", "number"),
        "total_discount_amount": Field("o.discount_amount + o.items_discount_amount", "number"),
        "total_amount": Field("greatest(0, o.amount - o.discount_amount - o.items_discount_amount)", "number"),
        "customer_id": Field("o.customer_id"),
        "referrer_id": Field("o.referrer_id"),
        "metadata": Field("o.metadata"),
    },
    defaults=("id", "source_id", "status"),
    orders={"created_at": "o.created_at", "updated_at": "o.updated_at", "status": "o.status"},
    prefixes={"metadata.": "o.metadata"},
)

# One row per code: a publication of several codes (a bulk publish) lists each of them.
PUBLICATIONS = Catalog(
    source="publications p CROSS JOIN LATERAL unnest(p.voucher_codes) WITH ORDINALITY AS pc (code, n)",
    scope="p.project_id = $1",
    key="p.id, pc.n",
    joins={
        "customer": _CUSTOMER_OF.format(a="p", c="customer_id"),
        "campaign": "LEFT JOIN campaigns c ON c.id = p.campaign_id",
    },
    fields={
        "voucher_code": Field("pc.code"),
        "customer_id": Field("p.customer_id"),
        "customer_source_id": Field("cu.source_id", joins=("customer",)),
        "date": _date("p.created_at"),
        "channel": Field("p.channel"),
        "campaign": Field("c.name", joins=("campaign",)),
        "is_winner": Field("NULL::text"),
        "metadata": Field("p.metadata"),
    },
    defaults=("voucher_code", "customer_id", "date", "channel"),
    orders={
        "id": "p.id",
        "voucher_code": "pc.code",
        "tracking_id": "p.customer_id",
        "customer_id": "p.customer_id",
        "created_at": "p.created_at",
        "channel": "p.channel",
    },
    prefixes={"metadata.": "p.metadata"},
    filter_only={"campaign_id": Field("p.campaign_id"), "id": Field("p.id")},
)

POINTS_EXPIRATIONS = Catalog(
    source="loyalty_points_buckets b JOIN vouchers v ON v.id = b.voucher_id",
    scope="b.project_id = $1",
    key="b.id",
    fields={
        "id": Field("b.id"),
        "campaign_id": Field("v.campaign_id"),
        "voucher_id": Field("b.voucher_id"),
        "points": Field("b.points", "number"),
        "status": Field("CASE WHEN b.expires_at <= now() THEN 'EXPIRED' ELSE 'ACTIVE' END"),
        "expires_at": Field("to_char(b.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')", "date", "b.expires_at"),
    },
    defaults=("id", "campaign_id", "voucher_id", "status", "expires_at", "points"),
    orders={"expires_at": "b.expires_at"},
)

_BALANCE = "t.details->'balance'"
VOUCHER_TRANSACTIONS = Catalog(
    source="voucher_transactions t",
    scope="t.project_id = $1",
    key="t.seq",
    fields={
        "id": Field("t.id"),
        "campaign_id": Field("t.campaign_id"),
        "voucher_id": Field("t.voucher_id"),
        "type": Field("t.type"),
        "source_id": Field("t.source_id"),
        "reason": Field("t.reason"),
        "source": Field("t.source"),
        "balance": Field(f"({_BALANCE}->>'balance')::bigint", "number"),
        "amount": Field(f"coalesce({_BALANCE}->>'points', {_BALANCE}->>'amount')::bigint", "number"),
        "related_transaction_id": Field("t.related_transaction_id"),
        "created_at": _date("t.created_at"),
        "details": Field("t.details"),
    },
    defaults=("id", "type", "source_id", "reason", "source", "balance", "amount", "created_at"),
    orders={"created_at": "t.seq"},
)

_PRODUCT_FIELDS = ("id", "name", "price", "image_url", "source_id", "attributes", "created_at")
PRODUCTS = Catalog(
    source="products pr",
    scope="pr.project_id = $1",
    key="pr.id",
    fields={
        "id": Field("pr.id"),
        "name": Field("pr.name"),
        "price": Field("pr.price", "number"),
        "image_url": Field("pr.image_url"),
        "source_id": Field("pr.source_id"),
        "attributes": Field("translate(pr.attributes::text, '[]\"', '')"),
        "metadata": Field("pr.metadata"),
        "created_at": _date("pr.created_at"),
        "updated_at": _date("pr.updated_at"),
    },
    defaults=_PRODUCT_FIELDS,
    orders={"created_at": "pr.created_at", "updated_at": "pr.updated_at", "name": "pr.name"},
    prefixes={"metadata.": "pr.metadata"},
)
SKUS = Catalog(
    source="skus s",
    scope="s.project_id = $1",
    key="s.id",
    fields={
        "id": Field("s.id"),
        "sku": Field("s.sku"),
        "product_id": Field("s.product_id"),
        "currency": Field("s.currency"),
        "price": Field("s.price", "number"),
        "image_url": Field("s.image_url"),
        "source_id": Field("s.source_id"),
        "attributes": Field("s.attributes"),
        "metadata": Field("s.metadata"),
        "created_at": _date("s.created_at"),
        "updated_at": _date("s.updated_at"),
    },
    defaults=("id", "sku", "product_id", "currency", "price", "image_url", "source_id", "attributes", "created_at"),
    orders={"created_at": "s.created_at", "updated_at": "s.updated_at"},
    prefixes={"metadata.": "s.metadata"},
)

CATALOGS: dict[str, Catalog] = {
    "voucher": VOUCHERS,
    "redemption": REDEMPTIONS,
    "customer": CUSTOMERS,
    "order": ORDERS,
    "publication": PUBLICATIONS,
    "points_expiration": POINTS_EXPIRATIONS,
    "voucher_transactions": VOUCHER_TRANSACTIONS,
    "product": PRODUCTS,
    "sku": SKUS,
}

# --- checking parameters ---------------------------------------------------------------------------


def check(exported_object: str, parameters: Any) -> dict[str, Any]:
    """The export's parameters as they will be echoed and run; 400 ``invalid_export_params`` otherwise."""
    catalog = CATALOGS[exported_object]
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InvalidExportParams("Property .parameters should be an object")
    checked: dict[str, Any] = {}
    fields = parameters.get("fields")
    if fields is not None:
        if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
            raise InvalidExportParams("Property .parameters.fields should be a non-empty array of strings")
        for name in fields:
            metadata_key = "metadata." in catalog.prefixes and name.startswith("metadata.") and len(name) > 9
            if name not in catalog.fields and not metadata_key:
                raise InvalidExportParams(
                    f"Property .parameters.fields: {name} is not a field of a {exported_object} export; "
                    f"use {', '.join(catalog.fields)} or metadata.<key>"
                )
        checked["fields"] = list(dict.fromkeys(fields))
    order = parameters.get("order")
    if order not in (None, ""):
        if not isinstance(order, str) or order.removeprefix("-") not in catalog.orders:
            allowed = ", ".join(f"{o}, -{o}" for o in catalog.orders)
            raise InvalidExportParams(f"Property .parameters.order should be one of {allowed}")
        checked["order"] = order
    filters = parameters.get("filters")
    if filters is not None:
        sql_filters.compile_filters(catalog, filters, [])  # refuses what it cannot run
        checked["filters"] = filters
    if exported_object == "voucher" and parameters.get("campaign_id") is not None:
        if not isinstance(parameters["campaign_id"], str):
            raise InvalidExportParams("Property .parameters.campaign_id should be a string")
        checked["campaign_id"] = parameters["campaign_id"]
    return checked


# --- building the query ----------------------------------------------------------------------------


class Query(NamedTuple):
    sql: str
    count_sql: str  # the same rows, neither sorted nor formatted
    args: list[Any]
    fields: list[str]


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"  # standard_conforming_strings: backslashes are plain


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def header(name: str) -> str:
    """A CSV heading as Voucherify writes them (``Voucher Type``, ``Campaign ID``); a metadata key as is."""
    if name.startswith("metadata."):
        return name[len("metadata.") :]
    words = [{"id": "ID", "qr": "QR"}.get(w, w.capitalize()) for w in name.split("_")]
    return " ".join(words)


def build(
    exported_object: str,
    parameters: dict[str, Any],
    scope: dict[str, Any] | None = None,
    *,
    headings: list[str] | None = None,
) -> Query:
    """The ``SELECT`` for COPY (``$1`` = project id) and its row count, with the arguments after ``$1``.

    ``headings`` replaces the CSV headings (one per field), as the ``voucherd export`` command names them.
    """
    catalog = CATALOGS[exported_object]
    args: list[Any] = []
    fields = parameters.get("fields") or list(catalog.defaults)
    columns: list[str] = []
    joins: list[str] = []
    for index, name in enumerate(fields):
        heading = _quote_ident(headings[index] if headings else header(name))
        if name in catalog.fields or name in catalog.filter_only:  # (check() lets API calls name fields only)
            item = catalog.fields.get(name) or catalog.filter_only[name]
            joins.extend(j for j in item.joins if j not in joins)
            columns.append(f"{item.sql} AS {heading}")
        else:
            # A literal, not an argument: the row count (no select list) takes the same arguments.
            key = _quote_literal(name[len("metadata.") :])
            columns.append(f"({catalog.prefixes['metadata.']})->>{key} AS {heading}")
    where = [catalog.scope]
    filters = parameters.get("filters")
    if filters:
        condition = sql_filters.compile_filters(catalog, filters, args, joins)
        if condition:
            where.append(f"({condition})")
    if scope:  # a per-resource export: {"column": a field name, "value": what it must equal}
        args.append(scope["value"])
        where.append(f"{catalog.fields[scope['column']].compared} = ${len(args) + 1}::text")
    if exported_object == "voucher" and parameters.get("campaign_id"):
        args.append(parameters["campaign_id"])
        where.append(f"(v.campaign_id = ${len(args) + 1} OR c.name = ${len(args) + 1})")
    order = parameters.get("order") or ""
    direction = "DESC" if order.startswith("-") else "ASC"
    order_sql = catalog.orders.get(order.removeprefix("-"))
    ordering = ", ".join(
        [f"{order_sql} {direction} NULLS LAST"] * (order_sql is not None)
        + [f"{k.strip()} {direction}" for k in catalog.key.split(",")]
    )
    rows = f"FROM {catalog.source} {' '.join(catalog.joins[j] for j in joins)} WHERE {' AND '.join(where)}"
    return Query(f"SELECT {', '.join(columns)} {rows} ORDER BY {ordering}", f"SELECT count(*) {rows}", args, fields)
