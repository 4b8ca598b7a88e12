"""Read-your-writes (issue 17): every id a redemption answers with can be read, listed and rolled back
at once, against a live server whose worker is not running; once the worker has run, PostgreSQL holds
exactly what the answers said, and every read answers the same as before."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx2
import pytest
import redis

from tests.conftest import LiveServer, ProjectKeys, drain_worker
from voucherd.platform import db, keys
from voucherd.platform.settings import Settings

GIFT = 1_000_000
DISCOUNT = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}


@pytest.fixture
def two_process_server(settings: Settings) -> Any:
    """Two server processes, so a redemption and its rollback may be answered by different ones."""
    import os
    import subprocess
    import sys

    from tests.processes import stop_group, wait_healthy
    from voucherd.platform.localstack import free_port

    port = free_port()
    served = settings.with_(port=port, server_processes=2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "voucherd.cli", "serve"],
        env={**os.environ, **served.to_env()},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    try:
        yield LiveServer(url, served)
    finally:
        stop_group(proc)


def _client(server: LiveServer, project: ProjectKeys) -> httpx2.Client:
    return httpx2.Client(base_url=server.url, headers=project.headers, timeout=30)


def _create_voucher(client: httpx2.Client, code: str, body: dict[str, Any]) -> None:
    response = client.post(f"/v1/vouchers/{code}", json=body)
    assert response.status_code == 200, response.text


def _query(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await db.connect(settings.database_url)  # with the json codecs
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def _pending_count(settings: Settings, project_id: str) -> int:
    """How many events Redis still keeps readable for the worker to persist."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return sum(not v.startswith(b"@") for v in client.hvals(keys.pending_redemptions(project_id)))
    finally:
        client.close()


@pytest.mark.slow
def test_1000_redemptions_rolled_back_at_once_never_404_and_postgres_ends_with_the_answers(
    two_process_server: LiveServer, project: ProjectKeys
) -> None:
    server = two_process_server
    redeem_body = {
        "redeemables": [{"object": "voucher", "id": "CARD", "gift": {"credits": 100}}],
        "customer": {"source_id": "payer"},
        "order": {"amount": 5000},
    }
    redeemed: list[dict[str, Any]] = []
    rolled: list[dict[str, Any]] = []
    # One connection each: granian may hand them to different processes; all state is in Redis anyway.
    with _client(server, project) as redeemer, _client(server, project) as roller:
        _create_voucher(redeemer, "CARD", {"type": "GIFT_VOUCHER", "gift": {"amount": GIFT}})
        for _ in range(1000):
            answer = redeemer.post("/v1/redemptions", json=redeem_body)
            assert answer.status_code == 200, answer.text
            redemption = answer.json()["redemptions"][0]
            rollback = roller.post(f"/v1/redemptions/{redemption['id']}/rollback", json={"reason": "payment failed"})
            assert rollback.status_code == 200, rollback.text  # never a 404
            redeemed.append(redemption)
            rolled.append(rollback.json())
        # Nothing was persisted (the worker is not running), yet every read agrees with the answers.
        assert _query(server.settings, "SELECT id FROM redemptions") == []
        again = roller.post(f"/v1/redemptions/{redeemed[0]['id']}/rollback")
        assert again.status_code == 400 and again.json()["key"] == "already_rolled_back", again.text
        shown = redeemer.get(f"/v1/redemptions/{redeemed[-1]['id']}").json()
        assert shown["status"] == "ROLLED_BACK"
        assert shown["related_redemptions"]["rollbacks"] == [{"id": rolled[-1]["id"], "date": rolled[-1]["date"]}]
        card = redeemer.get("/v1/vouchers/CARD").json()
        assert card["gift"]["balance"] == GIFT
        before = redeemer.get("/v1/redemptions", params={"limit": 100, "page": 3}).json()
        assert before["total"] == 1000

        drain_worker(server.settings)

        after = redeemer.get("/v1/redemptions", params={"limit": 100, "page": 3}).json()
        assert after == before
        assert redeemer.get(f"/v1/redemptions/{redeemed[-1]['id']}").json() == shown

    settings = server.settings
    stored = {r["id"]: r for r in _query(settings, "SELECT id, object, parent_id, status, body FROM redemptions")}
    assert len(stored) == 2000
    for redemption, rollback in zip(redeemed, rolled, strict=True):
        row = stored[redemption["id"]]
        assert row["object"] == "redemption" and row["status"] == "ROLLED_BACK"
        assert {k: v for k, v in row["body"].items() if k not in ("status", "related_redemptions")} == {
            k: v for k, v in redemption.items() if k not in ("status", "related_redemptions")
        }
        assert row["body"]["related_redemptions"]["rollbacks"] == [{"id": rollback["id"], "date": rollback["date"]}]
        assert stored[rollback["id"]]["body"] == rollback
        assert stored[rollback["id"]]["parent_id"] == redemption["id"]
    (voucher,) = _query(settings, "SELECT redeemed_quantity, gift_balance FROM vouchers WHERE code = 'CARD'")
    assert (voucher["redeemed_quantity"], voucher["gift_balance"]) == (0, GIFT)
    (customer,) = _query(
        settings,
        "SELECT id, redemptions_total_redeemed, redemptions_total_rolled_back, gift_redeemed_amount "
        "FROM customers WHERE source_id = 'payer'",
    )
    assert customer["id"] == redeemed[0]["customer_id"]
    assert (
        customer["redemptions_total_redeemed"],
        customer["redemptions_total_rolled_back"],
        customer["gift_redeemed_amount"],
    ) == (1000, 1000, 0)
    client = redis.Redis.from_url(settings.redis_url)
    assert client.exists(keys.pending_redemptions(project.project_id)) == 0  # every field forgotten
    client.close()


