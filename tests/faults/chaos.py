"""What the chaos test of several instances needs: two real ``sitechat run`` processes on one PostgreSQL,
a widget and a Slack that retry the way the real ones do, and the faults (kill -9, cut connections).

A PostgreSQL connection belongs to one instance by its ``application_name`` (``sitechat-<instance id>``),
but the id is random per process and not logged. It is found from the outside, as an operator would:
the process's own TCP sockets to PostgreSQL (``/proc/<pid>/fd`` → socket inodes → ``/proc/net/tcp``)
give their local ports, and ``pg_stat_activity.client_port`` names the backends at the other end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_event, signed_json
from tests.faults.process import BridgeProcess, bridge_env, write_env
from tests.harness import ORIGIN, SIGNING_SECRET, free_port

JSON = dict[str, Any]
PG_PORT = 5432
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)


def plain_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


def new_pg_bridge(workdir: Path, slack: FakeSlack, database_url: str, **extra: str) -> BridgeProcess:
    """A ``sitechat run`` (not started) on the shared PostgreSQL database, with its own port and work dir."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    unused_sqlite = workdir / "unused.db"  # bridge_env wants a path; the URL below replaces it
    values = bridge_env(unused_sqlite, slack, port, SITECHAT_DATABASE_URL=database_url, **extra)
    return BridgeProcess(write_env(workdir / "sitechat.env", values), port, workdir, unused_sqlite)


def is_up(bridge: BridgeProcess) -> bool:
    return bridge.proc is not None and bridge.proc.returncode is None


