"""Read-your-writes for redemptions: what the hot path acknowledged and the worker has not persisted yet.

The commit script (``lua/apply_counters.lua``) that moves the counters and appends an event to the
project's ``redemptions`` stream also writes that same event, already encoded, to the project's
pending HASH (``keys.pending_redemptions``), in the same atomic step: the event's *home* field holds
its JSON and every other id it answers for holds ``@<home>``. So a counter, its event and its
readable record never diverge. After the worker has committed an event to PostgreSQL it deletes the
event's fields (``forget``); a worker that dies in between replays the message, which changes
nothing in PostgreSQL and deletes the fields then.

Fields of a redemption event: the parent id (home), each applied child's id, and ``ord:<id>`` of its
order (the last event naming it wins the field; deleting it with an older event is harmless, as that
event's commit already wrote the order). Fields of a rollback
event: ``rb:<id rolled back>`` of the redemption whose guard it took (home), ``rb:<id>`` of every other
redemption it rolls back, and the id of each rollback (and of the parent rollback).

Readers ask Redis first and PostgreSQL second, and PostgreSQL's row wins where both have one. The
order matters: the worker deletes the fields only after its transaction committed, so a miss in
Redis means PostgreSQL already answers for the id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from voucherd.checkout.counters import PendingRecord
from voucherd.checkout.redemption_records import expand, finalize
from voucherd.platform import keys

ROLLBACK_PREFIX = "rb:"
ORDER_PREFIX = "ord:"  # the order a redemption named (its id), until the worker has written it


def _home_and_refs(event: dict[str, Any]) -> tuple[str, list[str]]:
    if event.get("type") == "rollback":
        rolled_back = [str(i) for i in event.get("rolled_back") or []]
        guard = str(event.get("rolled_back_parent") or rolled_back[0])  # the id its once-guard names
        refs = [ROLLBACK_PREFIX + i for i in rolled_back if i != guard]
        if event.get("parent"):
            refs.append(str(event["parent"]["id"]))
        return ROLLBACK_PREFIX + guard, refs
    order = event.get("order") or {}
    return str(event["parent"]["id"]), [ORDER_PREFIX + str(order["id"])] if order.get("id") else []


def _recorded(event: dict[str, Any]) -> bool:
    if not event.get("project_id"):
        return False
    if event.get("type") == "rollback":
        return bool(event.get("rolled_back") or event.get("rolled_back_parent"))
    return event.get("type") == "redemption" and bool((event.get("parent") or {}).get("id"))


def record(event: dict[str, Any]) -> PendingRecord:
    """Where the commit of ``event`` (not yet carrying ``applied``) keeps it readable."""
    home, refs = _home_and_refs(event)
    return PendingRecord(keys.pending_redemptions(event["project_id"]), home, tuple(refs))


def fields(event: dict[str, Any]) -> list[str]:
    """Every field the commit of ``event`` wrote: what the worker deletes once it is persisted."""
    home, refs = _home_and_refs(event)
    return [home, *refs, *(str(child["id"]) for child in event.get("applied") or [])]


async def forget(redis: aioredis.Redis, events: Iterable[dict[str, Any]]) -> None:
    """Delete the pending fields of events PostgreSQL now holds (one round trip)."""
    by_project: dict[str, list[str]] = {}
    for event in events:
        if _recorded(event):
            by_project.setdefault(event["project_id"], []).extend(fields(event))
    if not by_project:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for project_id, names in by_project.items():
            pipe.hdel(keys.pending_redemptions(project_id), *names)
        await pipe.execute()


@dataclass
class Pending:
    """The pending events found, indexed by the ids their bodies answer for."""

    redemptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # redemption id -> body
    rollbacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # rollback id -> body
    rolled_back: dict[str, dict[str, Any]] = field(default_factory=dict)  # redemption id -> its rollback body
    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event: dict[str, Any]) -> None:
        event = expand(event)  # readers of ``events`` look into whole bodies
        self.events.append(event)
        parent, children = finalize(event)
        if event.get("type") == "rollback":
            for body in ([parent] if parent else []) + children:
                self.rollbacks[body["id"]] = body
            # As the worker pairs them (jobs/write_behind.persist).
            for original, body in zip(event.get("rolled_back") or [], children, strict=False):
                self.rolled_back[original] = body
            if parent and event.get("rolled_back_parent"):
                self.rolled_back[event["rolled_back_parent"]] = parent
            return
        for body in ([parent] if parent else []) + children:
            self.redemptions[body["id"]] = body

    def body(self, redemption_id: str) -> dict[str, Any] | None:
        """The pending redemption or rollback with this id, its rollback applied."""
        found = self.redemptions.get(redemption_id)
        if found is not None:
            return self.overlay(found)
        return self.rollbacks.get(redemption_id)

    def overlay(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` as the worker will leave it once a pending rollback of it is persisted."""
        rollback = self.rolled_back.get(body["id"])
        if rollback is None or body.get("status") == "ROLLED_BACK":
            return body
        related = dict(body.get("related_redemptions") or {})
        related["rollbacks"] = [*(related.get("rollbacks") or []), {"id": rollback["id"], "date": rollback["date"]}]
        return {**body, "status": "ROLLED_BACK", "related_redemptions": related}


def _bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _add(pending: Pending, values: Iterable[bytes]) -> None:
    for value in values:
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            pending.add(event)


async def read(redis: aioredis.Redis, project_id: str, ids: Iterable[str]) -> Pending:
    """The pending events that name any of ``ids`` (as a redemption, a rollback or a rolled-back id)."""
    names = list(dict.fromkeys(n for i in ids for n in (i, ROLLBACK_PREFIX + i)))
    pending = Pending()
    if not names:
        return pending
    key = keys.pending_redemptions(project_id)
    found = [v for v in map(_bytes, await redis.hmget(key, names)) if v is not None]
    homes = sorted({v[1:].decode() for v in found if v.startswith(b"@")})
    events = [v for v in found if not v.startswith(b"@")]
    if homes:
        events += [v for v in map(_bytes, await redis.hmget(key, homes)) if v is not None]
    _add(pending, events)
    return pending


async def read_event(redis: aioredis.Redis, project_id: str, names: list[str]) -> dict[str, Any] | None:
    """The pending event the first present field of ``names`` names (for a customer or an order)."""
    key = keys.pending_redemptions(project_id)
    found = next((v for v in map(_bytes, await redis.hmget(key, names)) if v is not None), None)
    if found is not None and found.startswith(b"@"):
        found = _bytes(await redis.hget(key, found[1:].decode()))
    pending = Pending()
    _add(pending, [found] if found is not None else [])
    return pending.events[0] if pending.events else None


async def read_all(redis: aioredis.Redis, project_id: str) -> Pending:
    """Every pending event of the project (for lists: the cost grows with the worker's backlog)."""
    pending = Pending()
    values = [_bytes(v) for v in await redis.hvals(keys.pending_redemptions(project_id))]
    _add(pending, (v for v in values if v is not None and not v.startswith(b"@")))
    return pending
