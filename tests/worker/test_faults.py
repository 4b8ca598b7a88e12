"""Fault injection with real processes: a worker killed mid-batch, two workers side by side, a PostgreSQL
outage and a Redis restart during redemptions. Nothing acknowledged is lost and nothing is counted twice.

These are long (``make test-faults`` runs ``-m faults``); each stays well under a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import pytest
import redis

from tests.conftest import ProjectKeys
from tests.processes import stop_group as stop
from tests.processes import wait_healthy
from tests.services import scratch_dir
from voucherd.checkout import redemption_records
from voucherd.platform import db, keys, projects
from voucherd.platform.localstack import PostgresServer, RedisServer, free_port
from voucherd.platform.settings import Settings

pytestmark = [pytest.mark.faults, pytest.mark.slow]

CODE = "FAULTS"


# --- processes -----------------------------------------------------------------------------------------------


def start_worker(settings: Settings, log: Path, *, burst: bool = False) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.with_(log_format="text", log_level="INFO").to_env()}
    args = [sys.executable, "-m", "worker", *(["--burst"] if burst else [])]
    with open(log, "ab") as out:
        # Its own process group, so stop() reaches whatever it started too.
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def burst_drain(settings: Settings, log: Path, timeout: float = 60) -> None:
    """A fresh ``python -m worker --burst``: re-claims whatever a dead consumer left and exits when done."""
    proc = start_worker(settings, log, burst=True)
    try:
        assert proc.wait(timeout) == 0, log.read_text()[-3000:]
    finally:
        stop(proc)


@contextlib.contextmanager
def serve(settings: Settings, log: Path) -> Iterator[str]:
    """``voucherd serve`` (granian, one process) on a free port; yields its base URL."""
    port = free_port()
    env = {**os.environ, **settings.with_(port=port, server_processes=1, log_format="text").to_env()}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voucherd.cli", "serve"], env=env, stdout=out, stderr=out, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    try:
        yield url
    finally:
        stop(proc)


def new_project(settings: Settings) -> ProjectKeys:
    async def create() -> Any:
        conn = await db.connect(settings.database_url)
        try:
            return await projects.create_project(conn, {"name": "Faults"})
        finally:
            await conn.close()

    project, server_key, client_key = asyncio.run(create())
    return ProjectKeys(project["id"], server_key.key_id, server_key.token, client_key.key_id, client_key.token)


# --- load ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    sent_at: float  # time.monotonic()
    answered_at: float
    outcome: int | str  # the HTTP status, or the name of the exception that took its place
    redemption_id: str | None = None  # of a successful redemption
    detail: str = ""  # the exception's message, or the error body's key


@dataclass
class Load:
    """Redemptions sent from a background thread at a steady rate; answers are collected as they come.

    It stops after ``total`` requests or, sooner, once ``stop()`` is called."""

    url: str
    headers: dict[str, str]
    total: int
    rate: float  # requests per second
    concurrency: int = 32
    ok_ids: list[str] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)
    answers: list[Answer] = field(default_factory=list)
    sent: int = 0
    thread: threading.Thread | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Load:
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def join(self, timeout: float = 60) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the load did not finish"

    async def _run(self) -> None:
        limits = httpx2.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        body = {"redeemables": [{"object": "voucher", "id": CODE}], "order": {"amount": 1000}}
        gate = asyncio.Semaphore(self.concurrency)
        started = time.monotonic()

        async def one(client: httpx2.AsyncClient) -> None:
            sent_at = time.monotonic()
            outcome: int | str
            redemption_id, detail = None, ""
            try:
                response = await client.post("/v1/redemptions", json=body)
            except httpx2.HTTPError as exc:
                outcome, detail = type(exc).__name__, repr(exc.__context__ or exc)
            else:
                outcome = response.status_code
                if response.status_code == 200:
                    redemption_id = response.json()["redemptions"][0]["id"]
                    self.ok_ids.append(redemption_id)
                elif response.status_code >= 500:
                    detail = response.text[:300]
            finally:
                gate.release()
            self.statuses[outcome] += 1
            self.answers.append(Answer(sent_at, time.monotonic(), outcome, redemption_id, detail))

        async with httpx2.AsyncClient(base_url=self.url, headers=self.headers, limits=limits, timeout=10) as client:
            pending = []
            for i in range(self.total):
                await gate.acquire()
                if self.stopping.is_set():
                    gate.release()
                    break
                pause = started + i / self.rate - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                pending.append(asyncio.ensure_future(one(client)))
                self.sent = i + 1
            await asyncio.gather(*pending)


def create_voucher(url: str, headers: dict[str, str], quantity: int | None = None) -> None:
    body: dict[str, Any] = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 100}}
    if quantity is not None:
        body["redemption"] = {"quantity": quantity}
    response = httpx2.post(f"{url}/v1/vouchers/{CODE}", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


# --- reconciliation ------------------------------------------------------------------------------------------


def stored_count(settings: Settings) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM redemptions WHERE voucher_code = $1", CODE))
        finally:
            await conn.close()

    try:
        return asyncio.run(count())
    except (OSError, asyncpg.PostgresError):
        return -1


def wait_stored(settings: Settings, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (count := stored_count(settings)) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


@dataclass
class Books:
    stored_ids: list[str]
    stored_successes: int
    pg_redeemed_quantity: int
    redis_redeemed: int
    stream_entries: int
    pending: int
    dead_letters: int


def books(settings: Settings, project_id: str) -> Books:
    async def fetch() -> tuple[list[str], int, int]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            rows = await conn.fetch("SELECT id, result FROM redemptions WHERE voucher_code = $1", CODE)
            quantity = await conn.fetchval(
                "SELECT redeemed_quantity FROM vouchers WHERE project_id = $1 AND code = $2", project_id, CODE
            )
            return [r["id"] for r in rows], sum(r["result"] == "SUCCESS" for r in rows), int(quantity)
        finally:
            await conn.close()

    ids, successes, quantity = asyncio.run(fetch())
    client = redis.Redis.from_url(settings.redis_url)
    try:
        stream = keys.project_stream(project_id, redemption_records.STREAM)
        redeemed = int(client.hget(keys.voucher_state(project_id, CODE), "redeemed") or 0)
        pending = client.xpending(stream, "voucherd")["pending"]
        return Books(
            stored_ids=ids,
            stored_successes=successes,
            pg_redeemed_quantity=quantity,
            redis_redeemed=redeemed,
            stream_entries=client.xlen(stream),
            pending=pending,
            dead_letters=client.xlen(keys.dead_letter_for(stream)),
        )
    finally:
        client.close()


def assert_reconciled(settings: Settings, project_id: str, load: Load, *, unanswered: int = 0) -> Books:
    """PostgreSQL, the Redis counter and the stream agree; every acknowledged redemption is stored once.

    ``unanswered`` bounds the redemptions that may have committed without their answer reaching the
    client (a Redis killed between the commit and the reply)."""
    b = books(settings, project_id)
    assert len(b.stored_ids) == len(set(b.stored_ids))
    assert b.pending == 0 and b.dead_letters == 0
    assert b.stream_entries == len(b.stored_ids)  # one event per redemption, each stored once
    assert b.stored_successes == b.redis_redeemed == b.pg_redeemed_quantity
    assert set(load.ok_ids) <= set(b.stored_ids)
    assert len(load.ok_ids) <= b.stored_successes <= len(load.ok_ids) + unanswered
    return b


def pending_of(settings: Settings, project_id: str, pid: int) -> int:
    """Messages the worker process ``pid`` had read and not acknowledged."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        stream = keys.project_stream(project_id, redemption_records.STREAM)
        name = f"{socket.gethostname()}-{pid}"
        return sum(int(c["pending"]) for c in client.xinfo_consumers(stream, "voucherd") if c["name"] == name)
    finally:
        client.close()


