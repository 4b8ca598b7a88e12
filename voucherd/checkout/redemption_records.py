"""Redemption events: what the hot path appends to a project's ``redemptions`` stream (the worker
writes them behind to PostgreSQL: voucherd/jobs/write_behind.py).

An event is one JSON object::

    {"type": "redemption", "project_id", "request_id", "date",
     "shared": {the fields every body below shares; "order" and "customer" null},
     "parent": {the parent's own fields, without related_redemptions},
     "applied": [a child's own fields, ...],       # appended by the commit script, only what moved
     "customer": {...} | null, "order": {...} | null}

Each body is ``shared`` with the event's order and customer, then its own fields (``expand``): the
order and customer, the larger part of an event, are carried once instead of once per body, which
the commit script, the stream, the pending record and the worker all pay for. Events written
before ``shared`` existed carry whole bodies and expand to themselves.

    {"type": "rollback", "project_id", "request_id", "date",
     "parent": {parent rollback body} | null, "applied": [rollback body, ...],
     "rolled_back": [redemption id, ...]}

``finalize`` turns it into the stored objects; the server uses the same function to
answer, so what is answered is exactly what is persisted. Inserts are keyed by the ids
the hot path made, so a replayed message changes nothing.
"""

from __future__ import annotations

from typing import Any

STREAM = "redemptions"


def expand(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with whole bodies: ``shared`` (with the order and customer) under each one's own fields."""
    shared = event.get("shared")
    if not isinstance(shared, dict):
        return event
    base = {**shared, "order": event.get("order"), "customer": event.get("customer")}
    whole = {k: v for k, v in event.items() if k != "shared"}
    if isinstance(event.get("parent"), dict):
        whole["parent"] = {**base, **event["parent"]}
    whole["applied"] = [{**base, **child} for child in event.get("applied") or []]
    return whole


def finalize(event: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The parent (only with two or more children) and the children, linked to each other."""
    event = expand(event)
    children = [dict(child) for child in event.get("applied") or []]
    template = event.get("parent")
    if event.get("type") == "rollback":
        # A rollback's ``redemption`` names what it rolled back; a stacked one has a parent rollback.
        if template is None or not children:
            return None, children
        parent = dict(template)
        parent["amount"] = sum(int(c.get("amount") or 0) for c in children)
        return parent, children
    if template is None or len(children) < 2:
        for child in children:
            child["redemption"] = None
        return None, children
    parent = dict(template)
    for child in children:
        child["redemption"] = parent["id"]
    parent["related_redemptions"] = {
        "rollbacks": [],
        "redemptions": [{"id": c["id"], "date": c["date"]} for c in children],
    }
    return parent, children


def merge_named(earlier: dict[str, Any] | None, later: dict[str, Any]) -> dict[str, Any]:
    """A customer or order named by several events of a batch: a later event naming it only by id keeps
    what an earlier one told (its source_id, name, email)."""
    return {**(earlier or {}), **{k: v for k, v in later.items() if v not in (None, "", {})}}
