"""Project webhooks: configuration, the transactional outbox, and delivery.

Configuration (``/management/v1/projects/{projectId}/webhooks``) stores ``{target_url, events, active}``
plus a per-webhook ``secret``. Events reach the outbox (``webhook_outbox``) inside the transaction that
commits the change they describe (``enqueue_redemptions`` from the redemption write-behind; a trigger for
segment entries and exits), so nothing is sent for data that was rolled back and nothing is lost for data
that committed. A ``Dispatcher`` in each worker process fans outbox rows out to one delivery per subscribed
webhook and posts them.

Each delivery is the Voucherify envelope ``{id: "whs_…", project_id, created_at, type, data, source{id, object,
target_url}, event{id, type, created_at, entity_id, group_id, event_source{channel}}}`` serialised without
whitespace and signed: header ``x-voucherify-signature`` = hex HMAC-SHA256(webhook secret, body bytes).
A non-2xx answer, a timeout (10 s) or a refused connection is retried after 1, 2, 4 … minutes; after
``max_attempts`` (12) tries the delivery is FAILED and the webhook disabled. Every attempt is recorded in
``webhook_attempts``; every delivery in ``webhook_deliveries``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import httpx
import orjson

from voucherd.platform.errors import InvalidPayload, NotFound
from voucherd.platform.ids import new_id
from voucherd.platform.timeutil import iso

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-voucherify-signature"
NOTIFY_CHANNEL = "voucherd_webhooks"
# The management spec (and the SDK) spell four event names "aded"; both are accepted, the stored spelling is
# echoed, and payloads are delivered with "added".
_SPELLINGS = {
    "campaign.vouchers.aded": "campaign.vouchers.added",
    "voucher.gift.balance_aded": "voucher.gift.balance_added",
    "voucher.loyalty_card.points_aded": "voucher.loyalty_card.points_added",
    "voucher.loyalty_card.pending_points.aded": "voucher.loyalty_card.pending_points.added",
}
EVENTS = (
    frozenset(
        [
            "business_validation_rule.assignment.created",
            "business_validation_rule.assignment.deleted",
            "business_validation_rule.created",
            "business_validation_rule.deleted",
            "business_validation_rule.updated",
            "campaign.created",
            "campaign.deleted",
            "campaign.disabled",
            "campaign.enabled",
            "campaign.earning_rule.assigned",
            "campaign.earning_rule.deleted",
            "campaign.earning_rule.disabled",
            "campaign.earning_rule.enabled",
            "campaign.earning_rule.updated",
            "campaign.loyalty_tier.created",
            "campaign.loyalty_tier.deleted",
            "campaign.loyalty_tier.updated",
            "campaign.promotion_stack.created",
            "campaign.promotion_stack.updated",
            "campaign.promotion_tier.created",
            "campaign.promotion_tier.deleted",
            "campaign.promotion_tier.disabled",
            "campaign.promotion_tier.enabled",
            "campaign.promotion_tier.updated",
            "campaign.referral_tier.created",
            "campaign.referral_tier.deleted",
            "campaign.referral_tier.updated",
            "campaign.reward.assignment.created",
            "campaign.reward.assignment.deleted",
            "campaign.reward.assignment.updated",
            "campaign.updated",
            "campaign.vouchers.generation.completed",
            "campaign.vouchers.generation.failed",
            "campaign.vouchers.generation.started",
            "customer.confirmed",
            "customer.created",
            "customer.deleted",
            "customer.rewarded",
            "customer.rewarded.loyalty_points",
            "publication.succeeded",
            "redemption.failed",
            "redemption.rollback.failed",
            "redemption.rollback.succeeded",
            "redemption.succeeded",
            "voucher.created",
            "voucher.deleted",
            "voucher.disabled",
            "voucher.enabled",
            "voucher.gift.transaction.created",
            "voucher.loyalty_card.pending_points.activated",
            "voucher.loyalty_card.pending_points.canceled",
            "voucher.loyalty_card.pending_points.updated",
            "voucher.loyalty_card.points_expired",
            "voucher.loyalty_card.transaction.created",
            "voucher.published",
            "voucher.updated",
            "customer.segment.entered",
            "customer.segment.left",
        ]
    )
    | set(_SPELLINGS)
    | set(_SPELLINGS.values())
)


def canonical(event: str) -> str:
    return _SPELLINGS.get(event, event)


# --- configuration -------------------------------------------------------------------------------------------


def view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "webhook",
        "created_at": iso(row["created_at"]),
        "target_url": row["target_url"],
        "events": list(row["events"]),
        "active": row["active"],
        "secret": row["secret"],
    }


def _checked(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "target_url" in body or not partial:
        url = body.get("target_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidPayload("Property .target_url should be an http(s) URL")
        fields["target_url"] = url
    if "events" in body or not partial:
        events = body.get("events")
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise InvalidPayload("Property .events should be a non-empty array of event names")
        unknown = sorted(set(events) - EVENTS)
        if unknown:
            raise InvalidPayload(f"Property .events has unknown event names: {', '.join(unknown)}")
        fields["events"] = list(dict.fromkeys(events))
    if body.get("active") is not None:
        if not isinstance(body["active"], bool):
            raise InvalidPayload("Property .active should be a boolean")
        fields["active"] = body["active"]
    return fields


async def _require_project(conn: asyncpg.Connection, project_id: str) -> None:
    if await conn.fetchval("SELECT 1 FROM projects WHERE id = $1", project_id) is None:
        raise NotFound.of("project", project_id)


async def create(conn: asyncpg.Connection, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    await _require_project(conn, project_id)
    fields = _checked(body, partial=False)
    row = await conn.fetchrow(
        "INSERT INTO webhooks (id, project_id, target_url, events, active, secret) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        new_id("wh"),
        project_id,
        fields["target_url"],
        fields["events"],
        fields.get("active", True),
        os.urandom(24).hex(),
    )
    return view(row)


async def _require(conn: asyncpg.Connection, project_id: str, webhook_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM webhooks WHERE project_id = $1 AND id = $2", project_id, webhook_id)
    if row is None:
        raise NotFound.of("webhook", webhook_id)
    return row


async def get(conn: asyncpg.Connection, project_id: str, webhook_id: str) -> dict[str, Any]:
    return view(await _require(conn, project_id, webhook_id))


async def list_all(conn: asyncpg.Connection, project_id: str) -> list[dict[str, Any]]:
    await _require_project(conn, project_id)
    rows = await conn.fetch("SELECT * FROM webhooks WHERE project_id = $1 ORDER BY created_at, id", project_id)
    return [view(r) for r in rows]


async def update(conn: asyncpg.Connection, project_id: str, webhook_id: str, body: dict[str, Any]) -> dict[str, Any]:
    await _require(conn, project_id, webhook_id)
    fields = _checked(body, partial=True)
    if fields.get("active"):
        fields["disabled_reason"] = None  # re-enabling clears the reason it was disabled for
    sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=3)]
    row = await conn.fetchrow(
        f"UPDATE webhooks SET {', '.join([*sets, 'updated_at = now()'])} WHERE project_id = $1 AND id = $2 RETURNING *",
        project_id,
        webhook_id,
        *fields.values(),
    )
    return view(row)


async def delete(conn: asyncpg.Connection, project_id: str, webhook_id: str) -> None:
    await _require(conn, project_id, webhook_id)
    await conn.execute("DELETE FROM webhooks WHERE project_id = $1 AND id = $2", project_id, webhook_id)


async def deliveries(conn: asyncpg.Connection, project_id: str, webhook_id: str, limit: int = 100) -> list[Any]:
    """The recorded deliveries of a webhook, newest first (for operators and tests)."""
    await _require(conn, project_id, webhook_id)
    rows = await conn.fetch(
        "SELECT id, type, status, attempts, last_status_code, last_error, created_at, delivered_at "
        "FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        webhook_id,
        limit,
    )
    return [
        {
            "id": r["id"],
            "type": r["type"],
            "status": r["status"],
            "attempts": r["attempts"],
            "last_status_code": r["last_status_code"],
            "last_error": r["last_error"],
            "created_at": iso(r["created_at"]),
            "delivered_at": iso(r["delivered_at"]),
        }
        for r in rows
    ]


async def attempts(conn: asyncpg.Connection, project_id: str, webhook_id: str, delivery_id: str) -> list[Any]:
    """Every try of one delivery, in order."""
    await _require(conn, project_id, webhook_id)
    found = await conn.fetchval(
        "SELECT 1 FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2", webhook_id, delivery_id
    )
    if found is None:
        raise NotFound.of("webhook_delivery", delivery_id)
    rows = await conn.fetch(
        "SELECT attempt, status_code, error, duration_ms, attempted_at FROM webhook_attempts "
        "WHERE delivery_id = $1 ORDER BY attempt",
        delivery_id,
    )
    return [
        {
            "attempt": r["attempt"],
            "status_code": r["status_code"],
            "error": r["error"],
            "duration_ms": r["duration_ms"],
            "attempted_at": iso(r["attempted_at"]),
        }
        for r in rows
    ]


# --- the outbox ----------------------------------------------------------------------------------------------


async def subscribed(conn: asyncpg.Connection, project_ids: Iterable[str]) -> set[tuple[str, str]]:
    """(project id, canonical event type) pairs some active webhook wants."""
    wanted = list(set(project_ids))
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT project_id, events FROM webhooks WHERE active AND project_id = ANY($1::text[])", wanted
    )
    return {(r["project_id"], canonical(e)) for r in rows for e in r["events"]}


async def add_events(conn: asyncpg.Connection, events: Sequence[dict[str, Any]]) -> int:
    """Put events in the outbox (call inside the transaction of the change). Each event is
    ``{project_id, event_id, type, entity_id, group_id, channel, data}``; unsubscribed ones are skipped."""
    if not events:
        return 0
    wanted = await subscribed(conn, (e["project_id"] for e in events))
    chosen = [e for e in events if (e["project_id"], e["type"]) in wanted]
    if not chosen:
        return 0
    await conn.execute(
        """INSERT INTO webhook_outbox (project_id, event_id, type, entity_id, group_id, channel, data)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
           ON CONFLICT (event_id) DO NOTHING""",
        [e["project_id"] for e in chosen],
        [e["event_id"] for e in chosen],
        [e["type"] for e in chosen],
        [e.get("entity_id") for e in chosen],
        [e.get("group_id") for e in chosen],
        [e.get("channel") or "API" for e in chosen],
        [e["data"] for e in chosen],
    )
    return len(chosen)


def redemption_event_type(body: dict[str, Any]) -> str | None:
    """The webhook event of one stored redemption or rollback body (stacked parents send none)."""
    if body.get("related_object_type") == "redemption":
        return None
    ok = body.get("result") == "SUCCESS"
    if body.get("object") == "redemption_rollback":
        return "redemption.rollback.succeeded" if ok else "redemption.rollback.failed"
    return "redemption.succeeded" if ok else "redemption.failed"


async def enqueue_redemptions(conn: asyncpg.Connection, bodies: Sequence[dict[str, Any]]) -> int:
    """Outbox entries for newly persisted redemptions and rollbacks (bodies carry ``_project_id``)."""
    if not bodies:
        return 0
    wanted = await subscribed(conn, (b["_project_id"] for b in bodies))
    if not wanted:
        return 0
    events = []
    for body in bodies:
        kind = redemption_event_type(body)
        if kind is None or (body["_project_id"], kind) not in wanted:
            continue
        data = {k: v for k, v in body.items() if not k.startswith("_")}
        payload: dict[str, Any] = {"object": data}
        for name in ("voucher", "promotion_tier", "customer", "order"):
            if data.get(name) is not None:
                payload[name] = data[name]
        events.append(
            {
                "project_id": body["_project_id"],
                "event_id": f"ev_{body['id']}",
                "type": kind,
                "entity_id": body["id"],
                "group_id": body.get("request_id"),
                "channel": "API",
                "data": payload,
            }
        )
    return await add_events(conn, events)


# --- delivery ------------------------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(delivery_id: str, outbox: asyncpg.Record, webhook: asyncpg.Record, now_iso: str) -> bytes:
    channel = outbox["channel"] if outbox["channel"] in ("USER_PORTAL", "API", "CLIENT_API", "INTERNAL") else "API"
    return orjson.dumps(
        {
            "id": delivery_id,
            "project_id": outbox["project_id"],
            "created_at": now_iso,
            "type": outbox["type"],
            "data": outbox["data"],
            "source": {"id": webhook["id"], "object": "webhook", "target_url": webhook["target_url"]},
            "event": {
                "id": outbox["event_id"],
                "type": outbox["type"],
                "created_at": iso(outbox["created_at"]),
                "entity_id": outbox["entity_id"],
                "group_id": outbox["group_id"],
                "event_source": {"channel": channel},
            },
        }
    )


class Dispatcher:
    """Fans the outbox out to deliveries and sends those that are due. Safe to run in many processes:
    outbox rows and due deliveries are taken with ``FOR UPDATE SKIP LOCKED`` and leased while in flight."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        base_delay_s: float = 60.0,
        max_attempts: int = 12,
        timeout_s: float = 10.0,
        poll_s: float = 1.0,
        batch_size: int = 100,
    ) -> None:
        self.pool = pool
        self.base_delay_s = base_delay_s
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.batch_size = batch_size
        self.lease_s = timeout_s * 3 + 5
        self._wake = asyncio.Event()

    async def fan_out(self) -> int:
        """One delivery per (outbox row, subscribed active webhook); returns the outbox rows handled."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT * FROM webhook_outbox WHERE fanned_out_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if not rows:
                return 0
            hooks = await conn.fetch(
                "SELECT * FROM webhooks WHERE active AND project_id = ANY($1::text[])",
                list({r["project_id"] for r in rows}),
            )
            records = []
            for row in rows:
                for hook in hooks:
                    if hook["project_id"] == row["project_id"] and row["type"] in {
                        canonical(e) for e in hook["events"]
                    }:
                        delivery_id = new_id("whs")
                        body = envelope(delivery_id, row, hook, iso(row["created_at"]) or "")
                        records.append((delivery_id, row["project_id"], hook["id"], row["id"], row["type"], body))
            if records:
                await conn.executemany(
                    "INSERT INTO webhook_deliveries (id, project_id, webhook_id, outbox_id, type, body) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (webhook_id, outbox_id) DO NOTHING",
                    records,
                )
            await conn.execute(
                "UPDATE webhook_outbox SET fanned_out_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        return len(rows)

    async def send_due(self, client: httpx.AsyncClient) -> int:
        async with self.pool.acquire() as conn:
            due = await conn.fetch(
                """UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => $2)
                   FROM webhooks w
                   WHERE d.id IN (SELECT id FROM webhook_deliveries
                                  WHERE status = 'PENDING' AND next_attempt_at <= now()
                                  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                     AND w.id = d.webhook_id
                   RETURNING d.id, d.webhook_id, d.body, d.attempts, w.target_url, w.secret, w.active""",
                self.batch_size,
                self.lease_s,
            )
        if due:
            await asyncio.gather(*(self._send(client, row) for row in due))
        return len(due)

    async def _send(self, client: httpx.AsyncClient, row: asyncpg.Record) -> None:
        if not row["active"]:
            async with self.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE webhook_deliveries SET status = 'FAILED', last_error = 'webhook disabled', "
                    "updated_at = now() WHERE id = $1 AND status = 'PENDING'",
                    row["id"],
                )
            return
        body: bytes = row["body"]
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(row["secret"], body)}
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await client.post(row["target_url"], content=body, headers=headers, timeout=self.timeout_s)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        duration_ms = int((time.monotonic() - started) * 1000)
        await self._record(row, status_code, error, duration_ms)

    async def _record(self, row: asyncpg.Record, status_code: int | None, error: str | None, duration_ms: int) -> None:
        attempt = row["attempts"] + 1
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                row["id"],
                attempt,
                status_code,
                error,
                duration_ms,
            )
            if error is None:
                await conn.execute(
                    "UPDATE webhook_deliveries SET status = 'SUCCEEDED', attempts = $2, last_status_code = $3, "
                    "last_error = NULL, delivered_at = now(), updated_at = now() WHERE id = $1",
                    row["id"],
                    attempt,
                    status_code,
                )
                return
            if attempt >= self.max_attempts:
                await conn.execute(
                    "UPDATE webhook_deliveries SET status = 'FAILED', attempts = $2, last_status_code = $3, "
                    "last_error = $4, updated_at = now() WHERE id = $1",
                    row["id"],
                    attempt,
                    status_code,
                    error,
                )
                await conn.execute(
                    "UPDATE webhooks SET active = false, disabled_reason = $2, updated_at = now() "
                    "WHERE id = $1 AND active",
                    row["webhook_id"],
                    f"disabled after {attempt} failed attempts of delivery {row['id']}: {error}",
                )
                log.warning("webhook %s disabled after %d failed attempts: %s", row["webhook_id"], attempt, error)
                return
            delay = self.base_delay_s * 2 ** (attempt - 1)
            await conn.execute(
                "UPDATE webhook_deliveries SET attempts = $2, last_status_code = $3, last_error = $4, "
                "next_attempt_at = now() + make_interval(secs => $5), updated_at = now() WHERE id = $1",
                row["id"],
                attempt,
                status_code,
                error,
                delay,
            )

    async def run_once(self, client: httpx.AsyncClient) -> int:
        done = 0
        while (fanned := await self.fan_out()) > 0:
            done += fanned
        while (sent := await self.send_due(client)) > 0:
            done += sent
        return done

    async def run(self, stop: asyncio.Event, dsn: str | None = None) -> None:
        """Until ``stop``: wake on each committed outbox row (LISTEN) or every ``poll_s`` for due retries."""
        listener: asyncpg.Connection | None = None
        async with httpx.AsyncClient() as client:
            try:
                while not stop.is_set():
                    if listener is None and dsn is not None:
                        listener = await self._listen(dsn)
                    try:
                        await self.run_once(client)
                    except Exception as exc:  # an outage must not end deliveries for good
                        # PostgreSQL restarting (connection errors, 57P01/57P03) or anything unexpected: log,
                        # drop the listener, and try again at the next poll; leased rows fall due again.
                        log.warning("webhook dispatcher: %s: %s; retrying", type(exc).__name__, exc)
                        if listener is not None:
                            listener.terminate()
                            listener = None
                    self._wake.clear()
                    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
                    await asyncio.wait(waiters, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
                    for waiter in waiters:
                        waiter.cancel()
            finally:
                if listener is not None:
                    listener.terminate()

    async def _listen(self, dsn: str) -> asyncpg.Connection | None:
        try:
            conn = await asyncpg.connect(dsn)
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_args: self._wake.set())
            return conn
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("webhook dispatcher cannot listen for outbox rows (%s); polling", exc)
            return None
