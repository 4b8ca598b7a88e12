"""The worker's write-behind of redemption events (voucherd/checkout/redemption_records.py says
what an event holds): one transaction per batch, keyed by the ids the hot path made, so a replayed
message changes nothing.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from voucherd.checkout.redemption_records import finalize, merge_named
from voucherd.jobs import webhooks
from voucherd.loyalty import earning as loyalty_earning
from voucherd.loyalty import referrals


class OriginalNotPersisted(Exception):
    """A rollback arrived before the redemption it rolls back is in PostgreSQL: try it again later.

    Since read-your-writes (issue 17) a redemption can be rolled back before the worker persisted it,
    and another worker may still hold that redemption's batch uncommitted. Refusing the rollback's
    batch (and trying it later) keeps the two consistent whichever commits first.
    """


# One jsonb parameter, [[project id, body], ...]: the columns are the body's own fields, read by PostgreSQL.
# Seventeen parallel arrays (a tuple per row, a date parsed in Python) cost the worker about a third of its
# time in asyncpg's array encoders on a stacked redemption's six rows.
_INSERT = """
INSERT INTO redemptions (id, project_id, object, parent_id, result, status, customer_id, voucher_code, campaign_id,
                         campaign_name, related_object_type, related_object_id, order_id, failure_code, tracking_id,
                         date, body)
SELECT b ->> 'id', e ->> 0, COALESCE(b ->> 'object', 'redemption'), b ->> 'redemption',
       COALESCE(b ->> 'result', 'SUCCESS'), COALESCE(b ->> 'status', 'SUCCEEDED'), b ->> 'customer_id',
       b -> 'voucher' ->> 'code', b -> 'voucher' ->> 'campaign_id', b -> 'voucher' ->> 'campaign',
       b ->> 'related_object_type', b ->> 'related_object_id', b -> 'order' ->> 'id', b ->> 'failure_code',
       b ->> 'tracking_id', (b ->> 'date')::timestamptz, b
