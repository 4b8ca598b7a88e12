"""``voucherd run`` heals itself: kill -9 of one part of the stack, three times in a row, during a burst.

Each test starts the launcher the way ``make run`` does (its own data folder and ports), sends a steady
burst of redemptions of one code with a limited quantity, and kills one part: the worker, one API server
process (a granian worker, not its leader), Redis or PostgreSQL. After every kill, without anyone
touching the stack:

- the killed part is back and the API serves again within RECOVERY_S;
- from the first answer after the kill on, no request fails (no 5xx, no refused connection);
- every redemption acknowledged so far is in PostgreSQL within PERSIST_S of the part's return;

and at the end the code's successes total exactly its quantity, Redis, PostgreSQL and the stream agree,
and SIGTERM stops the launcher with nothing left running. The recovery times measured are printed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis

from tests.processes import children, cmdline, listens_on, processes_with_env, wait_dead
from tests.services import scratch_dir
from tests.test_launcher import launched
from tests.worker.test_faults import Answer, Load, assert_reconciled, books, create_voucher
from voucherd.checkout import redemption_records
from voucherd.platform import heartbeats, keys
from voucherd.platform.localstack import PostgresServer, RedisServer, free_port, port_is_free
from voucherd.platform.settings import Settings

pytestmark = [pytest.mark.faults, pytest.mark.slow]

QUANTITY = 900
RATE = 120  # redemptions per second: the code runs out in about 8 s of serving, after the second kill
KILLS = 3
RECOVERY_S = 10.0
PERSIST_S = 5.0
STEADY_S = 1.5  # serving undisturbed between one recovery and the next kill


@dataclass
class Stack:
    """A running ``voucherd run`` and what the test needs to reach its parts."""

    launcher: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    headers: dict[str, str]
    settings: Settings  # the URLs of its own Redis and PostgreSQL

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def child(self, needle: str) -> int | None:
        """The launcher's child process whose command line contains ``needle``."""
        found = [pid for pid in children(self.launcher.pid) if needle in cmdline(pid)]
        return found[0] if found else None

    def server_workers(self) -> list[int]:
        leader = self.child("voucherd.cli serve")
        return [] if leader is None else children(leader)

    def postmaster(self) -> int | None:
        try:
            return int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


@contextmanager
def stack(log: Path) -> Iterator[Stack]:
    with scratch_dir("voucherd-heal-") as folder:
        data_dir, port = folder / "data", free_port()
        env = {"VOUCHERD_SERVER_PROCESSES": "2"}
        try:
            with launched(data_dir, port, env, output=log) as launcher:
                credentials = json.loads((data_dir / "credentials.json").read_text())
                ports = json.loads((data_dir / "ports.json").read_text())
                settings = Settings(
                    redis_url=RedisServer(data_dir / "redis", ports["redis"]).url,
                    database_url=PostgresServer(data_dir / "postgres", ports["postgres"]).url,
                )
                headers = {"X-App-Id": credentials["app_id"], "X-App-Token": credentials["app_token"]}
                yield Stack(launcher, data_dir, port, headers, settings)
                # Ctrl-C / SIGTERM still stops everything, restarted parts included.
                launcher.send_signal(signal.SIGTERM)
                assert launcher.wait(60) == 0, log.read_text()[-3000:]
        finally:
            left = processes_with_env("VOUCHERD_DATA_DIR", str(data_dir))
            for pid in left:  # never leave them to the next test, even when this one failed
                os.kill(pid, signal.SIGKILL)
        assert not left, [cmdline(pid) for pid in left]
        # Redis and PostgreSQL (whose titles hide their environment): nothing listens on their ports.
        assert port_is_free(port) and port_is_free(ports["redis"]) and port_is_free(ports["postgres"])


# --- what is killed and how its return is seen ---------------------------------------------------------------


def worker_victim(s: Stack) -> int:
    pid = s.child("-m worker")
    assert pid is not None
    return pid


