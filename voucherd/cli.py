"""The ``voucherd`` command: run, serve, worker, migrate, create-project, create-management-key, status,
rebuild-cache, purge-metadata-key."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from voucherd.platform import db, projects
from voucherd.platform.localstack import LocalStackError, PortBook, PostgresServer, RedisServer
from voucherd.platform.logs import configure_logging
from voucherd.platform.settings import Settings, SettingsError
from voucherd.platform.supervisor import Child, Store, Supervisor

log = logging.getLogger("voucherd")


# --- one-shot commands -------------------------------------------------------------------------


async def _with_connection(settings: Settings, action: Any) -> Any:
    conn = await db.connect(settings.database_url)
    try:
        return await action(conn)
    finally:
        await conn.close()


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    applied = asyncio.run(db.migrate_dsn(settings.database_url))
    print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
    return 0


def cmd_create_project(settings: Settings, args: argparse.Namespace) -> int:
    async def create(conn: Any) -> Any:
        await db.migrate(conn)
        return await projects.create_project(conn, {"name": args.name})

    project, server_key, client_key = asyncio.run(_with_connection(settings, create))
    created = {
        "project_id": project["id"],
        "name": project["name"],
        "server_side_key": server_key.as_app(),
        "client_side_key": client_key.as_app(),
    }
    print(json.dumps(created, indent=2))
    return 0


def cmd_create_management_key(settings: Settings, _args: argparse.Namespace) -> int:
    async def create(conn: Any) -> projects.KeyPair:
        await db.migrate(conn)
        return await projects.create_management_key(conn)

    pair = asyncio.run(_with_connection(settings, create))
    print(json.dumps({"management_id": pair.key_id, "management_token": pair.token}, indent=2))
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from voucherd import status
    from voucherd.platform.redis_client import create_redis

    async def collect() -> dict[str, Any]:
        client = create_redis(settings.redis_url)
        try:
            return await status.collect(client, settings.database_url)
        finally:
            await client.aclose()

    report = asyncio.run(collect())
    print(json.dumps(report, indent=2, default=str))
    healthy = report["redis"] == "ok" and report["postgres"] == "ok"
    return 0 if healthy else 1


def cmd_rebuild_cache(settings: Settings, args: argparse.Namespace) -> int:
    from voucherd.jobs import rebuild
    from voucherd.platform.redis_client import create_redis

    async def run(conn: Any) -> list[rebuild.RebuildReport]:
        client = create_redis(settings.redis_url)
        try:
            ids = [args.project] if args.project else [r["id"] for r in await conn.fetch("SELECT id FROM projects")]
            return [await rebuild.rebuild(conn, client, project_id, force=args.force) for project_id in ids]
        finally:
            await client.aclose()

    for report in asyncio.run(_with_connection(settings, run)):
        print(json.dumps(report.__dict__, indent=2))
    return 0


def cmd_purge_metadata_key(settings: Settings, args: argparse.Namespace) -> int:
    """Enqueue the metadata key purge the management API starts; print its id (and, with --wait, its end)."""
    from voucherd.jobs import bulk
    from voucherd.platform import async_actions
    from voucherd.platform.errors import VoucherdError
    from voucherd.platform.redis_client import create_redis

    async def run(conn: Any) -> int:
        client = create_redis(settings.redis_url)
        try:
            try:
                answer = await bulk.enqueue_purge(conn, client, args.project, args.resource, args.key)
            except VoucherdError as exc:
                print(f"voucherd: {exc}", file=sys.stderr)
                return 2
        finally:
            await client.aclose()
        action_id = answer["async_action_id"]
        print(action_id, flush=True)
        if not args.wait:
            return 0
        deadline = time.monotonic() + args.timeout
        while True:
            action = await async_actions.get(conn, args.project, action_id)
            if action["status"] in ("DONE", "FAILED"):
                print(json.dumps(action, indent=2, default=str))
                return 0 if action["status"] == "DONE" else 1
            if time.monotonic() > deadline:
                print(f"voucherd: {action_id} is still {action['status']} after {args.timeout:g} s", file=sys.stderr)
                return 1
            await asyncio.sleep(0.2)

    result: int = asyncio.run(_with_connection(settings, run))
    return result


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from voucherd.jobs import transfer
    from voucherd.platform.redis_client import create_redis

    data = Path(args.file).read_bytes()

    async def run(conn: Any) -> dict[str, Any]:
        client = create_redis(settings.redis_url)
        try:
            return await transfer.import_file(
                conn, client, args.project, args.kind, data, report=transfer.progress_bar(), wait=not args.no_wait
            )
        finally:
            await client.aclose()

    action = asyncio.run(_with_connection(settings, run))
    print(json.dumps(action, indent=2, default=str))
    return 0 if action.get("status") in ("DONE", "ENQUEUED") else 1


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from voucherd.jobs import transfer

    async def run(conn: Any) -> int:
        if args.output == "-":
            return await transfer.export(conn, args.project, args.kind, sys.stdout, report=transfer.progress_bar())
        with open(args.output, "w", newline="", encoding="utf-8") as out:
            return await transfer.export(conn, args.project, args.kind, out, report=transfer.progress_bar())

    rows = asyncio.run(_with_connection(settings, run))
    print(f"exported {rows} {args.kind}", file=sys.stderr)
    return 0


def _prepare_metrics_dir(settings: Settings) -> None:
    """Every server process writes its metrics to files here; a scrape of any one adds them up.

    prometheus-client reads PROMETHEUS_MULTIPROC_DIR itself, in each worker process, so it is set
    here, before granian starts them; stale files of an earlier run are removed first.
    """
    folder = Path(settings.metrics_dir) if settings.metrics_dir else settings.data_dir.resolve() / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    os.environ["VOUCHERD_METRICS_DIR"] = str(folder)


# Seconds a server worker gets to finish after SIGTERM before granian kills it.
SERVER_STOP_SECONDS = 10


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    _prepare_metrics_dir(settings)
    # Imported once here, after the metrics folder is set: granian forks its workers from this process,
    # so a worker that is respawned after a crash serves about a second sooner.
    import server.app  # noqa: F401

    Granian(
        "server.app:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=settings.server_processes,
        loop=Loops.uvloop,
        log_enabled=True,
        backlog=2048,
        # A worker process that dies is replaced (granian's own crash-loop guard stops the server when the
        # same worker dies again within seconds; then `voucherd run` or systemd restarts the server).
        respawn_failed_workers=True,
        # A worker that has not stopped this long after SIGTERM is killed, so the server always
        # exits (and never leaves a worker behind without its parent).
        workers_kill_timeout=SERVER_STOP_SECONDS,
    ).serve()
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker.__main__ import run

    run(settings, burst=args.burst)
    return 0


# --- run: the whole stack on one machine -------------------------------------------------------


def _fixed(key_id: str, token: str) -> projects.KeyPair | None:
    return projects.KeyPair(key_id, token) if key_id and token else None


async def _prepare_database(settings: Settings, credentials_file: Path, *, own_server: bool) -> dict[str, Any]:
    """Migrate, make sure the default project and a management key exist; return the keys to print."""
    saved: dict[str, Any] = {}
    if credentials_file.exists():
        saved = json.loads(credentials_file.read_text())
    conn = await db.connect(settings.database_url)
    try:
        if await db.migrate(conn) and own_server:
            # Otherwise a crash in the next minutes replays the whole schema's creation, and the
            # checkpoint that ends crash recovery writes and syncs hundreds of files: seconds of outage.
            await conn.execute("CHECKPOINT")
        project, app_key = await projects.ensure_default_project(conn, _fixed(settings.app_id, settings.app_token))
        if app_key is not None:
            saved["app_id"], saved["app_token"] = app_key.key_id, app_key.token
        management = _fixed(settings.management_id, settings.management_token)
        if management is not None or "management_id" not in saved:
            management = await projects.create_management_key(conn, management)
            saved["management_id"], saved["management_token"] = management.key_id, management.token
    finally:
        await conn.close()
    saved["project_id"] = project["id"]
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    credentials_file.write_text(json.dumps(saved, indent=2))
    credentials_file.chmod(0o600)
    return saved


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = PortBook(data_dir / "ports.json")
    stack = Supervisor()
    stopping = False

    def request_stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if not settings.redis_url:
            redis = RedisServer(data_dir / "redis", ports.port_for("redis", data_dir / "redis" / "redis.pid"),
                                appendonly=True, appendfsync=settings.redis_appendfsync)  # fmt: skip
            stack.add_store(Store("redis", redis))
            settings = settings.with_(redis_url=redis.local_url)
            log.info("redis-server on %s (AOF, appendfsync %s), data in %s", settings.redis_url,
                     settings.redis_appendfsync, redis.directory)  # fmt: skip
        if not settings.database_url:
            pg_dir = data_dir / "postgres"
            postgres = PostgresServer(pg_dir, ports.port_for("postgres", pg_dir / "postmaster.pid"))
            stack.add_store(Store("postgres", postgres))
            settings = settings.with_(database_url=postgres.local_url)
            log.info("postgres on %s, data in %s", settings.database_url, postgres.directory)
        own_postgres = any(store.name == "postgres" for store in stack.stores)
        keys = asyncio.run(_prepare_database(settings, data_dir / "credentials.json", own_server=own_postgres))

        env = {**os.environ, **settings.to_env()}
        stack.add_child(Child("server", [sys.executable, "-m", "voucherd.cli", "serve"], env))
        for n in range(settings.worker_processes):
            stack.add_child(Child(f"worker {n + 1}", [sys.executable, "-m", "worker"], env))
        _print_banner(settings, keys, data_dir / "credentials.json")

        # From here on a part that dies is restarted (voucherd/supervisor.py); only a signal stops the stack.
        while not stopping:
            stack.check()
            time.sleep(0.1)
        log.info("stopping")
        return 0
    except LocalStackError as exc:
        log.error("%s", exc)
        return 2
    finally:
        stack.stop()


def _print_banner(settings: Settings, keys: dict[str, Any], credentials_file: Path) -> None:
    url = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        f"voucherd is serving on {url}  (health: {url}/health)",
        f"  project          {keys.get('project_id')}",
        f"  X-App-Id         {keys.get('app_id', '(set VOUCHERD_APP_ID)')}",
        f"  X-App-Token      {keys.get('app_token', '(set VOUCHERD_APP_TOKEN)')}",
        f"  X-Management-Id    {keys.get('management_id')}",
        f"  X-Management-Token {keys.get('management_token')}",
        f"  (saved in {credentials_file}; Ctrl-C stops everything)",
        "",
    ]
    print("\n".join(lines), flush=True)


# --- entry point -------------------------------------------------------------------------------


def _needs_database(settings: Settings) -> None:
    if not settings.database_url:
        raise SettingsError("DATABASE_URL is not set (only `voucherd run` starts its own PostgreSQL)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voucherd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start Redis, PostgreSQL (unless configured), the API server and workers")
    sub.add_parser("serve", help="serve the API (granian, one process per core)")
    worker = sub.add_parser("worker", help="run one worker process")
    worker.add_argument("--burst", action="store_true", help="exit once every stream is drained")
    sub.add_parser("migrate", help="apply database migrations")
    create = sub.add_parser("create-project", help="create a project and print its keys")
    create.add_argument("name")
    sub.add_parser("create-management-key", help="create a management API key and print it")
    sub.add_parser("status", help="what is down (as GET /health), each stream's lag, waiting async actions")
    importer = sub.add_parser("import", help="import a CSV file (as the importCSV endpoints do), with progress")
    importer.add_argument("kind", choices=["vouchers", "customers", "products", "skus"])
    importer.add_argument("file")
    importer.add_argument("--project", required=True, help="project id")
    importer.add_argument("--no-wait", action="store_true", help="print the async action and return at once")
    exporter = sub.add_parser("export", help="export vouchers, customers, redemptions or orders as CSV")
    exporter.add_argument("kind", choices=["vouchers", "customers", "redemptions", "orders"])
    exporter.add_argument("--project", required=True, help="project id")
    exporter.add_argument("--output", default="-", help="file to write (default: standard output)")
    rebuild_cache = sub.add_parser("rebuild-cache", help="rebuild Redis state from PostgreSQL (worker drained)")
    rebuild_cache.add_argument("--project", help="one project id (default: every project)")
    rebuild_cache.add_argument("--force", action="store_true", help="overwrite voucher state present in Redis")
    purge = sub.add_parser(
        "purge-metadata-key", help="remove a metadata key from every object of a resource type (async action)"
    )
    purge.add_argument("resource", help="campaigns, customers, products, vouchers or orders")
    purge.add_argument("key", help="the metadata key to remove")
    purge.add_argument("--project", required=True, help="the project id")
    purge.add_argument("--wait", action="store_true", help="wait until the worker has run it; print the action")
    purge.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits (default 600)")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"voucherd: {exc}", file=sys.stderr)
        return 2
    if args.command == "run" and settings.log_format == "auto":
        settings = settings.with_(log_format="text")
    configure_logging(settings)
    commands = {
        "run": cmd_run,
        "serve": cmd_serve,
        "worker": cmd_worker,
        "migrate": cmd_migrate,
        "create-project": cmd_create_project,
        "create-management-key": cmd_create_management_key,
        "status": cmd_status,
        "import": cmd_import,
        "export": cmd_export,
        "rebuild-cache": cmd_rebuild_cache,
        "purge-metadata-key": cmd_purge_metadata_key,
    }
    try:
        if args.command not in ("run", "serve"):
            _needs_database(settings)
        if args.command in ("status", "rebuild-cache", "purge-metadata-key", "import") and not settings.redis_url:
            raise SettingsError("REDIS_URL is not set")
        return commands[args.command](settings, args)
    except SettingsError as exc:
        print(f"voucherd: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