def wait_holding(settings: Settings, project_id: str, pid: int, timeout: float) -> None:
    """Return as soon as the worker ``pid`` holds read, unacknowledged messages (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pending_of(settings, project_id, pid) == 0:
        time.sleep(0.001)


def done_counts(log: Path) -> int:
    """Redemption messages a worker reported done (its log lines)."""
    return sum(int(n) for n in re.findall(r"task redemptions: (\d+) message\(s\) done", log.read_text()))


# --- the tests -----------------------------------------------------------------------------------------------


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """Re-claim a dead consumer's messages after half a second instead of thirty."""
    return settings.with_(worker_claim_idle_ms=500)


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    quick: Settings, project: ProjectKeys, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    with serve(quick, tmp_path / "server.log") as url:
        create_voucher(url, project.headers, quantity=1_800)
        load = Load(url, project.headers, total=2_000, rate=1_000).start()
        in_flight: list[int] = []  # messages each killed worker had read and not acknowledged
        worker = start_worker(quick, log)
        try:
            # SIGKILL the worker three times while it is writing batches, starting a new one each time.
            for threshold in (100, 600, 1_100):
                wait_stored(quick, threshold, timeout=30)
                # Between batches (or lingering for the next) it holds nothing: kill it inside one.
                wait_holding(quick, project.project_id, worker.pid, timeout=10)
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
                in_flight.append(pending_of(quick, project.project_id, worker.pid))
                worker = start_worker(quick, log)
            load.join()
        finally:
            stop(worker)
        burst_drain(quick, log)
    assert len(in_flight) == 3 and sum(in_flight) > 0, in_flight  # it died holding unacknowledged messages
    assert load.statuses[200] == 1_800 and load.statuses[400] == 200, load.statuses
    b = assert_reconciled(quick, project.project_id, load)
    assert b.stored_successes == 1_800