def worker_back(s: Stack, killed: int) -> bool:
    """A new worker runs its loop: it has announced itself with its heartbeat."""
    pid = s.child("-m worker")
    if pid is None or pid == killed:
        return False
    client = redis.Redis.from_url(s.settings.redis_url, socket_timeout=1)
    try:
        return bool(client.exists(heartbeats.heartbeat_key(f"{socket.gethostname()}-{pid}")))
    finally:
        client.close()


def server_victim(s: Stack) -> int:
    # The granian worker that has run longest: granian stops the whole server when the same worker dies
    # twice within seconds, which is its crash-loop guard and not what this test is after.
    workers = s.server_workers()
    assert len(workers) == 2, workers
    return workers[0]


def server_back(s: Stack, killed: int) -> bool:
    workers = s.server_workers()
    return len(workers) == 2 and killed not in workers and all(listens_on(pid, s.port) for pid in workers)


def redis_victim(s: Stack) -> int:
    pid = s.child("redis-server")
    assert pid is not None
    return pid


def redis_back(s: Stack, _killed: int) -> bool:
    client = redis.Redis.from_url(s.settings.redis_url, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def postgres_victim(s: Stack) -> int:
    pid = s.postmaster()
    assert pid is not None
    return pid


def postgres_back(s: Stack, _killed: int) -> bool:
    async def ping() -> bool:
        conn = await asyncpg.connect(s.settings.database_url, timeout=1)
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await conn.close()

    try:
        return asyncio.run(ping())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False


Victim = Callable[[Stack], int]
Back = Callable[[Stack, int], bool]
PARTS: dict[str, tuple[Victim, Back]] = {
    "worker": (worker_victim, worker_back),
    "server process": (server_victim, server_back),
    "redis": (redis_victim, redis_back),
    "postgres": (postgres_victim, postgres_back),
}


# --- measuring -----------------------------------------------------------------------------------------------


def answered(answer: Answer) -> bool:
    """An answer the client can act on: the redemption, or its refusal for a spent quantity."""
    return isinstance(answer.outcome, int) and answer.outcome < 500


@dataclass
class Round:
    killed_at: float
    dead_at: float  # the killed process is gone: no request sent later can reach it
    back_at: float  # the part runs again
    serving_at: float  # the first answer to a request sent after dead_at
    persisted_at: float  # every redemption acknowledged by then is in PostgreSQL

    def report(self, part: str, n: int) -> str:
        return (
            f"kill -9 of the {part} #{n}: back after {self.back_at - self.killed_at:.2f} s, "
            f"serving after {self.serving_at - self.killed_at:.2f} s, acknowledged redemptions in PostgreSQL "
            f"{self.persisted_at - max(self.back_at, self.serving_at):.2f} s after that"
        )


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return time.monotonic()


def first_answer_after(load: Load, since: float) -> Answer | None:
    return next((a for a in list(load.answers) if a.sent_at >= since and answered(a)), None)


def stored(settings: Settings, ids: list[str]) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(settings.database_url, timeout=1)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM redemptions WHERE id = ANY($1::text[])", ids))
        finally:
            await conn.close()

    try:
        return asyncio.run(count())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return -1


def acknowledged(load: Load) -> list[str]:
    return [a.redemption_id for a in list(load.answers) if a.redemption_id is not None]


def kill_and_recover(s: Stack, load: Load, part: str) -> Round:
    victim, back = PARTS[part]
    pid = victim(s)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    dead_at = time.monotonic()
    back_at = wait_until(lambda: back(s, pid), RECOVERY_S, f"the {part} did not come back in {RECOVERY_S} s")
    found: list[Answer] = []

    def serving() -> bool:
        answer = first_answer_after(load, dead_at)
        found.extend([answer] if answer else [])
        return answer is not None

    wait_until(serving, killed_at + RECOVERY_S - time.monotonic(), f"no answer {RECOVERY_S} s after the kill")
    serving_at = found[0].answered_at
    ids = acknowledged(load)
    persisted_at = wait_until(
        lambda: stored(s.settings, ids) == len(ids),
        max(back_at, serving_at) + PERSIST_S - time.monotonic(),
        f"acknowledged redemptions were not in PostgreSQL {PERSIST_S} s after the {part} came back",
    )
    return Round(killed_at, dead_at, back_at, serving_at, persisted_at)


def failures_after_recovery(load: Load, rounds: list[Round]) -> list[tuple[float, float, int | str, str]]:
    """Requests sent after a recovery and done before the next kill that got a 5xx or no answer, with
    the times they were sent and done (seconds from the first kill)."""
    bad = []
    windows = [(r.serving_at, nxt.killed_at) for r, nxt in itertools.pairwise(rounds)]
    windows.append((rounds[-1].serving_at, float("inf")))
    zero = rounds[0].killed_at
    for a in list(load.answers):
        if not answered(a) and any(start <= a.sent_at and a.answered_at < end for start, end in windows):
            bad.append((round(a.sent_at - zero, 3), round(a.answered_at - zero, 3), a.outcome, a.detail))
    return bad


# --- the test ------------------------------------------------------------------------------------------------


@pytest.mark.timeout(240)  # about 30 s each; the waits allow for much more on a loaded machine
@pytest.mark.parametrize("part", list(PARTS))
def test_the_stack_heals_after_kill_9(part: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "voucherd-run.log"
    with stack(log) as s:
        create_voucher(s.url, s.headers, quantity=QUANTITY)
        load = Load(s.url, s.headers, total=100_000, rate=RATE, concurrency=24).start()
        try:
            wait_until(lambda: len(acknowledged(load)) >= 100, 30, "the burst did not get going")
            rounds = []
            for _ in range(KILLS):
                rounds.append(kill_and_recover(s, load, part))
                time.sleep(STEADY_S)
            # Go on until the code is spent, so that its successes can be counted against its quantity.
            wait_until(lambda: load.statuses[400] >= 50, 60, f"the quantity was not used up: {load.statuses}")
        finally:
            load.stop()
            load.join()
        ended_at = time.monotonic()
        with capsys.disabled():
            print()
            for n, r in enumerate(rounds, 1):
                print(r.report(part, n))
            print(f"  answers: {dict(load.statuses)}")
        failed = failures_after_recovery(load, rounds)
        kills = [round(r.killed_at - rounds[0].killed_at, 3) for r in rounds]
        serving = [round(r.serving_at - rounds[0].killed_at, 3) for r in rounds]
        assert not failed, f"kills at {kills} s, serving again at {serving} s"

        ids = acknowledged(load)
        wait_until(lambda: stored(s.settings, ids) == len(ids), PERSIST_S, "acknowledged redemptions missing")
        unanswered = sum(n for outcome, n in load.statuses.items() if outcome not in (200, 400))
        project_id = json.loads((s.data_dir / "credentials.json").read_text())["project_id"]
        # Events nobody got an answer for, and acknowledgements lost with Redis, may stay pending until
        # the worker reclaims them (VOUCHERD_WORKER_CLAIM_IDLE_MS, 30 s): noted, not failed, since every
        # acknowledged redemption is already in PostgreSQL.
        holders = pending_consumers(s.settings, project_id)
        drained_at = wait_until(lambda: books(s.settings, project_id).pending == 0, 45, "messages left pending")
        if drained_at - ended_at > PERSIST_S:
            with capsys.disabled():
                print(f"  note: messages stayed pending {drained_at - ended_at:.1f} s after the burst: {holders}")
        b = assert_reconciled(s.settings, project_id, load, unanswered=unanswered)
        assert b.stored_successes == QUANTITY, (b, load.statuses)
        assert load.statuses[200] <= QUANTITY


def pending_consumers(settings: Settings, project_id: str) -> dict[str, int]:
    """The consumers holding unacknowledged redemption messages, and how many each."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        stream = keys.project_stream(project_id, redemption_records.STREAM)
        summary = client.xpending(stream, "voucherd")
        return {c["name"]: int(c["pending"]) for c in summary["consumers"] or []}
    finally:
        client.close()