def test_reads_and_lists_before_the_worker_ran_match_those_after(live_server: LiveServer, project: ProjectKeys) -> None:
    with _client(live_server, project) as client:
        for code in ("ALPHA", "BETA"):
            _create_voucher(
                client, code, {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}
            )

        def redeem(code: str, customer: str) -> dict[str, Any]:
            body = {
                "redeemables": [{"object": "voucher", "id": code}],
                "customer": {"source_id": customer},
                "order": {"amount": 1000},
            }
            answer = client.post("/v1/redemptions", json=body)
            assert answer.status_code == 200, answer.text
            redemption: dict[str, Any] = answer.json()["redemptions"][0]
            return redemption

        # Some persisted, some not: the lists merge both sources.
        old = redeem("ALPHA", "alice")
        drain_worker(live_server.settings)
        fresh = [redeem("ALPHA", "alice"), redeem("BETA", "alice"), redeem("ALPHA", "bob")]
        assert _pending_count(live_server.settings, project.project_id) == 3

        for redemption in fresh:
            got = client.get(f"/v1/redemptions/{redemption['id']}")
            assert got.status_code == 200, got.text
            assert got.json() == redemption
        rollback = client.post(f"/v1/redemptions/{fresh[0]['id']}/rollback").json()
        shown = client.get(f"/v1/redemptions/{fresh[0]['id']}").json()
        assert shown["status"] == "ROLLED_BACK"
        assert shown["related_redemptions"]["rollbacks"] == [{"id": rollback["id"], "date": rollback["date"]}]
        assert client.get(f"/v1/redemptions/{rollback['id']}").json() == rollback
        # A persisted redemption rolled back while the worker is away shows its rollback too.
        client.post(f"/v1/redemptions/{old['id']}/rollback").raise_for_status()
        assert client.get(f"/v1/redemptions/{old['id']}").json()["status"] == "ROLLED_BACK"

        alice = fresh[0]["customer_id"]
        queries: list[tuple[str, dict[str, Any]]] = [
            ("/v1/redemptions", {}),
            ("/v1/redemptions", {"order": "created_at"}),
            ("/v1/redemptions", {"limit": 2, "page": 1}),
            ("/v1/redemptions", {"limit": 2, "page": 2}),
            ("/v1/redemptions", {"limit": 3, "page": 2, "order": "created_at"}),
            ("/v1/redemptions", {"customer": alice}),
            ("/v1/redemptions", {"filters[voucher_code][conditions][$is]": "ALPHA"}),
            ("/v1/redemptions", {"voucher_code": "BETA", "customer": alice}),
            ("/v1/redemptions", {"result": "SUCCESS"}),
            ("/v1/redemptions", {"result": "FAILURE"}),
            ("/v1/vouchers/ALPHA/redemption", {}),
            ("/v1/vouchers/BETA/redemption", {}),
        ]
        before = [client.get(path, params=params).json() for path, params in queries]
        everything = before[0]
        assert everything["total"] == 4
        assert [r["id"] for r in everything["redemptions"]] == [r["id"] for r in reversed([old, *fresh])]
        assert [r["id"] for r in before[2]["redemptions"] + before[3]["redemptions"]] == [
            r["id"] for r in everything["redemptions"]
        ]
        assert [r["id"] for r in before[5]["redemptions"]] == [fresh[1]["id"], fresh[0]["id"], old["id"]]
        assert before[6]["total"] == 3 and before[7]["total"] == 1 and before[9]["total"] == 0
        alpha = before[10]
        assert (alpha["total"], alpha["redeemed_quantity"]) == (3, 1)  # three made, two rolled back
        assert {e["id"] for e in alpha["redemption_entries"]} == {old["id"], fresh[0]["id"], fresh[2]["id"]}

        drain_worker(live_server.settings)
        assert _pending_count(live_server.settings, project.project_id) == 0
        after = [client.get(path, params=params).json() for path, params in queries]
        assert after == before
        for redemption in fresh[1:]:
            assert client.get(f"/v1/redemptions/{redemption['id']}").json() == redemption


