"""One Redis round trip for validation: definitions version, customer, and each voucher's live state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from voucherd.checkout import redemption_counters
from voucherd.definitions import voucher_state
from voucherd.platform import keys
from voucherd.platform.ids import new_id
from voucherd.platform.scripts import Scripts

COUNT_NAMES = ("c", "c:d", "c:w", "c:m", "i", "i:d", "i:w", "i:m")


# Rule name -> position of its count among COUNT_NAMES.
_RULE_COUNT = tuple(
    (rule, COUNT_NAMES.index(f"{prefix}:{period}" if period else prefix))
    for rule, (prefix, period) in redemption_counters.RULE_FIELDS.items()
)


def _counts(raw: list[Any]) -> dict[str, int]:
    """The read script's eight counts of a scope, by rule name (absent counts are 0)."""
    if not raw:
        return {}
    if len(raw) != len(COUNT_NAMES):
        raise ValueError(f"the read script returned {len(raw)} counts, not {len(COUNT_NAMES)}")
    values = [int(v) if v else 0 for v in raw]
    return {rule: values[i] for rule, i in _RULE_COUNT}


@dataclass(frozen=True)
class VoucherLive:
    state: dict[str, str]  # the voucher hash (see voucherd.definitions.voucher_state)
    held: dict[str, int]  # amounts reserved by other live sessions: redeemed, balance, points
    counts: dict[str, int] = field(default_factory=dict)  # rule name -> redemption count of its scope

    def int_field(self, name: str, default: int = 0) -> int:
        raw = self.state.get(name, "")
        return int(raw) if raw not in ("", None) else default


@dataclass
class LiveState:
    version: int
    customer_id: str | None
    segments: list[str]
    order_id: str | None
    vouchers: dict[str, VoucherLive | None] = field(default_factory=dict)  # None: no such code
    tier_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    wallet: list[str] = field(default_factory=list)  # codes published to the customer


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[bytes]) -> dict[str, str]:
    # Bulk decoding: a customer's wallet reads hundreds of these hashes per request.
    return dict(zip(map(bytes.decode, flat[::2]), map(bytes.decode, flat[1::2]), strict=True))


async def read(
    redis: aioredis.Redis,
    scripts: Scripts,
    pool: asyncpg.Pool,
    project_id: str,
    codes: list[str],
    *,
    tier_ids: list[str],
    now: datetime,
    session_key: str | None,
    customer: dict[str, Any] | None,
    create_customer: bool,
    order_source_id: str | None = None,
    with_counts: bool = True,
    _reread: bool = True,
) -> LiveState:
    """``create_customer``: give an unknown customer source_id (and order source_id) an id now (redemptions)."""
    customer = customer or {}
    keys_list = [
        keys.definitions_version(project_id),
        keys.customer_segments(project_id),
        keys.customer_ids(project_id),
        keys.order_ids(project_id),
        keys.counters(project_id),
        keys.wallets(project_id),
    ]
    for code in codes:
        keys_list += [
            keys.voucher_state(project_id, code),
            keys.voucher_locks(project_id, code),
            keys.voucher_lock_amounts(project_id, code),
        ]
    proposed = new_id("cust") if create_customer and customer.get("source_id") and not customer.get("id") else ""
    proposed_order = new_id("ord") if create_customer and order_source_id else ""
    reply = await scripts.read_state(
        keys=keys_list,
        args=[
            int(now.timestamp() * 1000),
            session_key or "",
            customer.get("id") or "",
            customer.get("source_id") or "",
            proposed,
            order_source_id or "",
            proposed_order,
            *(redemption_counters.period_suffix(now, p) for p in ("d", "w", "m")),
            len(tier_ids),
            *tier_ids,
        ],
    )
    segments = orjson.loads(reply[2]) if reply[2] else []
    live = LiveState(
        int(reply[0]),
        _text(reply[1]) if reply[1] else None,
        list(segments),
        _text(reply[3]) if reply[3] else None,
        wallet=list(orjson.loads(reply[4])) if reply[4] else [],
    )
    for t, tier_id in enumerate(tier_ids):
        live.tier_counts[tier_id] = _counts(reply[5 + 3 * len(codes) + t])
    reread = False
    for i, code in enumerate(codes):
        state = _pairs(reply[5 + 3 * i])
        held = {k: int(v) for k, v in orjson.loads(reply[6 + 3 * i]).items()}
        counts = _counts(reply[7 + 3 * i]) if with_counts else {}
        if not state:
            # A generated code's first read, or never seen by this Redis (or evicted): its hash is written
            # now (from the generated entry, else PostgreSQL), then Redis has it.
            loaded = await voucher_state.load(redis, pool, project_id, code)
            state = loaded or {}
            # The script read no counts for a code without a hash (their scope is the hash's campaign).
            reread = reread or (_reread and with_counts and loaded is not None)
        if not state or state.get("missing"):
            live.vouchers[code] = None
        else:
            live.vouchers[code] = VoucherLive(state, held, counts)
    if reread:
        return await read(
            redis,
            scripts,
            pool,
            project_id,
            codes,
            tier_ids=tier_ids,
            now=now,
            session_key=session_key,
            customer=customer,
            create_customer=create_customer,
            order_source_id=order_source_id,
            with_counts=with_counts,
            _reread=False,
        )
    return live
