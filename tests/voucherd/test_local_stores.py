"""The stores ``voucherd run`` starts (voucherd.platform.localstack): reached over Unix sockets
(``local_url``: the same commands, scripts and retry rule as over TCP, without the TCP stack on every
round trip), and PostgreSQL compressing large values with lz4 where its build can.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from tests.services import scratch_dir
from voucherd.platform.localstack import (
    MAX_SOCKET_PATH,
    PostgresServer,
    RedisServer,
    free_port,
)
from voucherd.platform.redis_client import CheckedUnixConnection, create_redis, scripts_for


def test_local_urls_name_the_sockets_where_they_fit() -> None:
    short = Path("/tmp/vd-sock")
    assert RedisServer(short, 4242).local_url == "unix:///tmp/vd-sock/redis.sock?db=0"
    assert PostgresServer(short, 4343).local_url == "postgresql://voucherd@/voucherd?host=/tmp/vd-sock&port=4343"
    # sockaddr_un cannot hold a longer path: the loopback port, as before
    long = Path("/tmp") / ("d" * MAX_SOCKET_PATH)
    assert RedisServer(long, 4242).local_url == RedisServer(long, 4242).url == "redis://127.0.0.1:4242/0"
    assert PostgresServer(long, 4343).local_url == PostgresServer(long, 4343).url


def test_redis_is_reached_over_its_socket_with_the_script_wire() -> None:
    with scratch_dir("vd-rs-") as folder:
        server = RedisServer(folder, free_port(), appendonly=False)
        server.start()
        try:

            async def main() -> tuple[object, ...]:
                client = create_redis(server.local_url)
                try:
                    await client.set("{floor}:probe", "1")
                    hit = await scripts_for(client).floor(keys=["{floor}:probe"], args=[])
                    info = await client.execute_command("CLIENT", "INFO")
                    return client.connection_pool.connection_class, client.script_wire is not None, hit, info
                finally:
                    await client.aclose()

            connection_class, has_wire, hit, info = asyncio.run(main())
        finally:
            server.stop()
    assert connection_class is CheckedUnixConnection  # the not-sent retry rule holds over the socket too
    assert has_wire and hit == 1
    assert f"addr={server.socket_path}:" in (info.decode() if isinstance(info, bytes) else str(info))


def test_postgres_is_reached_over_its_socket_and_compresses_with_lz4() -> None:
    with scratch_dir("vd-ps-") as folder:
        server = PostgresServer(folder / "data", free_port(), durable=False)
        server.start()
        try:

            async def server_address(dsn: str) -> object:
                conn = await asyncpg.connect(dsn)
                try:
                    return await conn.fetchval("SELECT inet_server_addr()")
                finally:
                    await conn.close()

            async def compression_of_a_large_value() -> tuple[object, bool]:
                conn = await asyncpg.connect(server.local_url)
                try:
                    await conn.execute("CREATE TABLE bodies (body jsonb NOT NULL)")
                    await conn.execute("INSERT INTO bodies VALUES ($1::jsonb)", '{"order": "%s"}' % ("item " * 2000))
                    used = await conn.fetchval("SELECT pg_column_compression(body) FROM bodies")
                    try:  # asked of the server itself, after the insert: does this build know lz4 at all?
                        await conn.execute("SET default_toast_compression = 'lz4'")
                    except asyncpg.InvalidParameterValueError:
                        return used, False
                    return used, True
                finally:
                    await conn.close()

            over_socket = asyncio.run(server_address(server.local_url))
            over_tcp = asyncio.run(server_address(server.url))
            compression, build_has_lz4 = asyncio.run(compression_of_a_large_value())
        finally:
            server.stop()
    assert over_socket is None  # PostgreSQL has no server address for a Unix-socket connection
    assert str(over_tcp) == "127.0.0.1"
    assert compression == ("lz4" if build_has_lz4 else "pglz")
