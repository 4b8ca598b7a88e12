"""Guarded counter moves: the Python side of ``lua/apply_counters.lua``.

A redemption is a list of groups (one per redeemable); each group is a list of
ops (``redeemed += 1`` capped by ``quantity``, ``balance -= 500`` floored at 0,
a customer's count capped by a rule's limit, …). The script checks every guard,
then moves every counter and appends the event to the stream, atomically.

Every commit also leaves its outcome under a commit record for ``COMMIT_RECORD_MS``. When the
connection fails after the script was sent, the client cannot know whether it ran; it runs it
again with the same record (voucherd.platform.redis_client), and a script that already ran answers its
first outcome without moving anything. So a commit is never applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import orjson

from voucherd.platform import keys
from voucherd.platform.ids import new_id
from voucherd.platform.scripts import Scripts

Mode = Literal["ALL", "PARTIAL", "LOCK"]
OK = "ok"

# How long a commit's outcome is kept for a retry of it: the retry follows within a connection
# attempt, so a minute is ample; a record is a few dozen bytes.
COMMIT_RECORD_MS = 60_000


class Op(NamedTuple):
    """One counter move. A NamedTuple: a stacked redemption builds dozens per request, three times
    cheaper than a frozen dataclass."""

    key: str
    field: str
    delta: int
    max: int | None = None
    max_field: str = ""
    min: int | None = None
    lock_key: str | None = None
    lock_amounts_key: str | None = None
    reason: str = ""  # reported when this op's guard fails; "" = the group's reason


@dataclass
class Group:
    reason: str
    ops: list[Op]
    event: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingRecord:
    """Where the commit keeps its event readable until the worker persists it (read-your-writes).

    ``home`` is the field holding the event; ``refs`` and the id of each applied group's event
    point at it. See voucherd.pending_redemptions.
    """

    key: str
    home: str
    refs: tuple[str, ...] = ()


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


async def apply(
    scripts: Scripts,
    mode: Mode,
    groups: list[Group],
    *,
    now_ms: int,
    session_key: str = "",
    pending: PendingRecord | None = None,
    lock_until_ms: int = 0,
    stream_key: str | None = None,
    event: dict[str, Any] | None = None,
    commit_id: str = "",
) -> list[str]:
    """Run the groups; return, per group, ``"ok"`` or the reason it did not apply.

    ``commit_id`` names the commit record (the event's id where there is one); a fresh id otherwise.
    """
    if not groups:
        return []
    if mode == "LOCK" and not session_key:
        raise ValueError("LOCK mode needs a session key")
    key_index: dict[str, int] = {}

    def index(key: str | None) -> int:
        if key is None:
            return 0
        if key not in key_index:
            key_index[key] = len(key_index) + 1
        return key_index[key]

    stream = index(stream_key) if stream_key else 0
    planned = []
    for group in groups:
        guarded: list[list[Any]] = []
        adds: list[Any] = []  # key index, field, delta, ...: moves without guard or lock (most counts)
        for op in group.ops:
            if op.max is None and not op.max_field and op.min is None and op.lock_key is None:
                adds += (index(op.key), op.field, str(op.delta))
            else:
                guarded.append(
                    [
                        index(op.key),
                        op.field,
                        str(op.delta),
                        _opt(op.max),
                        op.max_field,
                        _opt(op.min),
                        index(op.lock_key),
                        index(op.lock_amounts_key),
                        op.reason,
                    ]
                )
        planned.append({"reason": group.reason, "ops": guarded, "adds": adds})
    record = index(keys.commit_record(next(iter(key_index), ""), commit_id or new_id("cmt")))
    plan = {
        "mode": mode,
        "now": str(now_ms),
        "session": session_key,
        "until": str(lock_until_ms),
        "stream": stream,
        "record": record,
        "record_ms": str(COMMIT_RECORD_MS),
        "groups": planned,
    }
    common = orjson.dumps(event or {})[1:-1] or b'"request":null'
    if pending is not None and stream:  # read-your-writes (voucherd.checkout.pending_redemptions)
        plan["pending"] = index(pending.key)
        plan["pending_home"] = pending.home
        plan["pending_refs"] = list(pending.refs)
        plan["pending_ids"] = [str(group.event.get("id") or "") for group in groups]
    args: list[Any] = [orjson.dumps(plan), common, *(orjson.dumps(group.event) for group in groups)]
    raw = await scripts.apply_counters(keys=list(key_index), args=args)
    results: list[str] = orjson.loads(raw)
    return results
