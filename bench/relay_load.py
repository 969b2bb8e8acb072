"""Visitors sending over WebSockets to a relay in a child process (``bench/relay_server.py``), the fake
Slack in this process: what the child's CPU and the wall clock say per relayed message."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.harness import ORIGIN, Visitor, clean_environment, free_port  # noqa: E402

TOKEN = re.compile(r"\bv(\d+)m(\d+)\b")


@dataclass
class Result:
    mode: str
    messages: int
    seconds: float
    cpu_seconds: float
    statements: int
    transactions: int
    handoffs: int
    inversions: int
    #: to PostgreSQL (0 on SQLite)
    round_trips: int = 0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_ms_per_message(self) -> float:
        return 1000 * self.cpu_seconds / self.messages

    def per_message(self, count: int) -> float:
        return count / self.messages


class Server:
    """``bench/relay_server.py`` in a child process; ``extra``: more of its arguments (Matrix)."""

    def __init__(self, mode: str, slack: FakeSlack | None, db: str, extra: Sequence[str] = ()) -> None:
        self.mode, self.slack, self.db, self.extra = mode, slack, db, list(extra)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Server:
        # BENCH_PROFILE=out.txt: the server runs under py-spy (``pip install py-spy``), which writes there,
        # BENCH_PROFILE_RATE times a second (100 unless set)
        profile = os.environ.get("BENCH_PROFILE")
        rate = os.environ.get("BENCH_PROFILE_RATE", "100")
        wrap = ["py-spy", "record", "--format", "raw", "--nonblocking", "--rate", rate, "-o", profile, "--"]
        wrap = wrap if profile else []
        self.proc = await asyncio.create_subprocess_exec(
            *wrap,
            sys.executable,
            str(ROOT / "bench" / "relay_server.py"),
            f"--mode={self.mode}",
            f"--slack-url={self.slack.api_url if self.slack else ''}",
            f"--port={self.port}",
            f"--db={self.db}",
            *self.extra,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=clean_environment(),
            cwd=ROOT,
        )
        line = await asyncio.wait_for(self._line(), 60)
        while profile and line != "ready":  # py-spy's own words come first on the same stdout
            line = await asyncio.wait_for(self._line(), 60)
        assert line == "ready", line
        return self

    async def _line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        return (await self.proc.stdout.readline()).decode().strip()

    async def mark(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"mark\n")
        await self.proc.stdin.drain()
        return dict(json.loads(await self._line()))

    async def __aexit__(self, *_: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"quit\n")
        await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class Client:
    """One visitor: sends a line, waits for the server to answer it (its echo), then sends the next."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, closers: list[Any]) -> None:
        self.ws = ws
        self.closers = closers

    async def say(self, text: str) -> None:
        await self.ws.send_json({"type": "message", "client_msg_id": uuid.uuid4().hex, "text": text})
        while True:
            msg = await self.ws.receive(timeout=60)
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            frame = json.loads(msg.data)
            if frame.get("type") == "message" and frame["message"].get("text") == text:
                return

    async def close(self) -> None:
        await self.ws.close()
        for close in self.closers:
            await close()


async def connect(server: Server, i: int) -> Client:
    if server.mode in ("bare", "stored"):
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(server.url.replace("http", "ws") + "/ws")
        return Client(ws, [session.close])
    visitor = Visitor(server.url)
    await visitor.start(name=f"Visitor {i}")
    live = await visitor.socket()
    return Client(live.ws, [visitor.close])


class Seen:
    """Which visitor lines reached the fake Slack, and in which order per visitor."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self.done = 0
        self.tokens: set[tuple[int, int]] = set()
        self.last: dict[int, int] = {}
        self.inversions = 0

    def update(self) -> int:
        calls = self.slack.calls
        for call in calls[self.done :]:
            if call.method != "chat.postMessage" or call.status != 200:
                continue
            for v, m in TOKEN.findall(str(call.params.get("text", ""))):
                key = (int(v), int(m))
                if key in self.tokens:
                    continue
                self.tokens.add(key)
                if key[1] < self.last.get(key[0], -1):
                    self.inversions += 1
                self.last[key[0]] = max(key[1], self.last.get(key[0], -1))
        self.done = len(calls)
        return len(self.tokens)

    async def wait_for(self, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.update() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.tokens)} of {count} lines reached Slack")
            await asyncio.sleep(0.01)


async def run(mode: str, visitors: int, messages: int, database: str | None = None) -> Result:
    """``visitors`` visitors each say one line (warm-up: the threads' roots), then ``messages`` more
    each as fast as the server answers; measured from the end of the warm-up until Slack has them all.
    ``database``: a database URL (PostgreSQL); else a fresh SQLite file."""
    async with FakeSlack() as slack:
        with tempfile.TemporaryDirectory() as tmp:
            async with Server(mode, slack, database or f"{tmp}/bench.db") as server:
                clients = [await connect(server, i) for i in range(visitors)]
                seen = Seen(slack)
                try:
                    await asyncio.gather(*(c.say(f"v{i}m0") for i, c in enumerate(clients)))
                    await seen.wait_for(visitors)
                    before = await server.mark()
                    started = time.monotonic()

                    async def talk(i: int, client: Client) -> None:
                        for m in range(1, messages + 1):
                            await client.say(f"v{i}m{m}")

                    await asyncio.gather(*(talk(i, c) for i, c in enumerate(clients)))
                    await seen.wait_for(visitors * (messages + 1))
                    seconds = time.monotonic() - started
                    after = await server.mark()
                finally:
                    for c in clients:
                        await c.close()
    return Result(
        mode,
        visitors * messages,
        seconds,
        after["cpu"] - before["cpu"],
        after["statements"] - before["statements"],
        after["transactions"] - before["transactions"],
        after["handoffs"] - before["handoffs"],
        seen.inversions,
        after["round_trips"] - before["round_trips"],
    )


__all__ = ["ORIGIN", "Client", "Result", "Server", "connect", "run"]
