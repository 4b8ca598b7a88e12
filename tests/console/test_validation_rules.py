"""The validation rules page through the ASGI app: the simple rule, the JSON rules, refusals beside their
field and nothing written."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from starlette.testclient import TestClient

from tests.conftest import ProjectKeys
from voucherd.platform.settings import Settings


def _rules(settings: Settings) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM validation_rules"))
        finally:
            await conn.close()

    return asyncio.run(count())


def test_the_simple_rule_becomes_an_order_amount_rule(logged_in: TestClient, project: ProjectKeys) -> None:
    form = {"name": "Over 100", "order_amount_more_than": "100.00", "error.message": "Spend more than 100"}
    response = logged_in.post("/console/validation-rules", data=form)
    assert response.status_code == 200
    assert "Validation rule Over 100 created." in response.text
    listed = logged_in.get("/v1/validation-rules", headers=project.headers).json()["data"]
    assert [(r["name"], r["rules"], r["error"]) for r in listed] == [
        (
            "Over 100",
            {"1": {"name": "order.amount", "conditions": {"$more_than": [10000]}}, "logic": "1"},
            {"message": "Spend more than 100"},
        )
    ]


def test_rules_given_as_json_win_over_the_simple_rule(logged_in: TestClient, project: ProjectKeys) -> None:
    rules = '{"1": {"name": "order.items.count", "conditions": {"$more_than": [2]}}}'
    form = {"name": "Three items", "order_amount_more_than": "5", "rules": rules}
    assert logged_in.post("/console/validation-rules", data=form).status_code == 200
    listed = logged_in.get("/v1/validation-rules", headers=project.headers).json()["data"]
    assert listed[0]["rules"] == {"1": {"name": "order.items.count", "conditions": {"$more_than": [2]}}}


@pytest.mark.parametrize(
    ("rules", "shown"),
    [
        ('{"1": {"name": "no.such.rule"}}', "rules.1.name 'no.such.rule' is not a known rule"),
        ('{"1": {"name": "order.amount", "conditions": {"$huge": [1]}}}', "is not a known operator"),
        ('{"1": {"name": "order.amount"}, "logic": "1 and 2"}', "refers to rule 2"),
        ("{oops", "is not valid JSON"),
    ],
)
def test_refused_rules_are_shown_beside_the_rules_field_and_nothing_is_written(
    logged_in: TestClient, settings: Settings, rules: str, shown: str
) -> None:
    response = logged_in.post("/console/validation-rules", data={"name": "Bad", "rules": rules})
    assert response.status_code == 400
    marker = 'data-testid="error-rules">'
    assert marker in response.text
    assert shown in response.text.split(marker, 1)[1].split("</p>", 1)[0].replace("&#39;", "'")
    assert _rules(settings) == 0
