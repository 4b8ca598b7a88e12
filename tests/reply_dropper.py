"""A TCP proxy in front of a real Redis that can lose the reply to one chosen command.

It forwards bytes both ways unchanged. Armed with a marker, the first connection whose request
contains it becomes the victim: its reply arrives from Redis (so the command ran), is held back,
and once the test releases it the client's connection is closed instead of the reply delivered.
That is the one failure a client cannot resolve by itself: sent, applied, answer lost. It can also
refuse connections (accept and close at once), a failure before any command was sent.
"""

from __future__ import annotations

import asyncio
import contextlib


class ReplyDropper:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.connections = 0  # client connections accepted so far
        self.refuse = 0  # this many next connections are closed as soon as they are accepted
        self._server: asyncio.Server | None = None
        self._marker: bytes | None = None
        self.reply_held = asyncio.Event()  # set when Redis has answered the victim's command
        self.release = asyncio.Event()  # set by the test: now drop the victim's connection

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arm(self, marker: bytes) -> None:
        self._marker = marker
        self.reply_held.clear()
        self.release.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.refuse > 0:
            self.refuse -= 1
            client_writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return
        victim = asyncio.Event()

        async def requests() -> None:
            while data := await client_reader.read(65536):
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    victim.set()
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def replies() -> None:
            while data := await upstream_reader.read(65536):
                if victim.is_set():
                    self.reply_held.set()
                    await self.release.wait()
                    return  # the reply is dropped with the connection
                client_writer.write(data)
                await client_writer.drain()

        pumps = [asyncio.ensure_future(requests()), asyncio.ensure_future(replies())]
        with contextlib.suppress(Exception):
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for writer in (client_writer, upstream_writer):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