def test_a_stack_is_readable_and_rolled_back_by_its_parent_before_the_worker_ran(
    live_server: LiveServer, project: ProjectKeys
) -> None:
    with _client(live_server, project) as client:
        for code in ("ONE", "TWO"):
            _create_voucher(
                client, code, {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}
            )
        answer = client.post(
            "/v1/redemptions",
            json={
                "redeemables": [{"object": "voucher", "id": "ONE"}, {"object": "voucher", "id": "TWO"}],
                "order": {"amount": 1000},
            },
        )
        assert answer.status_code == 200, answer.text
        parent, children = answer.json()["parent_redemption"], answer.json()["redemptions"]
        assert client.get(f"/v1/redemptions/{parent['id']}").json() == parent
        for child in children:
            assert client.get(f"/v1/redemptions/{child['id']}").json() == child
        listed = client.get("/v1/redemptions", params={"filters[parent_redemption_id][conditions][$is]": parent["id"]})
        assert sorted(r["id"] for r in listed.json()["redemptions"]) == sorted(c["id"] for c in children)

        alone = client.post(f"/v1/redemptions/{children[0]['id']}/rollback")
        assert alone.status_code == 400 and alone.json()["key"] == "invalid_redemption", alone.text
        not_a_parent = client.post(f"/v1/redemptions/{children[0]['id']}/rollbacks")
        assert not_a_parent.status_code == 400, not_a_parent.text
        rolled = client.post(f"/v1/redemptions/{parent['id']}/rollbacks")
        assert rolled.status_code == 200, rolled.text
        twice = client.post(f"/v1/redemptions/{parent['id']}/rollbacks")
        assert twice.status_code == 400 and twice.json()["key"] == "already_rolled_back", twice.text
        shown = [client.get(f"/v1/redemptions/{r['id']}").json() for r in [parent, *children]]
        assert {s["status"] for s in shown} == {"ROLLED_BACK"}
        for code in ("ONE", "TWO"):
            assert client.get(f"/v1/vouchers/{code}").json()["redemption"]["redeemed_quantity"] == 0

        drain_worker(live_server.settings)
        assert [client.get(f"/v1/redemptions/{r['id']}").json() for r in [parent, *children]] == shown
    rows = _query(live_server.settings, "SELECT object, status FROM redemptions ORDER BY object, status")
    assert [(r["object"], r["status"]) for r in rows] == [("redemption", "ROLLED_BACK")] * 3 + [
        ("redemption_rollback", "SUCCEEDED")
    ] * 3
    vouchers = _query(live_server.settings, "SELECT redeemed_quantity FROM vouchers ORDER BY code")
    assert [v["redeemed_quantity"] for v in vouchers] == [0, 0]


def test_an_unknown_id_is_still_404(live_server: LiveServer, project: ProjectKeys) -> None:
    with _client(live_server, project) as client:
        for path in ("/v1/redemptions/r_missing", "/v1/redemptions/r_missing/rollback"):
            response = client.get(path) if not path.endswith("rollback") else client.post(path)
            assert response.status_code == 404 and response.json()["key"] == "not_found", response.text