# ---------------------------------------------------------------------------------------------- faults


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(OSError):
            target = os.readlink(fd_dir / fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def postgres_client_ports(pid: int) -> list[int]:
    """Local ports of the process's TCP connections to PostgreSQL's port."""
    inodes = _socket_inodes(pid)
    ports: list[int] = []
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                local, remote, inode = cols[1], cols[2], cols[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == PG_PORT:
                    ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


async def cut_instance(database_url: str, bridge: BridgeProcess) -> tuple[list[str], int]:
    """``pg_terminate_backend`` every connection of this one process: (its application names, how many)."""
    assert bridge.proc is not None
    ports = postgres_client_ports(bridge.proc.pid)
    admin = await asyncpg.connect(plain_dsn(database_url))
    try:
        dbname = await admin.fetchval("SELECT current_database()")
        names = [
            r["application_name"]
            for r in await admin.fetch(
                "SELECT DISTINCT application_name FROM pg_stat_activity"
                " WHERE datname = $1 AND client_port = ANY($2::int[]) AND application_name LIKE 'sitechat-%'",
                dbname,
                ports,
            )
        ]
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND application_name = ANY($2::text[])",
            dbname,
            names,
        )
        return names, len(rows)
    finally:
        await admin.close()


async def pending_deliveries(database_url: str) -> int:
    admin = await asyncpg.connect(plain_dsn(database_url))
    try:
        return int(await admin.fetchval("SELECT count(*) FROM delivery WHERE NOT done"))
    finally:
        await admin.close()


# ---------------------------------------------------------------------------------------------- load


@dataclass
class Tally:
    """What the clients went through (for the summary)."""

    visitor_retries: int = 0
    visitor_switches: int = 0
    agent_retries: int = 0
    failures: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        if len(self.failures) < 400:
            self.failures.append(what)


class ChaosVisitor:
    """A widget: sends each line until the server has it, with the same ``client_msg_id`` every time,
    going to the other instance when the one it tried fails (down, cut off, 5xx)."""

    def __init__(self, name: str, bridges: list[BridgeProcess], first: int, tally: Tally) -> None:
        self.name = name
        self.bridges = bridges
        self.first = first
        self.tally = tally
        self.session = aiohttp.ClientSession(timeout=REQUEST_TIMEOUT)
        self.conversation_id = ""
        self.token = ""
        self.sent: list[str] = []  # lines acknowledged (201/200), in the order sent

    def _headers(self) -> dict[str, str]:
        headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def _call(self, index: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = self.bridges[index % 2].url + path
        data = json.dumps(body) if body is not None else None
        async with self.session.request(method, url, data=data, headers=self._headers()) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text) if text else None
            except ValueError:
                return r.status, text

    async def start(self, deadline: float) -> None:
        body = {
            "visitor": {"name": self.name, "email": f"{self.name.split()[0].lower()}@example.com"},
            "page": {"url": "https://acme.example/pricing", "title": "Pricing"},
            "locale": "en-GB",
            "timezone": "Europe/London",
        }
        index = self.first
        while True:
            try:
                status, payload = await self._call(index, "POST", "/api/v1/sites/acme/conversations", body)
                if status == 201:
                    self.conversation_id, self.token = payload["conversation"]["id"], payload["token"]
                    return
                self.tally.note(f"{self.name} start via {index % 2}: {status} {payload}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.tally.note(f"{self.name} start via {index % 2}: {type(exc).__name__}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} could not start a conversation")
            index += 1
            await asyncio.sleep(0.2)

    async def say(self, text: str, index: int, deadline: float) -> None:
        body = {"client_msg_id": uuid.uuid4().hex, "text": text}
        path = f"/api/v1/conversations/{self.conversation_id}/messages"
        tries = 0
        while True:
            tries += 1
            try:
                status, payload = await self._call(index, "POST", path, body)
                if status in (200, 201):
                    self.sent.append(text)
                    return
                self.tally.note(f"{self.name} {text!r} via {index % 2}: {status} {payload}")
                if status == 429:
                    await asyncio.sleep(1.0)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.tally.note(f"{self.name} {text!r} via {index % 2}: {type(exc).__name__}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {text!r} was never stored (tried {tries} times)")
            self.tally.visitor_retries += 1
            self.tally.visitor_switches += 1
            index += 1  # the other instance
            await asyncio.sleep(0.15)

    async def messages(self, index: int = 0) -> list[JSON]:
        """The conversation as stored (GET …/messages), from whichever instance answers."""
        last: Any = None
        for i in (index, index + 1):
            try:
                status, payload = await self._call(i, "GET", f"/api/v1/conversations/{self.conversation_id}/messages")
                if status == 200:
                    return list(payload["messages"])
                last = (status, payload)
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = exc
        raise AssertionError(f"{self.name}: no instance gave the messages ({last})")

    async def close(self) -> None:
        await self.session.close()


class ChaosAgent:
    """An agent in Slack: the message is in the fake's thread, the event goes to either instance; a
    non-2xx (or no answer) brings the same event again with Slack's retry headers and the same event_id."""

    def __init__(self, slack: FakeSlack, bridges: list[BridgeProcess], tally: Tally, user_id: str = "UAGENT") -> None:
        self.slack = slack
        self.bridges = bridges
        self.tally = tally
        self.user_id = user_id
        slack.add_user(user_id, "alice", display_name="Alice", image_url=f"https://avatars.example/{user_id}.png")
        self.session = aiohttp.ClientSession(timeout=REQUEST_TIMEOUT)
        self.event_ids: dict[str, str] = {}  # reply text → event_id

    async def reply(self, channel: str, root_ts: str, text: str, index: int, deadline: float) -> None:
        stored = self.slack.add_message(channel, self.user_id, text, thread_ts=root_ts)
        event = message_event(channel, self.user_id, text, ts=stored["ts"], thread_ts=root_ts)
        payload = event_callback(event)
        self.event_ids[text] = payload["event_id"]
        attempt = 0
        while True:
            body, headers = signed_json(SIGNING_SECRET, payload)
            if attempt:
                headers = {**headers, "X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"}
            url = self.bridges[index % 2].url + "/slack/events"
            try:
                async with self.session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    if 200 <= r.status < 300:
                        return
                    self.tally.note(f"agent {text!r} via {index % 2}: {r.status}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.tally.note(f"agent {text!r} via {index % 2}: {type(exc).__name__}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the agent's reply {text!r} was never taken ({attempt + 1} tries)")
            attempt += 1
            self.tally.agent_retries += 1
            index += 1  # Slack's retry may reach the other instance behind the load balancer
            await asyncio.sleep(0.3)

    async def close(self) -> None:
        await self.session.close()


def pause(rng: random.Random, low: float, high: float) -> float:
    """A random pause between load steps (load shaping, not synchronisation)."""
    return rng.uniform(low, high)


def tail(bridge: BridgeProcess, lines: int = 40) -> str:
    return "".join(bridge.output.splitlines(keepends=True)[-lines:])


def notable_lines(bridge: BridgeProcess, limit: int = 60) -> str:
    """Warnings, errors and tracebacks of every run of the process (for the report)."""
    keep = [
        ln
        for ln in bridge.output.splitlines()
        if ln.startswith("--- start") or any(w in ln for w in ("ERROR", "WARNING", "Traceback", "Error", "CRITICAL"))
    ]
    return "\n".join(keep[-limit:])
