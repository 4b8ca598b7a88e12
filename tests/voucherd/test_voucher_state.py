"""definitions.voucher_state against real Redis and PostgreSQL: reload once, never clobber, remember unknowns."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys
from voucherd.definitions import voucher_state
from voucherd.platform import db, keys
from voucherd.platform.redis_client import create_redis
from voucherd.platform.scripts import SOURCES
from voucherd.platform.settings import Settings

T = TypeVar("T")


def run(settings: Settings, body: Callable[[aioredis.Redis, Any], Awaitable[T]]) -> T:
    async def main() -> T:
        pool = await db.create_pool(settings.database_url, 1, 2)
        client = create_redis(settings.redis_url)
        try:
            return await body(client, pool)
        finally:
            await client.aclose()
            await pool.close()

    return asyncio.run(main())


def make_gift(client: TestClient, project: ProjectKeys, code: str = "G-1") -> dict[str, Any]:
    response = client.post(
        f"/v1/vouchers/{code}",
        json={"type": "GIFT_VOUCHER", "gift": {"amount": 900}, "metadata": {"tier": "gold"}},
        headers=project.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_state_fields_of_a_new_voucher(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    voucher = make_gift(client, project)

    async def body(r: aioredis.Redis, pool: Any) -> dict[str, str] | None:
        return await voucher_state.load(r, pool, project.project_id, "G-1")

    state = run(settings, body)
    assert state is not None
    assert state["id"] == voucher["id"] and state["type"] == "GIFT_VOUCHER" and state["active"] == "1"
    assert state["balance"] == "900" and state["amount"] == "900" and state["redeemed"] == "0"
    assert state["quantity"] == "" and state["holder_id"] == "" and state["campaign_id"] == ""
    definition = orjson.loads(state["def"])
    assert definition["metadata"] == {"tier": "gold"} and definition["gift"] == {"effect": "APPLY_TO_ORDER"}
    assert definition["is_referral_code"] is False and definition["category_id"] is None


def test_missing_key_is_loaded_back_from_postgres_once(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    make_gift(client, project)

    async def body(r: aioredis.Redis, pool: Any) -> tuple[Any, ...]:
        key = keys.voucher_state(project.project_id, "G-1")
        await r.delete(key)
        loaded = await voucher_state.load(r, pool, project.project_id, "G-1")
        # A counter moves in Redis; a second load must read it, not PostgreSQL's stale value.
        await r.hincrby(key, "balance", -400)
        again = await voucher_state.load(r, pool, project.project_id, "G-1")
        return loaded, again

    loaded, again = run(settings, body)
    assert loaded is not None and loaded["balance"] == "900"
    assert again is not None and again["balance"] == "500"


def test_reload_never_clobbers_a_key_that_appeared_meanwhile(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    make_gift(client, project)

    async def body(r: aioredis.Redis, pool: Any) -> tuple[int, bytes | None]:
        key = keys.voucher_state(project.project_id, "G-1")
        await r.hincrby(key, "balance", -100)  # the live hash has moved on
        script = r.register_script(SOURCES["voucher_put"])
        written = await script(keys=[key], args=["if_absent", 0, "balance", "900"])
        return int(written), await r.hget(key, "balance")

    written, balance = run(settings, body)
    assert written == 0 and balance == b"800"


def test_unknown_codes_are_remembered_briefly(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    async def body(r: aioredis.Redis, pool: Any) -> tuple[Any, ...]:
        key = keys.voucher_state(project.project_id, "BOGUS")
        first = await voucher_state.load(r, pool, project.project_id, "BOGUS")
        marker = await r.hgetall(key)
        ttl = await r.pttl(key)
        # The marker answers without PostgreSQL: even a closed pool is not touched.
        second = await voucher_state.load(r, pool, project.project_id, "BOGUS")
        return first, marker, ttl, second

    first, marker, ttl, second = run(settings, body)
    assert first is None and second is None
    assert marker == {b"missing": b"1"} and 0 < ttl <= voucher_state.MISSING_TTL_MS

    # Creating the code replaces the marker at once.
    make_gift(client, project, "BOGUS")

    async def after(r: aioredis.Redis, pool: Any) -> dict[str, str] | None:
        return await voucher_state.load(r, pool, project.project_id, "BOGUS")

    state = run(settings, after)
    assert state is not None and state["balance"] == "900"
    assert run(settings, lambda r, pool: r.pttl(keys.voucher_state(project.project_id, "BOGUS"))) == -1


def test_binned_vouchers_do_not_load(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    make_gift(client, project)
    assert client.delete("/v1/vouchers/G-1", headers=project.headers).status_code == 204

    async def body(r: aioredis.Redis, pool: Any) -> dict[str, str] | None:
        return await voucher_state.load(r, pool, project.project_id, "G-1")

    assert run(settings, body) is None


def test_patch_leaves_an_absent_key_absent(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    make_gift(client, project)
    run(settings, lambda r, pool: r.delete(keys.voucher_state(project.project_id, "G-1")))
    client.post("/v1/vouchers/G-1/disable", headers=project.headers)
    assert run(settings, lambda r, pool: r.exists(keys.voucher_state(project.project_id, "G-1"))) == 0

    async def body(r: aioredis.Redis, pool: Any) -> dict[str, str] | None:
        return await voucher_state.load(r, pool, project.project_id, "G-1")

    state = run(settings, body)
    assert state is not None and state["active"] == "0"


def test_balance_script_guards_zero(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    make_gift(client, project)

    async def body(r: aioredis.Redis, pool: Any) -> tuple[Any, ...]:
        key = keys.voucher_state(project.project_id, "G-1")
        script = r.register_script(SOURCES["voucher_balance"])
        over = await script(keys=[key], args=["balance", "amount", -1000])
        ok = await script(keys=[key], args=["balance", "amount", -900])
        absent = await script(keys=[keys.voucher_state(project.project_id, "NONE")], args=["balance", "amount", 1])
        return over, ok, absent

    over, ok, absent = run(settings, body)
    assert over == [-1, 900] and ok == [1, 0, 900] and absent == [0]


def test_bulk_writes_keep_a_hash_loaded_from_the_same_row(settings: Settings, project: ProjectKeys) -> None:
    """A validation between a generated chunk's commit and its Redis batch loads the new code's hash from
    PostgreSQL; a redemption may then move it. The batch must not reset it, but it still replaces a
    "missing" marker and a hash of another voucher."""
    pid = project.project_id

    async def body(r: aioredis.Redis, _pool: Any) -> dict[str, dict[bytes, bytes]]:
        loaded, marker, other, absent = (keys.voucher_state(pid, code) for code in ("L-1", "M-1", "O-1", "A-1"))
        await r.hset(loaded, mapping={"id": "v_loaded", "active": "1", "redeemed": "1"})  # loaded, then redeemed
        await r.hset(marker, mapping={"missing": "1"})
        await r.hset(other, mapping={"id": "v_someone_else", "redeemed": "7"})
        many = r.register_script(SOURCES["voucher_put_many"])
        written = await many(
            keys=[loaded, marker, other, absent],
            args=["2", "active", "1", "redeemed", "0", "v_loaded", "v_marker", "v_other", "v_absent"],
        )
        rows = r.register_script(SOURCES["voucher_put_rows"])
        row_keys = [keys.voucher_state(pid, code) for code in ("RL-1", "RN-1")]
        await r.hset(row_keys[0], mapping={"id": "v_row", "redeemed": "2"})
        row_written = await rows(
            keys=row_keys,
            args=["replace", *(orjson.dumps({"id": i, "redeemed": "0"}).decode() for i in ("v_row", "v_new"))],
        )
        assert (written, row_written) == (3, 1)
        return {k: await r.hgetall(keys.voucher_state(pid, k)) for k in ("L-1", "M-1", "O-1", "A-1", "RL-1", "RN-1")}

    state = run(settings, body)
    assert state["L-1"][b"redeemed"] == b"1"  # the redemption made after the load stays
    assert state["M-1"] == {b"id": b"v_marker", b"active": b"1", b"redeemed": b"0"}
    assert state["O-1"][b"id"] == b"v_other" and state["O-1"][b"redeemed"] == b"0"
    assert state["A-1"][b"id"] == b"v_absent"
    assert state["RL-1"][b"redeemed"] == b"2" and state["RN-1"] == {b"id": b"v_new", b"redeemed": b"0"}
