"""Many calls of one Lua script with thousands of keys each, for bulk writes (code generation).

redis-py packs every argument of a command in a Python loop (encode, length, buffer checks): for a
million generated codes that loop was the largest part of the worker's CPU. Here a batch is packed
with a handful of ``bytes.join`` calls (every code of a generation usually has the same length, so
each argument's RESP header is the same bytes), all batches are written on one connection at once and
the replies read in order: the same commands and replies as a redis-py pipeline, packed for less.

A cluster client (``redis+cluster://``) has no single connection to write on: it gets a pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any

import redis.asyncio as aioredis


def _bulk_strings(items: Sequence[bytes], prefix: bytes = b"") -> bytes:
    """The RESP bulk strings of ``prefix + item`` for each item."""
    if not items:
        return b""
    lengths = set(map(len, items))
    if len(lengths) == 1:
        head = b"$%d\r\n%s" % (len(prefix) + lengths.pop(), prefix)
        return head + (b"\r\n" + head).join(items) + b"\r\n"
    return b"".join([b"$%d\r\n%s%s\r\n" % (len(prefix) + len(item), prefix, item) for item in items])


def pack_evalsha(sha: str, keys: Sequence[bytes], args: Sequence[bytes], key_prefix: bytes = b"") -> bytes:
    """``EVALSHA sha len(keys) key_prefix+key… arg…`` as one RESP command."""
    head = (b"EVALSHA", sha.encode(), b"%d" % len(keys))
    return (
        b"*%d\r\n" % (len(head) + len(keys) + len(args))
        + _bulk_strings(head)
        + _bulk_strings(keys, key_prefix)
        + _bulk_strings(args)
    )


async def run_script_batches(
    redis: aioredis.Redis, source: str, batches: Sequence[tuple[Sequence[bytes], Sequence[bytes]]], key_prefix: bytes
) -> list[Any]:
    """Run the script once per ``(keys, args)`` batch (each key is ``key_prefix + key``); the replies in order.

    An error reply raises (after the remaining replies are read or the connection is dropped, so
    that no reply is left for the connection's next user).
    """
    if not batches:
        return []
    if not plain(redis):  # a cluster client
        script = redis.register_script(source)
        async with redis.pipeline(transaction=False) as pipe:
            for keys, args in batches:
                await script(keys=[key_prefix + key for key in keys], args=list(args), client=pipe)
            return list(await pipe.execute())
    sha = await redis.script_load(source)  # EVALSHA below cannot meet NOSCRIPT (short of a SCRIPT FLUSH)
    return await run_packed(redis, [pack_evalsha(sha, keys, args, key_prefix) for keys, args in batches])


def pack_command(args: Sequence[bytes]) -> bytes:
    """One RESP command of these arguments."""
    return b"*%d\r\n" % len(args) + _bulk_strings(args)


def pack_keys_command(name: bytes, keys: Sequence[bytes], key_prefix: bytes = b"") -> bytes:
    """``name key_prefix+key…`` (EXISTS, DEL) as one RESP command."""
    return b"*%d\r\n" % (1 + len(keys)) + _bulk_strings([name]) + _bulk_strings(keys, key_prefix)


def pack_hset(key: bytes, fields: Sequence[bytes], values: Sequence[bytes], value_prefix: bytes = b"") -> bytes:
    """``HSET key field value_prefix+value …`` as one RESP command (joined in C when the lengths repeat)."""
    head = b"*%d\r\n" % (2 + 2 * len(fields)) + _bulk_strings([b"HSET", key])
    field_lengths, value_lengths = set(map(len, fields)), set(map(len, values))
    if len(field_lengths) == 1 and len(value_lengths) == 1:
        field_head = b"$%d\r\n" % field_lengths.pop()
        value_head = b"\r\n$%d\r\n%s" % (len(value_prefix) + value_lengths.pop(), value_prefix)
        pieces = chain.from_iterable(zip(repeat(field_head), fields, repeat(value_head), values, repeat(b"\r\n")))
        return head + b"".join(pieces)
    pairs = [item for pair in zip(fields, (value_prefix + value for value in values), strict=True) for item in pair]
    return head + _bulk_strings(pairs)


def plain(redis: aioredis.Redis) -> bool:
    """Whether ``run_packed`` can write on this client (not a cluster client, which has no single connection)."""
    return getattr(redis, "connection_pool", None) is not None


async def run_packed(redis: aioredis.Redis, commands: Sequence[bytes]) -> list[Any]:
    """Write these packed commands on one connection at once; the replies in order (as ``run_script_batches``).

    Not for a cluster client (see :func:`plain`). An error reply raises (the connection is dropped).
    """
    if not commands:
        return []
    pool: Any = redis.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(commands)
        replies = [await connection.read_response(disable_decoding=True) for _ in commands]
    except BaseException:
        await connection.disconnect()  # replies may be left unread on it
        raise
    finally:
        await pool.release(connection)
    return replies
