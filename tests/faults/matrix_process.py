"""The Matrix side of the fault tests: a ``sitechat run`` bridged to a room of the real Synapse, an
HTTP proxy between the two that can hold an answer or report what reached the bridge, and readers
of the room and of the bridge's SQLite file.

The process itself is :class:`tests.faults.process.BridgeProcess` (start, ``kill -9``, restart);
this module only writes its env file for Matrix and adds SIGSTOP/SIGCONT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import aiosqlite
from aiohttp import web

from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser
from tests.fakes.synapse import new_bot, new_user
from tests.faults.process import BridgeProcess, write_env
from tests.harness import ORIGIN, free_port, wait_until

Event = dict[str, Any]
STAFF_NAME = "Sam Staff"
_SEND = re.compile(r"/rooms/(?P<room>[^/]+)/send/(?P<type>[^/]+)/(?P<txn>[^/]+)$")


# -- the room and the people in it ---------------------------------------------------------------


@dataclass
class MatrixRoom:
    """A fresh bot, a staff member and their unencrypted room on the real Synapse."""

    synapse: LocalSynapse
    bot: RegisteredUser
    staff: RegisteredUser
    room_id: str

    @classmethod
    async def create(cls, synapse: LocalSynapse) -> MatrixRoom:
        bot = await new_bot(synapse)
        staff = await new_user(synapse, "staff", displayname=STAFF_NAME)
        # the staff member posts bursts in the tests: no rate limit may stretch them out
        await synapse.lift_ratelimit(bot.access_token, staff.user_id)
        room_id = await synapse.create_room(bot.access_token, name="Website chat", invite=[staff.user_id])
        await synapse.join(staff.access_token, room_id)
        return cls(synapse, bot, staff, room_id)

    async def reply(self, root_id: str, text: str) -> str:
        """The staff member answers in the conversation's thread; the new event's id."""
        return await self.synapse.send_text(self.staff.access_token, self.room_id, text, thread_root=root_id)

    async def events(self) -> list[Event]:
        """Every event of the room, oldest first, read by the staff member with ``/messages``."""
        url = f"{self.synapse.base_url}/_matrix/client/v3/rooms/{quote(self.room_id, safe='')}/messages"
        params: dict[str, str] = {"dir": "f", "limit": "1000"}
        found: list[Event] = []
        headers = {"Authorization": f"Bearer {self.staff.access_token}"}
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(url, params=params, headers=headers) as r:
                    page = await r.json()
                    assert r.status == 200, page
                found.extend(page.get("chunk", []))
                if not page.get("chunk") or "end" not in page:
                    return found
                params["from"] = page["end"]

    def is_bot_message(self, event: Event) -> bool:
        return bool(event.get("type") == "m.room.message" and event.get("sender") == self.bot.user_id)

    async def roots(self, visitor: str = "Ann") -> list[Event]:
        """The thread roots the bot posted for ``visitor``'s conversations."""
        return [
            e
            for e in await self.events()
            if self.is_bot_message(e)
            and "m.relates_to" not in e["content"]
            and str(e["content"].get("body", "")).startswith(f"Chat from {visitor} ")
        ]

    async def thread_bodies(self, root_id: str) -> list[str]:
        """The bodies of the bot's events in ``root_id``'s thread, oldest first (duplicates included)."""
        bodies = []
        for e in await self.events():
            relation = e.get("content", {}).get("m.relates_to") or {}
            if (
                self.is_bot_message(e)
                and relation.get("rel_type") == "m.thread"
                and relation.get("event_id") == root_id
            ):
                bodies.append(str(e["content"]["body"]))
        return bodies

    async def wait_root(self, visitor: str = "Ann", timeout: float = 15.0) -> Event:
        roots: list[Event] = await wait_until(
            lambda: self.roots(visitor), timeout, f"{visitor}'s thread root in the room"
        )
        return roots[0]


# -- the bridge process --------------------------------------------------------------------------


def matrix_bridge(workdir: Path, room: MatrixRoom, homeserver: str | None = None, **extra: str) -> BridgeProcess:
    """``sitechat run`` (not started) for the ``acme`` site, routed only to ``room``; ``homeserver``
    defaults to the Synapse itself (pass a proxy's URL to put one in between)."""
    port = free_port()
    db_path = workdir / "sitechat.db"
    values = {
        "SITECHAT_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "SITECHAT_HOST": "127.0.0.1",
        "SITECHAT_PORT": str(port),
        # no reminder posts in the thread while a test counts the bot's lines
        "SITECHAT_FIRST_RESPONSE_ALERT_SECONDS": "3600",
        # a 100-message stream from one visitor is the point of one test, not abuse
        "SITECHAT_RATE_MESSAGES_PER_MINUTE": "10000",
        "MATRIX_HOMESERVER": homeserver or room.synapse.base_url,
        "MATRIX_USER_ID": room.bot.user_id,
        "MATRIX_PASSWORD": room.bot.password,
        "SITECHAT_SITES__ACME__NAME": "Acme",
        "SITECHAT_SITES__ACME__ORIGINS": ORIGIN,
        "SITECHAT_SITES__ACME__AUTO_GREETING_SECONDS": "0",  # no greeting among the lines under test
        "SITECHAT_SITES__ACME__MATRIX_ROOM": room.room_id,
    }
    values.update(extra)
    env_file = write_env(workdir / "sitechat.env", values)
    return BridgeProcess(env_file, port, workdir, db_path)


def freeze(bridge: BridgeProcess) -> None:
    """SIGSTOP: the process keeps its sockets (the kernel still takes bytes for it) but runs no code."""
    assert bridge.proc is not None and bridge.proc.returncode is None
    bridge.proc.send_signal(signal.SIGSTOP)