FROM jsonb_array_elements($1::jsonb) AS e, LATERAL (SELECT e -> 1 AS b) AS row_body
ON CONFLICT (id) DO NOTHING
RETURNING id
"""


async def persist(conn: asyncpg.Connection, events: list[dict[str, Any]]) -> int:
    """Write a batch of events in one transaction; return how many rows were new.

    Only rows inserted now move PostgreSQL's copies of the counters (voucher redeemed
    quantity and balances, customer summaries), so a replayed message changes nothing.
    """
    rows: dict[str, tuple[str, dict[str, Any]]] = {}
    bodies: dict[str, dict[str, Any]] = {}
    rolled_back: list[tuple[str, str, str, str]] = []  # (project, redemption id, rollback id, date)
    customers: dict[tuple[str, str], dict[str, Any]] = {}
    orders: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        parent, children = finalize(event)
        project_id = event["project_id"]
        for body in ([parent] if parent else []) + children:
            rows[body["id"]] = (project_id, body)
            bodies[body["id"]] = body | {"_project_id": project_id}
        if event.get("type") == "rollback":
            for original, body in zip(event.get("rolled_back") or [], children, strict=False):
                rolled_back.append((project_id, original, body["id"], body["date"]))
            if parent and event.get("rolled_back_parent"):
                rolled_back.append((project_id, event["rolled_back_parent"], parent["id"], parent["date"]))
        if event.get("customer") and event["customer"].get("id"):
            key = (project_id, event["customer"]["id"])
            customers[key] = merge_named(customers.get(key), event["customer"])
        if event.get("order") and event["order"].get("id"):
            key = (project_id, event["order"]["id"])
            orders[key] = merge_named(orders.get(key), event["order"])
    if not rows:
        return 0
    async with conn.transaction():
        inserted = {r["id"] for r in await conn.fetch(_INSERT, list(rows.values()))}
        await _upsert_customers(conn, customers)
        await _upsert_orders(conn, orders)
        await _apply_counters(conn, [bodies[i] for i in inserted])
        # Webhook outbox (issue 7): in this transaction, so webhooks describe only committed redemptions.
        await webhooks.enqueue_redemptions(conn, [bodies[i] for i in inserted])
        # Loyalty (issue 9): credits/points transactions and order.paid earning triggers, in this transaction.
        await loyalty_earning.record_redemptions(conn, [bodies[i] for i in inserted])
        # Referrals (issue 9): a referral code redeemed by a referee converts once (rewards follow in the
        # loyalty task, rung after this batch); keyed by program and referee, so a replay converts nothing.
        await referrals.record_redemptions(conn, [bodies[i] for i in inserted])
        if rolled_back:
            await conn.executemany(
                """UPDATE redemptions
                   SET status = 'ROLLED_BACK',
                       body = body || jsonb_build_object(
                           'status', 'ROLLED_BACK',
                           'related_redemptions',
                           COALESCE(body -> 'related_redemptions', '{}'::jsonb) || jsonb_build_object(
                               'rollbacks',
                               COALESCE(body #> '{related_redemptions,rollbacks}', '[]'::jsonb)
                                 || jsonb_build_array(jsonb_build_object('id', $3::text, 'date', $4::text))))
                   WHERE project_id = $1 AND id = $2 AND status <> 'ROLLED_BACK'""",
                rolled_back,
            )
            await _require_rolled_back(conn, rolled_back)
    return len(inserted)


async def _require_rolled_back(conn: asyncpg.Connection, rolled_back: list[tuple[str, str, str, str]]) -> None:
    missing = await conn.fetch(
        """SELECT r.id FROM unnest($1::text[], $2::text[]) AS r(project_id, id)
           WHERE NOT EXISTS (SELECT 1 FROM redemptions x
                             WHERE x.project_id = r.project_id AND x.id = r.id AND x.status = 'ROLLED_BACK')""",
        [p for p, *_ in rolled_back],
        [i for _, i, *_ in rolled_back],
    )
    if missing:
        raise OriginalNotPersisted("not yet persisted: " + ", ".join(r["id"] for r in missing[:5]))


async def _upsert_customers(conn: asyncpg.Connection, customers: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Customers the hot path named (id minted there for a new source_id) exist in PostgreSQL afterwards."""
    if not customers:
        return
    # executemany sends the batch's rows in one pipeline: one round trip, not one per row.
    await conn.executemany(
        """INSERT INTO customers (project_id, id, source_id, name, email, metadata)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT DO NOTHING""",
        [
            (
                project_id,
                customer_id,
                customer.get("source_id"),
                customer.get("name"),
                customer.get("email"),
                customer.get("metadata") or {},
            )
            for (project_id, customer_id), customer in sorted(customers.items(), key=lambda kv: kv[0])
        ],
    )


async def _upsert_orders(conn: asyncpg.Connection, orders: dict[tuple[str, str], dict[str, Any]]) -> None:
    if not orders:
        return
    await conn.executemany(
        """INSERT INTO orders (project_id, id, source_id, status, amount, initial_amount, discount_amount,
                               items_discount_amount, items, metadata, customer_id)
           VALUES ($1, $2, $3, 'PAID', $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (project_id, id) DO UPDATE SET status = 'PAID', amount = EXCLUDED.amount,
               discount_amount = EXCLUDED.discount_amount,
               items_discount_amount = EXCLUDED.items_discount_amount, updated_at = now()""",
        [
            (
                project_id,
                order_id,
                order.get("source_id"),
                order.get("amount"),
                order.get("initial_amount"),
                order.get("discount_amount") or 0,
                order.get("items_discount_amount") or 0,
                order.get("items") or [],
                order.get("metadata") or {},
                order.get("customer_id"),
            )
            for (project_id, order_id), order in sorted(orders.items(), key=lambda kv: kv[0])
        ],
    )


async def _apply_counters(conn: asyncpg.Connection, new_bodies: list[dict[str, Any]]) -> None:
    """PostgreSQL's copies of the live counters follow each new redemption and rollback.

    The batch's moves are summed per voucher and per customer first (the updates only add), and
    the rows are updated in key order, so two workers' batches lock shared rows in the same order.
    """
    vouchers: dict[tuple[str, str], list[int]] = {}  # (project, code) -> [quantity, credits, points]
    customers: dict[tuple[str, str], list[int]] = {}  # (project, id) -> [redeemed, rolled back, credits, points]
    for body in new_bodies:
        voucher = body.get("voucher") or {}
        code = voucher.get("code")
        if not code or body.get("result") != "SUCCESS" or body.get("related_object_type") == "redemption":
            continue
        sign = -1 if body.get("object") == "redemption_rollback" else 1
        credits = abs(int((body.get("gift") or {}).get("amount") or 0))
        points = abs(int((body.get("loyalty_card") or {}).get("points") or 0))
        moved = vouchers.setdefault((body["_project_id"], code), [0, 0, 0])
        moved[0] += sign
        moved[1] += sign * credits
        moved[2] += sign * points
        if body.get("customer_id"):
            summary = customers.setdefault((body["_project_id"], body["customer_id"]), [0, 0, 0, 0])
            summary[0 if sign > 0 else 1] += 1
            summary[2] += sign * credits
            summary[3] += sign * points
    if vouchers:
        await conn.executemany(
            """UPDATE vouchers
               SET redeemed_quantity = redeemed_quantity + $3,
                   gift_balance = CASE WHEN gift_balance IS NULL THEN NULL ELSE gift_balance - $4 END,
                   loyalty_balance = CASE WHEN loyalty_balance IS NULL THEN NULL ELSE loyalty_balance - $5 END,
                   redeemed_points = redeemed_points + $5
               WHERE project_id = $1 AND code = $2""",
            [(project_id, code, *moved) for (project_id, code), moved in sorted(vouchers.items())],
        )
    if customers:
        await conn.executemany(
            """UPDATE customers
               SET redemptions_total_redeemed = redemptions_total_redeemed + $3,
                   redemptions_total_succeeded = redemptions_total_succeeded + $3,
                   redemptions_total_rolled_back = redemptions_total_rolled_back + $4,
                   redemptions_total_rollback_succeeded = redemptions_total_rollback_succeeded + $4,
                   gift_redeemed_amount = gift_redeemed_amount + $5,
                   loyalty_redeemed_points = loyalty_redeemed_points + $6
               WHERE project_id = $1 AND id = $2""",
            [(project_id, customer_id, *summary) for (project_id, customer_id), summary in sorted(customers.items())],
        )
