"""Redemption events: what the hot path appends to a project's ``redemptions`` stream, and how
the worker writes them behind to PostgreSQL.

An event is one JSON object::

    {"type": "redemption", "project_id", "request_id", "date",
     "parent": {parent redemption body, without related_redemptions} ,
     "applied": [child redemption body, ...],      # appended by the commit script, only what moved
     "customer": {...} | null, "order": {...} | null}

    {"type": "rollback", "project_id", "request_id", "date",
     "parent": {parent rollback body} | null, "applied": [rollback body, ...],
     "rolled_back": [redemption id, ...]}

``finalize`` turns it into the stored objects; the server uses the same function to
answer, so what is answered is exactly what is persisted. Inserts are keyed by the ids
the hot path made, so a replayed message changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

STREAM = "redemptions"


def finalize(event: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The parent (only with two or more children) and the children, linked to each other."""
    children = [dict(child) for child in event.get("applied") or []]
    template = event.get("parent")
    if template is None or len(children) < 2:
        for child in children:
            child["redemption"] = None
        return None, children
    parent = dict(template)
    for child in children:
        child["redemption"] = parent["id"]
    if event.get("type") == "rollback":
        parent["amount"] = sum(int(c.get("amount") or 0) for c in children)
    else:
        parent["related_redemptions"] = {
            "rollbacks": [],
            "redemptions": [{"id": c["id"], "date": c["date"]} for c in children],
        }
    return parent, children


def _row(project_id: str, body: dict[str, Any]) -> tuple[Any, ...]:
    voucher = body.get("voucher") or {}
    order = body.get("order") or {}
    return (
        body["id"],
        project_id,
        body.get("object", "redemption"),
        body.get("redemption"),
        body.get("result", "SUCCESS"),
        body.get("status", "SUCCEEDED"),
        body.get("customer_id"),
        voucher.get("code"),
        voucher.get("campaign_id"),
        voucher.get("campaign"),
        body.get("related_object_type"),
        body.get("related_object_id"),
        order.get("id"),
        body.get("failure_code"),
        body.get("tracking_id"),
        datetime.fromisoformat(body["date"].replace("Z", "+00:00")),
        body,
    )


async def persist(conn: asyncpg.Connection, events: list[dict[str, Any]]) -> int:
    """Write a batch of events in one transaction; return how many rows were new."""
    rows: list[tuple[Any, ...]] = []
    rolled_back: list[tuple[str, str, str, str]] = []  # (project, redemption id, rollback id, date)
    for event in events:
        parent, children = finalize(event)
        project_id = event["project_id"]
        for body in ([parent] if parent else []) + children:
            rows.append(_row(project_id, body))
        if event.get("type") == "rollback":
            for original, body in zip(event.get("rolled_back") or [], children, strict=False):
                rolled_back.append((project_id, original, body["id"], body["date"]))
            if parent and event.get("rolled_back_parent"):
                rolled_back.append((project_id, event["rolled_back_parent"], parent["id"], parent["date"]))
    if not rows:
        return 0
    async with conn.transaction():
        ids = list({r[0] for r in rows})
        before = await conn.fetchval("SELECT count(*) FROM redemptions WHERE id = ANY($1::text[])", ids)
        await conn.executemany(
            """INSERT INTO redemptions (id, project_id, object, parent_id, result, status, customer_id,
                   voucher_code, campaign_id, campaign_name, related_object_type, related_object_id,
                   order_id, failure_code, tracking_id, date, body)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
               ON CONFLICT (id) DO NOTHING""",
            rows,
        )
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
    return len(ids) - int(before)
