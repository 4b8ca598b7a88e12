"""Codes of a large generation: recorded as generated entries, made state hashes on their first read.

``EAGER_STATE_MAX`` is lowered so that a few hundred codes take the large-generation path.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from voucherd.definitions import campaigns
from voucherd.platform import keys
from voucherd.platform.redis_client import create_redis
from voucherd.platform.scripts import SOURCES
from voucherd.platform.settings import Settings

DISCOUNT = {"type": "AMOUNT", "amount_off": 1000}
ORDER = {"order": {"amount": 10000}}


@pytest.fixture(autouse=True)
def lazy_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaigns, "EAGER_STATE_MAX", 0)


def generate(client: TestClient, project: ProjectKeys, settings: Settings, count: int, **voucher: Any) -> list[dict]:
    body = {
        "name": "Lazy",
        "voucher": {"type": "DISCOUNT_VOUCHER", "discount": DISCOUNT, "code_config": {"length": 8}, **voucher},
        "vouchers_count": count,
    }
    created = client.post("/v1/campaigns", json=body, headers=project.headers)
    assert created.status_code == 200, created.text
    drain_worker(settings)
    campaign = client.get(f"/v1/campaigns/{created.json()['id']}", headers=project.headers).json()
    assert campaign["creation_status"] == "DONE" and campaign["vouchers_count"] == count
    listing = client.get(
        "/v1/vouchers", params={"campaign_id": campaign["id"], "limit": 100}, headers=project.headers
    ).json()
    vouchers: list[dict] = listing["vouchers"]
    return vouchers


def validate(client: TestClient, project: ProjectKeys, code: str, **extra: Any) -> dict[str, Any]:
    body = {"redeemables": [{"object": "voucher", "id": code}], **ORDER, **extra}
    answer = client.post("/v1/validations", json=body, headers=project.headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_generated_codes_have_no_hash_until_read_then_the_same_hash(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    vouchers = generate(client, project, settings, 300)
    r = redis.Redis.from_url(settings.redis_url)
    pid = project.project_id
    assert not any(r.exists(keys.voucher_state(pid, v["code"])) for v in vouchers)
    assert all(r.hexists(keys.generated_codes(pid, v["code"]), v["code"]) for v in vouchers)
    for voucher in vouchers:
        assert validate(client, project, voucher["code"])["valid"] is True
    for voucher in vouchers:
        state = r.hgetall(keys.voucher_state(pid, voucher["code"]))
        assert state[b"id"] == voucher["id"].encode() and state[b"redeemed"] == b"0"
        assert state[b"campaign_id"] == voucher["campaign_id"].encode() and state[b"active"] == b"1"
        assert orjson.loads(state[b"def"]) == {"metadata": {}, "category_id": None, "is_referral_code": False}
        assert not r.hexists(keys.generated_codes(pid, voucher["code"]), voucher["code"])


def test_a_generated_code_keeps_its_redemption_limit(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    code = generate(client, project, settings, 20, redemption={"quantity": 1})[-1]["code"]
    body = {"redeemables": [{"object": "voucher", "id": code}], **ORDER}
    first = client.post("/v1/redemptions", json=body, headers=project.headers)
    assert first.status_code == 200 and first.json()["redemptions"][0]["result"] == "SUCCESS", first.text
    assert_error(client.post("/v1/redemptions", json=body, headers=project.headers), 400, "quantity_exceeded")
    assert validate(client, project, code)["valid"] is False


def test_changes_before_the_first_read_are_seen(client: TestClient, project: ProjectKeys, settings: Settings) -> None:
    """A change to a code whose hash was never written drops its entry: the first read is the changed row."""
    vouchers = generate(client, project, settings, 30)
    disabled, updated, deleted, tagged = (v["code"] for v in vouchers[:4])
    h = project.headers
    bulk = client.post("/v1/vouchers/metadata/async", headers=h, json={"codes": [tagged], "metadata": {"batch": 7}})
    assert bulk.status_code == 202, bulk.text
    assert client.post(f"/v1/vouchers/{disabled}/disable", headers=h).status_code == 200
    put = client.put(f"/v1/vouchers/{updated}", json={"metadata": {"tier": "gold"}}, headers=h)
    assert put.status_code == 200, put.text
    assert client.delete(f"/v1/vouchers/{deleted}", params={"force": "true"}, headers=h).status_code == 204
    drain_worker(settings)
    r = redis.Redis.from_url(settings.redis_url)
    pid = project.project_id
    # A change writes the hash from the entry, then patches it; a deletion drops both.
    assert r.hget(keys.voucher_state(pid, disabled), "active") == b"0"
    assert not r.hexists(keys.generated_codes(pid, disabled), disabled)
    assert not r.exists(keys.voucher_state(pid, deleted)) and not r.hexists(keys.generated_codes(pid, deleted), deleted)
    assert validate(client, project, disabled)["valid"] is False
    assert validate(client, project, updated)["valid"] is True
    state = r.hgetall(keys.voucher_state(pid, updated))
    assert orjson.loads(state[b"def"])["metadata"] == {"tier": "gold"}
    assert orjson.loads(r.hget(keys.voucher_state(pid, tagged), "def") or b"{}")["metadata"] == {"batch": 7}
    assert r.hget(keys.voucher_state(pid, tagged), "redeemed") == b"0"
    missing = client.post(
        "/v1/validations", json={"redeemables": [{"object": "voucher", "id": deleted}], **ORDER}, headers=h
    )
    assert missing.status_code in (200, 404) and missing.json().get("valid") is not True


def test_the_careful_script_keeps_a_loaded_hash_and_replaces_a_marker(settings: Settings) -> None:
    """What voucher_put_generated.lua does where a key is already there (the batch path for such batches)."""
    pid = "proj_careful"
    loaded, marker, stale, absent = (keys.voucher_state(pid, code) for code in ("L-1", "M-1", "S-1", "A-1"))
    prefix = keys.voucher_state(pid, "")

    async def body() -> dict[str, Any]:
        r = create_redis(settings.redis_url)
        try:
            await r.hset(loaded, mapping={"id": "v_loaded", "redeemed": "1"})
            await r.hset(marker, mapping={"missing": "1"})
            await r.hset(stale, mapping={"id": "v_other", "redeemed": "7"})
            bucket = keys.generated_bucket(pid, 0)
            script = r.register_script(SOURCES["voucher_put_generated"])
            template = orjson.dumps(["active", "1", "redeemed", "0"])
            recorded = await script(
                keys=[keys.generated_templates(pid), bucket, loaded, marker, stale, absent],
                args=["t1", template, 1, len(prefix), 4, "v_loaded", "v_marker", "v_stale", "v_absent"],
            )
            return {
                "recorded": recorded,
                "entries": await r.hgetall(bucket),
                "loaded": await r.hgetall(loaded),
                "marker": await r.exists(marker),
                "stale": await r.exists(stale),
            }
        finally:
            await r.aclose()

    got = asyncio.run(body())
    assert got["recorded"] == 3
    assert got["entries"] == {b"M-1": b"t1|v_marker", b"S-1": b"t1|v_stale", b"A-1": b"t1|v_absent"}
    assert got["loaded"] == {b"id": b"v_loaded", b"redeemed": b"1"}  # the redemption made after the load stays
    assert got["marker"] == 0 and got["stale"] == 0


def test_generated_gift_cards_with_dates_and_a_limit(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    """Every shared column kind COPY writes in binary (text, boolean, integer, bigint, timestamptz) reads back."""
    h = project.headers
    body = {
        "name": "Cards",
        "voucher": {"type": "GIFT_VOUCHER", "gift": {"amount": 5000}, "redemption": {"quantity": 3}},
    }
    campaign = client.post("/v1/campaigns", json=body, headers=h).json()
    dates = {"start_date": "2020-01-01T00:00:00Z", "expiration_date": "2090-06-30T12:30:00.250Z"}
    more = client.post(f"/v1/campaigns/{campaign['id']}/vouchers", params={"vouchers_count": 25}, json=dates, headers=h)
    assert more.status_code == 202, more.text
    drain_worker(settings)
    listing = client.get("/v1/vouchers", params={"campaign_id": campaign["id"], "limit": 5}, headers=h).json()
    assert listing["total"] == 25
    code = listing["vouchers"][0]["code"]
    voucher = client.get(f"/v1/vouchers/{code}", headers=h).json()
    assert voucher["gift"]["amount"] == 5000 and voucher["gift"]["balance"] == 5000
    assert voucher["start_date"].startswith("2020-01-01T00:00:00")
    assert voucher["expiration_date"].startswith("2090-06-30T12:30:00.25")
    assert voucher["redemption"]["quantity"] == 3 and voucher["active"] is True
    assert validate(client, project, code)["valid"] is True
    state = redis.Redis.from_url(settings.redis_url).hgetall(keys.voucher_state(project.project_id, code))
    assert state[b"balance"] == b"5000" and state[b"quantity"] == b"3" and state[b"exp"] == b"3802509000250"


def test_a_campaign_limit_holds_on_a_codes_first_read(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    """A code read for the first time has its campaign's counts in the answer (live_state reads again)."""
    h = project.headers
    vouchers = generate(client, project, settings, 10)
    rule = client.post(
        "/v1/validation-rules",
        json={
            "name": "once",
            "rules": {"1": {"name": "redemption.count.per_customer", "conditions": {"$less_than": [1]}}},
        },
        headers=h,
    )
    assert rule.status_code == 200, rule.text
    assigned = client.post(
        f"/v1/validation-rules/{rule.json()['id']}/assignments",
        json={"related_object_type": "campaign", "related_object_id": vouchers[0]["campaign_id"]},
        headers=h,
    )
    assert assigned.status_code == 200, assigned.text
    alice = {"customer": {"source_id": "alice"}}
    first = client.post(
        "/v1/redemptions",
        json={"redeemables": [{"object": "voucher", "id": vouchers[0]["code"]}], **ORDER, **alice},
        headers=h,
    )
    assert first.status_code == 200 and first.json()["redemptions"][0]["result"] == "SUCCESS", first.text
    assert validate(client, project, vouchers[1]["code"], **alice)["valid"] is False
    assert validate(client, project, vouchers[2]["code"], customer={"source_id": "bob"})["valid"] is True


def test_a_missing_marker_under_a_new_code_is_replaced(
    client: TestClient, project: ProjectKeys, settings: Settings
) -> None:
    """A code looked up (unknown) just before it was generated: its short-lived "missing" marker must not hide
    it once the generation is done (the batch takes voucher_put_generated.lua, which decides per code)."""
    h = project.headers
    probe = client.post(
        "/v1/validations", json={"redeemables": [{"object": "voucher", "id": "ABA"}], **ORDER}, headers=h
    )
    assert probe.json().get("valid") is not True
    r = redis.Redis.from_url(settings.redis_url)
    assert r.hget(keys.voucher_state(project.project_id, "ABA"), "missing") == b"1"
    vouchers = generate(client, project, settings, 8, code_config={"length": 3, "charset": "AB"})
    assert "ABA" in {v["code"] for v in vouchers}
    assert validate(client, project, "ABA")["valid"] is True
    assert all(validate(client, project, v["code"])["valid"] for v in vouchers)
