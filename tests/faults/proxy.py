"""A TCP proxy in front of PostgreSQL that a test can cut and restore: the database "goes away"."""

from __future__ import annotations

import asyncio
import contextlib

from tests.harness import free_port


class TcpProxy:
    """127.0.0.1:``port`` → ``target``. ``cut("refuse")``: every connection is closed at once (the
    server is down); ``cut("blackhole")``: connections are accepted and never answered (a network
    partition). Either way the connections open at the cut are dropped. ``restore()`` heals it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = "up"
        self.refused = 0  # connections refused or swallowed since the start
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._healed = asyncio.Event()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        self.restore()
        self._drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self, mode: str = "refuse") -> None:
        assert mode in ("refuse", "blackhole")
        self.mode = mode
        self._healed.clear()
        self._drop_all()

    def restore(self) -> None:
        self.mode = "up"
        self._healed.set()
        self._drop_all()  # what the blackhole held never gets an answer: the client sees a reset

    def _drop_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            self.refused += 1
            writer.transport.abort()
            return
        self._open.add(writer)
        if self.mode == "blackhole":
            self.refused += 1
            await self._healed.wait()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