def test_the_customer_and_order_a_redemption_named_are_readable_before_the_worker_ran(
    live_server: LiveServer, project: ProjectKeys
) -> None:
    with _client(live_server, project) as client:
        _create_voucher(client, "CARD", {"type": "GIFT_VOUCHER", "gift": {"amount": 10_000}})
        body = {
            "redeemables": [{"object": "voucher", "id": "CARD", "gift": {"credits": 300}}],
            "customer": {"source_id": "carol", "name": "Carol", "email": "carol@example.com"},
            "order": {"source_id": "order-1", "amount": 5000},
        }
        answer = client.post("/v1/redemptions", json=body)
        assert answer.status_code == 200, answer.text
        first = answer.json()["redemptions"][0]
        customer_id, order_id = first["customer_id"], first["order"]["id"]
        # Named again by the ids the answer gave: the same customer, and the order referenced by id.
        again = client.post(
            "/v1/redemptions",
            json={**body, "customer": {"id": customer_id}, "order": {"id": order_id, "amount": 5000}},
        )
        assert again.status_code == 200, again.text
        assert again.json()["redemptions"][0]["customer_id"] == customer_id
        assert again.json()["order"]["id"] == order_id
        client.post(f"/v1/redemptions/{first['id']}/rollback").raise_for_status()

        by_source = client.get("/v1/customers/carol")
        assert by_source.status_code == 200, by_source.text
        customer = by_source.json()
        assert client.get(f"/v1/customers/{customer_id}").json() == customer
        assert (customer["id"], customer["source_id"], customer["name"]) == (customer_id, "carol", "Carol")
        orders = [client.get(f"/v1/orders/{ref}") for ref in ("order-1", order_id)]
        assert [o.status_code for o in orders] == [200, 200], orders[0].text
        order = orders[0].json()
        assert orders[1].json() == order
        assert (order["id"], order["source_id"], order["status"]) == (order_id, "order-1", "PAID")
        assert order["amount"] == 5000
        assert client.get("/v1/customers/nobody").status_code == 404
        assert client.get("/v1/orders/ord_nothing").status_code == 404

        drain_worker(live_server.settings)
        moments = ("created_at", "updated_at")
        persisted = client.get(f"/v1/customers/{customer_id}").json()
        assert {k: v for k, v in persisted.items() if k not in moments} == {
            k: v for k, v in customer.items() if k not in moments
        }
        assert persisted["summary"]["redemptions"]["total_redeemed"] == 2
        assert persisted["summary"]["redemptions"]["total_rolled_back"] == 1
        assert persisted["summary"]["redemptions"]["gift"]["redeemed_amount"] == 300
        stored_order = client.get(f"/v1/orders/{order_id}").json()
        assert {k: v for k, v in stored_order.items() if k not in moments} == {
            k: v for k, v in order.items() if k not in moments
        }

        # A customer PostgreSQL has: its summary counts the pending redemptions and rollbacks at once.
        third = client.post("/v1/redemptions", json={**body, "customer": {"source_id": "carol"}}).json()
        client.post(f"/v1/redemptions/{third['redemptions'][0]['id']}/rollback").raise_for_status()
        client.post("/v1/redemptions", json={**body, "customer": {"id": customer_id}}).raise_for_status()
        summary = client.get("/v1/customers/carol").json()["summary"]["redemptions"]
        assert (summary["total_redeemed"], summary["total_rolled_back"]) == (4, 2)
        assert summary["gift"]["redeemed_amount"] == 600
        before = client.get(f"/v1/customers/{customer_id}").json()
        drain_worker(live_server.settings)
        assert client.get(f"/v1/customers/{customer_id}").json() == before


@pytest.mark.slow
def test_two_running_workers_persist_redemptions_rolled_back_at_once_consistently(
    two_process_server: LiveServer, project: ProjectKeys, tmp_path: Any
) -> None:
    """With workers racing the rollbacks, a rollback may reach a worker before its redemption is committed
    by the other: it is retried, and PostgreSQL still ends with exactly the answers."""
    import os
    import subprocess
    import sys
    import time

    from tests.processes import stop_group

    server = two_process_server
    worker_settings = server.settings.with_(worker_claim_idle_ms=300, log_format="text", log_level="INFO")
    env = {**os.environ, **worker_settings.to_env()}
    log = tmp_path / "workers.log"
    with open(log, "ab") as out:
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "worker"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            for _ in range(2)
        ]
    try:
        answers: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        with _client(server, project) as client:
            _create_voucher(client, "RACE", DISCOUNT)
            for i in range(300):
                body = {"redeemables": [{"object": "voucher", "id": "RACE"}], "customer": {"source_id": f"c{i % 7}"}}
                redemption = client.post("/v1/redemptions", json=body).json()["redemptions"][0]
                rollback = None
                if i % 3:  # two in three rolled back at once, the others kept
                    answer = client.post(f"/v1/redemptions/{redemption['id']}/rollback")
                    assert answer.status_code == 200, answer.text
                    rollback = answer.json()
                answers.append((redemption, rollback))
        deadline = time.monotonic() + 90
        while _pending_count(server.settings, project.project_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _pending_count(server.settings, project.project_id) == 0, log.read_text()[-3000:]
    finally:
        for worker in workers:
            stop_group(worker)
    stored = {r["id"]: r for r in _query(server.settings, "SELECT id, status, body FROM redemptions")}
    assert len(stored) == 300 + 200
    for redemption, rollback in answers:
        row = stored[redemption["id"]]
        if rollback is None:
            assert row["status"] == "SUCCEEDED" and row["body"] == redemption
        else:
            assert row["status"] == "ROLLED_BACK"
            assert row["body"]["related_redemptions"]["rollbacks"] == [{"id": rollback["id"], "date": rollback["date"]}]
            assert stored[rollback["id"]]["body"] == rollback
    (voucher,) = _query(server.settings, "SELECT redeemed_quantity FROM vouchers WHERE code = 'RACE'")
    assert voucher["redeemed_quantity"] == 100
    totals = _query(
        server.settings,
        "SELECT sum(redemptions_total_redeemed) AS r, sum(redemptions_total_rolled_back) AS b FROM customers",
    )
    assert (totals[0]["r"], totals[0]["b"]) == (300, 200)