def test_two_workers_share_the_streams_without_double_effects(
    settings: Settings, project: ProjectKeys, tmp_path: Path
) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with serve(settings, tmp_path / "server.log") as url:
        create_voucher(url, project.headers)
        workers = [start_worker(settings, log) for log in logs]
        try:
            load = Load(url, project.headers, total=2_000, rate=1_000).start()
            load.join()
            assert wait_stored(settings, 2_000, timeout=30) == 2_000
            time.sleep(0.3)  # the last batch's log line follows its commit
        finally:
            for worker in workers:
                stop(worker)
    assert load.statuses == {200: 2_000}, load.statuses
    assert_reconciled(settings, project.project_id, load)
    done = [done_counts(log) for log in logs]
    assert all(n > 0 for n in done), done  # both took a share
    assert sum(done) == 2_000, done  # and no message ran twice


def test_a_postgresql_outage_delays_persistence_and_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    with scratch_dir("voucherd-faults-pg-") as folder:
        pg = PostgresServer(folder / "data", free_port(), durable=False)
        pg.start()
        try:
            asyncio.run(db.migrate_dsn(pg.url))
            own = settings.with_(database_url=pg.url, worker_claim_idle_ms=500)
            project = new_project(own)
            log = tmp_path / "worker.log"
            with serve(own, tmp_path / "server.log") as url:
                create_voucher(url, project.headers)
                worker = start_worker(own, log)
                try:
                    load = Load(url, project.headers, total=3_000, rate=180).start()
                    wait_stored(own, 200, timeout=20)
                    pg.stop()
                    down_at = load.sent
                    time.sleep(10)
                    during = load.sent - down_at
                    pg.start()
                    load.join()
                    assert worker.poll() is None, log.read_text()[-3000:]  # it waited out the outage
                    assert wait_stored(own, load.statuses[200], timeout=30) == load.statuses[200]
                finally:
                    stop(worker)
            assert during > 1_000  # redemptions kept coming while PostgreSQL was down ...
            assert load.statuses == {200: 3_000}, load.statuses  # ... and every one succeeded
            assert_reconciled(own, project.project_id, load)
        finally:
            pg.stop()


def test_redis_restarted_with_aof_keeps_every_acknowledged_redemption(settings: Settings, tmp_path: Path) -> None:
    with scratch_dir("voucherd-faults-redis-") as folder:
        server = RedisServer(folder, free_port(), appendonly=True, appendfsync="always")
        server.start()
        try:
            own = settings.with_(redis_url=server.url, worker_claim_idle_ms=500)
            project = new_project(own)
            log = tmp_path / "worker.log"
            with serve(own, tmp_path / "server.log") as url:
                create_voucher(url, project.headers)
                worker = start_worker(own, log)
                try:
                    load = Load(url, project.headers, total=2_000, rate=200, concurrency=16).start()
                    wait_stored(own, 300, timeout=20)
                    assert server.proc is not None
                    server.proc.kill()  # a crash: only what the AOF holds comes back
                    server.proc.wait()
                    time.sleep(2)
                    server.start()
                    load.join()
                    assert worker.poll() is None, log.read_text()[-3000:]  # it reconnected by itself
                    assert wait_stored(own, load.statuses[200], timeout=30) >= load.statuses[200]
                    time.sleep(1)
                finally:
                    stop(worker)
            failed = load.total - load.statuses[200]
            assert load.statuses[200] > 1_000, load.statuses  # the server reconnected too
            assert_reconciled(own, project.project_id, load, unanswered=failed)
        finally:
            server.stop()
