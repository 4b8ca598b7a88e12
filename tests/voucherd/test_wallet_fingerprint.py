"""The wallet_state script's fingerprint against a real Redis: any change of a wallet code's state hash
changes it, nothing else does (voucherd/checkout/lua/wallet_state.lua)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson
import redis.asyncio as aioredis

from voucherd.checkout.wallet_cache import _code_keys
from voucherd.platform import keys
from voucherd.platform.redis_client import create_redis, scripts_for
from voucherd.platform.settings import Settings

P = "proj_fingerprint"
NOW = 1_700_000_000_000
CODES = ["W-1", "W-2", "W-3"]
WALLET = orjson.dumps(CODES)
DEF = orjson.dumps({"metadata": {"tier": "gold", "note": "x" * 80}, "category_id": None}).decode()


async def fingerprint(r: aioredis.Redis) -> str:
    base = [keys.definitions_version(P), keys.customer_segments(P), keys.customer_ids(P), keys.wallets(P)]
    reply = await scripts_for(r).wallet_state(
        keys=[*base, *_code_keys(P, CODES)],
        args=[NOW, "cust_1", "", hashlib.sha1(WALLET).hexdigest(), "", "1", "1"],
    )
    assert reply[4] == b"fresh"
    return str(reply[5].decode())


def run(settings: Settings, scenario: Any) -> Any:
    async def main() -> Any:
        client = create_redis(settings.redis_url)
        try:
            await client.hset(keys.wallets(P), "cust_1", WALLET)
            for i, code in enumerate(CODES):
                state = {"id": f"v_{i}", "campaign_id": "camp_1", "active": "1", "quantity": "1", "redeemed": "0"}
                # W-3 holds a long value, which Redis stores as a hash table rather than a listpack.
                await client.hset(keys.voucher_state(P, code), mapping=state | ({"def": DEF} if i == 2 else {}))
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_every_change_of_a_code_changes_the_fingerprint_and_none_other(settings: Settings) -> None:
    async def scenario(r: aioredis.Redis) -> list[str]:
        seen = [await fingerprint(r)]
        seen.append(await fingerprint(r))  # unchanged: the same
        await r.hincrby(keys.voucher_state(P, "W-1"), "redeemed", 1)
        seen.append(await fingerprint(r))
        await r.hincrby(keys.voucher_state(P, "W-1"), "redeemed", -1)  # back to the first content
        seen.append(await fingerprint(r))
        await r.hset(keys.voucher_state(P, "W-3"), "def", DEF.replace("gold", "gole"))  # one byte, hash table
        seen.append(await fingerprint(r))
        await r.hset(keys.voucher_state(P, "W-2"), "holder_id", "cust_9")  # a new field
        seen.append(await fingerprint(r))
        await r.delete(keys.voucher_state(P, "W-2"))  # gone
        seen.append(await fingerprint(r))
        await r.zadd(keys.voucher_locks(P, "W-1"), {"ssn_1": NOW + 60_000})  # held by a live session
        await r.hset(keys.voucher_lock_amounts(P, "W-1"), "ssn_1", orjson.dumps({"redeemed": 1}))
        seen.append(await fingerprint(r))
        return seen

    seen = run(settings, scenario)
    assert seen[0] == seen[1]
    assert seen[2] != seen[0]
    assert seen[3] == seen[0]  # the fingerprint follows the content, not the history of writes
    distinct = [seen[0], seen[2], *seen[4:]]
    assert len(set(distinct)) == len(distinct)  # every change is a new fingerprint
