"""``POST /v1/events`` over HTTP."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import ProjectKeys, assert_error


def test_custom_event_upserts_the_customer_and_is_recorded(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    response = client.post(
        "/v1/events",
        json={
            "event": "user_subscribed",
            "customer": {"source_id": "sub-1", "email": "s@example.com", "metadata": {"plan": "pro"}},
            "referral": {"code": "REF-1", "referrer_id": None},
            "loyalty": None,
            "metadata": {"channel": "newsletter"},
        },
        headers=h,
    )
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["object"] == "event" and event["type"] == "user_subscribed"
    assert event["customer"]["source_id"] == "sub-1" and event["customer"]["object"] == "customer"
    assert event["customer"]["id"].startswith("cust_") and event["customer"]["metadata"] == {"plan": "pro"}
    assert event["referral"] == {"code": "REF-1"} and event["loyalty"] is None
    assert event["metadata"] == {"channel": "newsletter"}

    customer = client.get("/v1/customers/sub-1", headers=h).json()
    assert customer["email"] == "s@example.com"
    activity = client.get("/v1/customers/sub-1/activity?type=customer.custom_event", headers=h).json()["data"]
    assert len(activity) == 1 and activity[0]["data"]["event"] == "user_subscribed"
    assert activity[0]["data"]["metadata"] == {"channel": "newsletter"}

    # A second event for the same customer reuses it.
    again = client.post("/v1/events", json={"event": "x", "customer": {"source_id": "sub-1"}}, headers=h).json()
    assert again["customer"]["id"] == customer["id"] and again["metadata"] == {}
    assert client.get("/v1/customers", headers=h).json()["total"] == 1


def test_event_counts_drive_segments(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    segment = {
        "name": "Twice subscribed",
        "type": "auto-update",
        "filter": {"events.subscribed.count": {"conditions": {"$more_than_equal": [2]}}},
    }
    assert client.post("/v1/segments", json=segment, headers=h).status_code == 200
    for expected in ([], ["Twice subscribed"]):
        client.post("/v1/events", json={"event": "subscribed", "customer": {"source_id": "e"}}, headers=h)
        names = [s["name"] for s in client.get("/v1/customers/e/segments", headers=h).json()["data"]]
        assert names == expected


def test_invalid_events(client: TestClient, project: ProjectKeys) -> None:
    h = project.headers
    for body in (
        {"customer": {"source_id": "a"}},
        {"event": "", "customer": {"source_id": "a"}},
        {"event": "x" * 301, "customer": {"source_id": "a"}},
        {"event": "ok"},
        {"event": "ok", "customer": "a"},
        {"event": "ok", "customer": {"source_id": "a"}, "referral": "code"},
        {"event": "ok", "customer": {"source_id": "a"}, "metadata": 3},
    ):
        assert_error(client.post("/v1/events", json=body, headers=h), 400, "invalid_payload")
    assert_error(
        client.post("/v1/events", json={"event": "ok", "customer": {"id": "cust_x"}}, headers=h), 404, "not_found"
    )
    assert client.get("/v1/customers", headers=h).json()["total"] == 0