def thaw(bridge: BridgeProcess) -> None:
    if bridge.proc is not None and bridge.proc.returncode is None:
        bridge.proc.send_signal(signal.SIGCONT)


# -- the bridge's SQLite file --------------------------------------------------------------------


async def db_rows(db_path: Path, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with aiosqlite.connect(db_path) as db:
        db.row_factory = aiosqlite.Row
        async with db.execute(sql, args) as cur:
            return [dict(r) for r in await cur.fetchall()]


async def db_execute(db_path: Path, sql: str, *args: Any) -> None:
    """Only while the bridge is dead: the test rewrites what a crash would have left."""
    async with aiosqlite.connect(db_path) as db:
        await db.execute(sql, args)
        await db.commit()


async def stored_token(db_path: Path) -> str | None:
    rows = await db_rows(db_path, "SELECT value FROM sync_state WHERE key = 'matrix:next_batch'")
    return str(rows[0]["value"]) if rows else None


# -- a proxy in front of Synapse -----------------------------------------------------------------


@dataclass
class SendSeen:
    """One ``PUT /rooms/{room}/send/{type}/{txn}`` that went through the proxy."""

    txn_id: str
    room_id: str
    content: Event
    #: Synapse's answer (0 until it answered) and the event id in it
    status: int = 0
    event_id: str | None = None
    #: True when the answer was kept from the bridge
    held: bool = False


@dataclass
class SyncSeen:
    """One ``GET /sync`` answered by Synapse and written to the bridge's socket."""

    since: str | None
    next_batch: str
    event_ids: list[str] = field(default_factory=list)


@dataclass
class _Failure:
    fragment: str
    status: int
    left: int


class MatrixProxy:
    """The bridge's homeserver URL, forwarding every request to the real Synapse unchanged.

    ``hold_sends(match)``: a send whose content matches still reaches Synapse (which stores the
    event), but its answer is kept from the bridge until the proxy stops: "Synapse accepted, the
    bridge never heard". ``fail_next(fragment)``: the proxy answers a request itself, as a failing
    gateway would. Every send and every sync answer is recorded (``sends``, ``syncs``), and
    ``syncs_waiting`` counts the long polls Synapse has not answered yet."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sends: list[SendSeen] = []
        self.syncs: list[SyncSeen] = []
        self.syncs_waiting = 0
        self._hold: Callable[[Event], bool] | None = None
        self._failures: list[_Failure] = []
        #: requests the proxy answered with a failure instead of forwarding: (method, path, status)
        self.failed: list[tuple[str, str, int]] = []
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> MatrixProxy:
        # long polls last up to the bridge's 30 s sync timeout
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def hold_sends(self, match: Callable[[Event], bool] | None) -> None:
        self._hold = match

    def fail_next(self, path_fragment: str, status: int = 502, times: int = 1) -> None:
        """The next ``times`` requests whose path contains ``path_fragment`` never reach Synapse: the
        proxy answers ``status`` with an empty body, like a gateway whose backend is restarting."""
        self._failures.append(_Failure(path_fragment, status, times))

    def sends_where(self, match: Callable[[Event], bool]) -> list[SendSeen]:
        return [s for s in self.sends if match(s.content)]

    def synced(self, event_id: str, after: int = 0) -> bool:
        """Whether a sync answer carrying ``event_id`` was written to the bridge (from ``syncs[after]`` on)."""
        return any(event_id in s.event_ids for s in self.syncs[after:])

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        for failure in self._failures:
            if failure.fragment in request.path and failure.left > 0:
                failure.left -= 1
                self.failed.append((request.method, request.path, failure.status))
                return web.Response(status=failure.status, text="", content_type="text/html")
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        send_match = _SEND.search(request.path)
        send: SendSeen | None = None
        if send_match and request.method == "PUT":
            content = json.loads(body or b"{}")
            send = SendSeen(unquote(send_match["txn"]), unquote(send_match["room"]), content)
            self.sends.append(send)
        is_sync = request.path.endswith("/sync")
        if is_sync:
            self.syncs_waiting += 1
        try:
            async with self._session.request(
                request.method, self.upstream + request.raw_path, data=body or None, headers=headers
            ) as upstream:
                payload = await upstream.read()
                status, content_type = upstream.status, upstream.headers.get("Content-Type", "application/json")
        except (aiohttp.ClientError, TimeoutError):
            if is_sync:
                self.syncs_waiting -= 1
            raise web.HTTPBadGateway() from None
        if send is not None:
            send.status = status
            with contextlib.suppress(ValueError, AttributeError):
                send.event_id = json.loads(payload).get("event_id")
            if self._hold is not None and self._hold(send.content):
                send.held = True
                await self._closing.wait()  # the bridge is killed meanwhile: nobody reads this
        response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
        written = False
        try:
            # a killed bridge's connection is gone: writing to it fails, and that is expected
            with contextlib.suppress(ConnectionError):
                await response.prepare(request)
                await response.write(payload)
                await response.write_eof()
                written = True
        finally:
            if is_sync:
                self.syncs_waiting -= 1
        if is_sync and status == 200 and written:
            self.syncs.append(_sync_seen(request.query, payload))
        return response


def _sync_seen(query: Mapping[str, str], payload: bytes) -> SyncSeen:
    data = json.loads(payload)
    ids = [
        str(e["event_id"])
        for room in data.get("rooms", {}).get("join", {}).values()
        for e in room.get("timeline", {}).get("events", [])
        if "event_id" in e
    ]
    return SyncSeen(query.get("since"), str(data.get("next_batch", "")), ids)
