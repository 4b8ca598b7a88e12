"""Loyalty tiers over HTTP: definitions, a member's tier by balance, tier-specific earning and reward prices."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error, drain_worker
from tests.server.test_loyalty import add_points, join, make_program, member, ok
from voucherd.platform.settings import Settings


@pytest.fixture
def h(project: ProjectKeys) -> dict[str, str]:
    return project.headers


def setup_tiers(client: TestClient, h: dict[str, str]) -> dict[str, Any]:
    program = make_program(client, h)
    rule = ok(
        client.post(
            f"/v1/loyalties/{program['id']}/earning-rules",
            json=[{"event": "order.paid", "loyalty": {"type": "FIXED", "points": 10}}],
            headers=h,
        )
    )[0]
    reward = ok(client.post("/v1/rewards", json={"name": "Mug", "parameters": {"product": {"id": "p"}}}, headers=h))
    assignment = ok(
        client.post(
            f"/v1/loyalties/{program['id']}/rewards",
            json=[{"reward": reward["id"], "parameters": {"loyalty": {"points": 100}}}],
            headers=h,
        )
    )[0]
    tiers = ok(
        client.post(
            f"/v1/loyalties/{program['id']}/tiers",
            json=[
                {"name": "Silver", "points": {"from": 0, "to": 199}},
                {
                    "name": "Gold",
                    "points": {"from": 200},
                    "earning_rules": {rule["id"]: {"type": "MULTIPLY", "multiplier": 2.5}},
                    "rewards": {assignment["id"]: {"type": "CUSTOM", "points": 60}},
                    "metadata": {"color": "gold"},
                },
            ],
            headers=h,
        )
    )
    return {"program": program, "rule": rule, "reward": reward, "assignment": assignment, "tiers": tiers}


def test_tiers_definitions(client: TestClient, h: dict[str, str]) -> None:
    setup = setup_tiers(client, h)
    program: dict[str, Any] = setup["program"]
    silver, gold = setup["tiers"]
    assert gold["object"] == "loyalty_tier" and gold["id"].startswith("ltr_")
    assert gold["points"] == {"from": 200, "to": None} and gold["config"] == {"points": {"from": 200, "to": None}}
    assert gold["campaign_id"] == program["id"] and gold["metadata"] == {"color": "gold"}
    listed = ok(client.get(f"/v1/loyalties/{program['id']}/tiers", headers=h))
    assert listed["object"] == "list" and listed["data_ref"] == "data" and listed["total"] == 2
    assert [t["name"] for t in listed["data"]] == ["Silver", "Gold"]
    newest = ok(client.get(f"/v1/loyalties/{program['id']}/tiers?order=-created_at&limit=1", headers=h))
    assert [t["name"] for t in newest["data"]] == ["Gold"]
    assert ok(client.get(f"/v1/loyalties/{program['id']}/tiers/{silver['id']}", headers=h)) == silver
    rules = ok(client.get(f"/v1/loyalties/{program['id']}/tiers/{gold['id']}/earning-rules", headers=h))
    assert [r["id"] for r in rules["data"]] == [setup["rule"]["id"]]
    assert ok(client.get(f"/v1/loyalties/{program['id']}/tiers/{silver['id']}/earning-rules", headers=h))["total"] == 0
    rewards = ok(client.get(f"/v1/loyalties/{program['id']}/tiers/{gold['id']}/rewards", headers=h))
    assert rewards["data"][0]["object"] == "loyalty_tier_reward"
    assert rewards["data"][0]["assignment"]["parameters"]["loyalty"]["points"] == 60

    overlapping = [{"name": "Bronze", "points": {"from": 150, "to": 250}}]
    assert_error(
        client.post(f"/v1/loyalties/{program['id']}/tiers", json=overlapping, headers=h), 400, "invalid_payload"
    )
    bad_map = [{"name": "X", "points": {"from": 1000}, "earning_rules": {"ern_nope": {"type": "CUSTOM", "points": 1}}}]
    assert_error(client.post(f"/v1/loyalties/{program['id']}/tiers", json=bad_map, headers=h), 404, "not_found")
    bad_type = [{"name": "X", "points": {"from": 1000}, "rewards": {setup["assignment"]["id"]: {"type": "HALF"}}}]
    assert_error(client.post(f"/v1/loyalties/{program['id']}/tiers", json=bad_type, headers=h), 400, "invalid_payload")
    assert_error(client.get(f"/v1/loyalties/{program['id']}/tiers/ltr_nope", headers=h), 404, "not_found")


def test_member_tier_follows_the_balance_and_maps_earning_and_rewards(
    client: TestClient, h: dict[str, str], settings: Settings
) -> None:
    setup = setup_tiers(client, h)
    program, silver = setup["program"], setup["tiers"][0]
    card = join(client, h, program["id"], "tia")
    tiers = ok(client.get(f"/v1/loyalties/members/{card['code']}/tiers", headers=h))
    assert [t["id"] for t in tiers["data"]] == [silver["id"]]
    assert tiers["data"][0]["expiration"]["tier_id"] == silver["id"]

    def pay(source_id: str) -> None:
        order = {"amount": 1000, "status": "PAID", "customer": {"source_id": source_id}}
        ok(client.post("/v1/orders", json=order, headers=h))
        drain_worker(settings)

    pay("tia")
    assert member(client, h, card["code"])["balance"] == 10  # Silver: the rule's own 10 points
    add_points(client, h, card["code"], 190)
    assert [t["name"] for t in ok(client.get(f"/v1/loyalties/members/{card['code']}/tiers", headers=h))["data"]] == [
        "Gold"
    ]
    pay("tia")
    assert member(client, h, card["code"])["balance"] == 200 + 25  # Gold: 10 x 2.5

    redemption = ok(
        client.post(
            f"/v1/loyalties/members/{card['code']}/redemption",
            json={"reward": {"id": setup["reward"]["id"]}},
            headers=h,
        )
    )
    assert redemption["loyalty_card"] == {"points": 60}  # Gold's price, not the program's 100
    assert member(client, h, card["code"])["balance"] == 165
    silver_tiers = ok(client.get(f"/v1/loyalties/members/{card['code']}/tiers", headers=h))["data"]
    assert [t["name"] for t in silver_tiers] == ["Silver"]  # back under 200
