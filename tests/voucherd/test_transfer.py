"""``voucherd import`` / ``export``: a CSV import followed to its end, an export streamed back."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from typing import Any

from tests.conftest import ProjectKeys
from voucherd.jobs import transfer
from voucherd.platform import db
from voucherd.platform.redis_client import create_redis, scripts_for
from voucherd.platform.settings import Settings
from worker.base import WorkerContext
from worker.loop import Consumer
from worker.tasks import discover

CODES = "Code,Voucher Type,Value,Discount Type,Active\n" + "".join(
    f"CLI-{n:03d},DISCOUNT_VOUCHER,5,AMOUNT,TRUE\n" for n in range(120)
)


def test_import_then_export_round_trip(settings: Settings, project: ProjectKeys) -> None:
    progress: list[tuple[int, int]] = []

    async def scenario() -> tuple[dict[str, Any], str]:
        pool = await db.create_pool(settings.database_url, 1, 4)
        redis = create_redis(settings.redis_url)
        worker = Consumer(
            WorkerContext(redis=redis, pool=pool, scripts=scripts_for(redis), settings=settings),
            discover(),
            claim_idle_ms=100,
            block_ms=20,
        )
        running = asyncio.create_task(worker.run())
        try:
            async with pool.acquire() as conn:
                action = await transfer.import_file(
                    conn,
                    redis,
                    project.project_id,
                    "vouchers",
                    CODES.encode(),
                    report=lambda done, total: progress.append((done, total)),
                    timeout_s=60,
                )
                out = io.StringIO()
                written = await transfer.export(conn, project.project_id, "vouchers", out, report=lambda d, t: None)
                assert written == 120
                return action, out.getvalue()
        finally:
            worker.stop()
            await asyncio.wait_for(running, 10)
            await redis.aclose()
            await pool.close()

    action, exported = asyncio.run(scenario())
    assert action["status"] == "DONE" and action["result"]["done_count"] == 120
    assert progress[-1] == (100, 100) and all(a <= b for (a, _), (b, _) in itertools.pairwise(progress))
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert sorted(r["code"] for r in rows) == [f"CLI-{n:03d}" for n in range(120)]
    assert {r["type"] for r in rows} == {"DISCOUNT_VOUCHER"} and {r["redeemed_quantity"] for r in rows} == {"0"}


def test_the_progress_bar_draws_in_place() -> None:
    out = io.StringIO()
    report = transfer.progress_bar(out, width=10)
    report(5, 10)
    report(10, 10)
    text = out.getvalue()
    assert "\r[#####.....]  50%  5/10" in text and "\r[##########] 100%  10/10" in text and text.endswith("\n")


def test_the_export_command_writes_a_csv_file(settings: Settings, project: ProjectKeys, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    async def seed() -> None:
        conn = await db.connect(settings.database_url)
        try:
            await conn.execute(
                "INSERT INTO customers (project_id, id, source_id, name) VALUES ($1, 'cust_a', 'ann', 'Ann'), "
                "($1, 'cust_b', 'bob', 'Bob')",
                project.project_id,
            )
        finally:
            await conn.close()

    asyncio.run(seed())
    target = tmp_path / "customers.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voucherd.cli",
            "export",
            "customers",
            "--project",
            project.project_id,
            "--output",
            str(target),
        ],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    rows = list(csv.DictReader(target.open()))
    assert [(r["id"], r["source_id"], r["name"]) for r in rows] == [("cust_a", "ann", "Ann"), ("cust_b", "bob", "Bob")]
    assert b"exported 2 customers" in result.stderr
