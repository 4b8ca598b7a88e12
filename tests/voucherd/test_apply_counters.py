"""The atomic commit script against a real Redis: guards hold under concurrent bursts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis

from voucherd.checkout import counters
from voucherd.checkout.counters import Group, Op
from voucherd.platform import keys
from voucherd.platform.redis_client import create_redis, scripts_for
from voucherd.platform.settings import Settings

P = "proj_test"
NOW = 1_700_000_000_000
V = keys.voucher_state(P, "CODE")
LOCKS = keys.voucher_locks(P, "CODE")
AMOUNTS = keys.voucher_lock_amounts(P, "CODE")
STREAM = keys.project_stream(P, "redemptions")


def unit(reason: str = "quantity_exceeded", event: dict[str, Any] | None = None, key: str = V) -> Group:
    """Take one unit of a voucher capped by its quantity field, honouring session reservations."""
    return Group(
        reason, [Op(key, "redeemed", 1, max_field="quantity", lock_key=LOCKS, lock_amounts_key=AMOUNTS)], event or {}
    )


def credits(amount: int) -> Group:
    return Group("gift_amount_exceeded", [Op(V, "balance", -amount, min=0, lock_key=LOCKS, lock_amounts_key=AMOUNTS)])


def run(settings: Settings, scenario: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        client = create_redis(settings.redis_url, max_connections=32)
        try:
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_quantity_is_never_exceeded_sequentially(settings: Settings) -> None:
    async def scenario(r: aioredis.Redis) -> list[list[str]]:
        await r.hset(V, mapping={"redeemed": 0, "quantity": 3})
        s = scripts_for(r)
        return [await counters.apply(s, "ALL", [unit()], now_ms=NOW) for _ in range(5)]

    assert run(settings, scenario) == [["ok"]] * 3 + [["quantity_exceeded"]] * 2


def test_a_burst_of_500_redemptions_of_quantity_100_gives_exactly_100(settings: Settings) -> None:
    async def scenario(r: aioredis.Redis) -> tuple[list[list[str]], int, int]:
        await r.hset(V, mapping={"redeemed": 0, "quantity": 100})
        s = scripts_for(r)
        results = await asyncio.gather(
            *(counters.apply(s, "ALL", [unit(event={"n": n})], now_ms=NOW, stream_key=STREAM) for n in range(500))
        )
        return list(results), int(await r.hget(V, "redeemed")), await r.xlen(STREAM)

    results, redeemed, events = run(settings, scenario)
    assert sum(result == ["ok"] for result in results) == 100
    assert redeemed == 100 and events == 100


def test_an_unlimited_voucher_has_no_cap(settings: Settings) -> None:
    async def scenario(r: aioredis.Redis) -> int:
        await r.hset(V, mapping={"redeemed": 0, "quantity": ""})
        s = scripts_for(r)
        await asyncio.gather(*(counters.apply(s, "ALL", [unit()], now_ms=NOW) for _ in range(50)))
        return int(await r.hget(V, "redeemed"))

    assert run(settings, scenario) == 50


def test_gift_balance_never_goes_negative_under_a_burst(settings: Settings) -> None:
    async def scenario(r: aioredis.Redis) -> tuple[int, int]:
        await r.hset(V, mapping={"balance": 1000})
        s = scripts_for(r)
        results = await asyncio.gather(*(counters.apply(s, "ALL", [credits(30)], now_ms=NOW) for _ in range(60)))
        return sum(res == ["ok"] for res in results), int(await r.hget(V, "balance"))

    successes, balance = run(settings, scenario)
    assert successes == 33 and balance == 1000 - 33 * 30 == 10


def test_per_customer_cap_holds_under_a_burst(settings: Settings) -> None:
    customer = keys.project_tag(P) + ":c:cust_1"

    async def scenario(r: aioredis.Redis) -> tuple[int, int]:
        s = scripts_for(r)
        once = Group("redemption_rules_violated", [Op(customer, "v_1", 1, max=1)])
        results = await asyncio.gather(*(counters.apply(s, "ALL", [once], now_ms=NOW) for _ in range(20)))
        return sum(res == ["ok"] for res in results), int(await r.hget(customer, "v_1"))

    assert run(settings, scenario) == (1, 1)


def test_all_mode_moves_nothing_when_one_group_fails(settings: Settings) -> None:
    other = keys.voucher_state(P, "OTHER")

    async def scenario(r: aioredis.Redis) -> tuple[list[str], Any, Any, int]:
        await r.hset(V, mapping={"redeemed": 0, "quantity": 5})
        await r.hset(other, mapping={"redeemed": 1, "quantity": 1})
        groups = [unit(), Group("quantity_exceeded", [Op(other, "redeemed", 1, max_field="quantity")])]
        result = await counters.apply(scripts_for(r), "ALL", groups, now_ms=NOW, stream_key=STREAM)
        return result, await r.hget(V, "redeemed"), await r.hget(other, "redeemed"), await r.xlen(STREAM)

    assert run(settings, scenario) == (["preceding_validation_failed", "quantity_exceeded"], b"0", b"1", 0)


def test_partial_mode_applies_the_groups_that_hold(settings: Settings) -> None:
    other = keys.voucher_state(P, "OTHER")

    async def scenario(r: aioredis.Redis) -> tuple[list[str], Any, dict[str, Any]]:
        await r.hset(V, mapping={"redeemed": 0, "quantity": 5})
        await r.hset(other, mapping={"redeemed": 1, "quantity": 1})
        groups = [
            unit(event={"id": "r_1"}),
            Group("quantity_exceeded", [Op(other, "redeemed", 1, max_field="quantity")], {"id": "r_2"}),
        ]
        result = await counters.apply(
            scripts_for(r), "PARTIAL", groups, now_ms=NOW, stream_key=STREAM, event={"request": "req_1"}
        )
        entries = await r.xrange(STREAM)
        return result, await r.hget(V, "redeemed"), orjson.loads(entries[0][1][b"data"])

    result, redeemed, event = run(settings, scenario)
    assert result == ["ok", "quantity_exceeded"] and redeemed == b"1"
    assert event == {"request": "req_1", "applied": [{"id": "r_1"}]}


def test_the_record_of_a_commit_is_its_stream_event_under_each_applied_id(settings: Settings) -> None:
    """Read-your-writes (issue 17): one HSET beside the XADD; a group that did not apply names nothing."""
    other = keys.voucher_state(P, "OTHER")
    pending = keys.pending_redemptions(P)

    async def scenario(r: aioredis.Redis) -> tuple[list[str], bytes, dict[bytes, bytes]]:
        await r.hset(V, mapping={"redeemed": 0, "quantity": 5})
        await r.hset(other, mapping={"redeemed": 1, "quantity": 1})
        groups = [
            unit(event={"id": "r_1"}),
            Group("quantity_exceeded", [Op(other, "redeemed", 1, max_field="quantity")], {"id": "r_2"}),
            unit(event={"id": "r_3"}),
        ]
        record = counters.PendingRecord(pending, "r_parent", ("rb:r_0",))
        result = await counters.apply(
            scripts_for(r), "PARTIAL", groups, now_ms=NOW, stream_key=STREAM, event={"t": 1}, pending=record
        )
        entries = await r.xrange(STREAM)
        return result, entries[0][1][b"data"], await r.hgetall(pending)

    result, data, stored = run(settings, scenario)
    assert result == ["ok", "quantity_exceeded", "ok"]
    assert stored == {b"r_parent": data, b"rb:r_0": b"@r_parent", b"r_1": b"@r_parent", b"r_3": b"@r_parent"}
    assert orjson.loads(data) == {"t": 1, "applied": [{"id": "r_1"}, {"id": "r_3"}]}


def test_a_refused_commit_records_nothing(settings: Settings) -> None:
    pending = keys.pending_redemptions(P)

    async def scenario(r: aioredis.Redis) -> tuple[list[str], int, int]:
        await r.hset(V, mapping={"redeemed": 1, "quantity": 1})
        record = counters.PendingRecord(pending, "r_parent")
        result = await counters.apply(
            scripts_for(r), "ALL", [unit(event={"id": "r_1"})], now_ms=NOW, stream_key=STREAM, pending=record
        )
        return result, await r.exists(pending), await r.xlen(STREAM)

    assert run(settings, scenario) == (["quantity_exceeded"], 0, 0)


def test_sessions_reserve_units_and_a_redemption_consumes_its_own(settings: Settings) -> None:
    async def scenario(r: aioredis.Redis) -> list[Any]:
        await r.hset(V, mapping={"redeemed": 0, "quantity": 2})
        s = scripts_for(r)

        async def lock(session: str, now: int = NOW) -> list[str]:
            return await counters.apply(s, "LOCK", [unit()], now_ms=now, session_key=session, lock_until_ms=now + 1000)

        steps: list[Any] = [await lock("A"), await lock("B"), await lock("C")]
        steps.append(await counters.apply(s, "ALL", [unit()], now_ms=NOW))  # no session: both units are held
        steps.append(await counters.apply(s, "ALL", [unit()], now_ms=NOW, session_key="A"))  # A redeems its unit
        steps.append(await lock("C"))  # B still holds the other unit
        steps.append(await lock("C", now=NOW + 5000))  # B has expired
        steps.append(int(await r.hget(V, "redeemed")))
        return steps

    ok, exceeded = ["ok"], ["quantity_exceeded"]
    assert run(settings, scenario) == [ok, ok, exceeded, exceeded, ok, exceeded, ok, 1]


def test_reserved_credits_count_against_others(settings: Settings) -> None:
    async def scenario(r: aioredis.Redis) -> list[Any]:
        await r.hset(V, mapping={"balance": 1000})
        s = scripts_for(r)
        steps: list[Any] = [
            await counters.apply(s, "LOCK", [credits(700)], now_ms=NOW, session_key="A", lock_until_ms=NOW + 1000),
            await counters.apply(s, "ALL", [credits(400)], now_ms=NOW),
            await counters.apply(s, "ALL", [credits(300)], now_ms=NOW),
            await counters.apply(s, "ALL", [credits(700)], now_ms=NOW, session_key="A"),
        ]
        steps.append(int(await r.hget(V, "balance")))
        return steps

    assert run(settings, scenario) == [["ok"], ["gift_amount_exceeded"], ["ok"], ["ok"], 0]


def test_sessions_and_redemptions_together_never_exceed_the_quantity(settings: Settings) -> None:
    async def scenario(r: aioredis.Redis) -> int:
        await r.hset(V, mapping={"redeemed": 0, "quantity": 50})
        s = scripts_for(r)
        locks = [
            counters.apply(s, "LOCK", [unit()], now_ms=NOW, session_key=f"s{i}", lock_until_ms=NOW + 60_000)
            for i in range(100)
        ]
        plain = [counters.apply(s, "ALL", [unit()], now_ms=NOW) for _ in range(100)]
        results = await asyncio.gather(*locks, *plain)
        locked = [f"s{i}" for i, res in enumerate(results[:100]) if res == ["ok"]]
        redeemed_plain = sum(res == ["ok"] for res in results[100:])
        assert len(locked) + redeemed_plain == 50
        # Every session holder then redeems: still exactly 50.
        final = await asyncio.gather(*(counters.apply(s, "ALL", [unit()], now_ms=NOW, session_key=k) for k in locked))
        assert all(res == ["ok"] for res in final)
        return int(await r.hget(V, "redeemed"))

    assert run(settings, scenario) == 50


def test_unguarded_counts_move_with_their_group_and_never_under_a_lock(settings: Settings) -> None:
    """Counts without a guard travel as the plan's flat adds: they move exactly when their group applies."""
    counts = keys.counters(P)
    other = keys.voucher_state(P, "OTHER")

    def redemption(key: str, event_id: str) -> Group:
        return Group(
            "quantity_exceeded",
            [
                Op(key, "redeemed", 1, max_field="quantity", lock_key=LOCKS, lock_amounts_key=AMOUNTS),
                Op(counts, "i:camp", 1),
                Op(counts, f"i:{event_id}:m:2026-12", 1),
                Op(counts, "c:cust_1:camp", 1, max=2, reason="redemption_rules_violated"),
                Op(key, "redeemed_total", 3),  # unguarded, on the guarded op's own hash
            ],
            {"id": event_id},
        )

    async def scenario(r: aioredis.Redis) -> list[Any]:
        await r.hset(V, mapping={"redeemed": 0, "quantity": 5})
        await r.hset(other, mapping={"redeemed": 1, "quantity": 1})
        s = scripts_for(r)
        steps: list[Any] = []
        steps.append(
            await counters.apply(s, "LOCK", [redemption(V, "a")], now_ms=NOW, session_key="S", lock_until_ms=NOW + 1)
        )
        steps.append(await r.hgetall(counts))  # a lock reserves the unit and counts nothing
        steps.append(await counters.apply(s, "ALL", [redemption(V, "b"), redemption(other, "c")], now_ms=NOW))
        steps.append(await r.hgetall(counts))  # the other code is used up: nothing of either group moves
        steps.append(await counters.apply(s, "PARTIAL", [redemption(V, "d"), redemption(other, "e")], now_ms=NOW))
        steps.append(await counters.apply(s, "PARTIAL", [redemption(V, "f"), redemption(V, "g")], now_ms=NOW))
        steps.append(await r.hgetall(counts))
        steps.append(await r.hmget(V, ["redeemed", "redeemed_total"]))
        return steps

    steps = run(settings, scenario)
    assert steps[0] == ["ok"] and steps[1] == {}
    assert steps[2] == ["preceding_validation_failed", "quantity_exceeded"] and steps[3] == {}
    assert steps[4] == ["ok", "quantity_exceeded"]
    # The per-customer cap of 2 lets d and f count and refuses g, whose unguarded counts then stay put.
    assert steps[5] == ["ok", "redemption_rules_violated"]
    assert steps[6] == {b"i:camp": b"2", b"i:d:m:2026-12": b"1", b"i:f:m:2026-12": b"1", b"c:cust_1:camp": b"2"}
    assert steps[7] == [b"2", b"6"]
