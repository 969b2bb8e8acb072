"""A real Synapse for the Matrix benchmarks: the support room (the bot, one staff member), and a /sync
loop that notes when each event of the room arrived — what a staff member's client sees, and when.

Synapse comes from ``$SITECHAT_SYNAPSE_VENV`` or ``.venv-synapse`` (``make synapse``), as in the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser  # noqa: E402

Event = dict[str, Any]


def synapse_venv() -> Path:
    venv = Path(os.environ.get("SITECHAT_SYNAPSE_VENV") or ROOT / ".venv-synapse")
    if not (venv / "bin" / "python").exists():
        raise SystemExit(f"no Synapse virtualenv at {venv}: run `make synapse` (or set SITECHAT_SYNAPSE_VENV)")
    return venv


@dataclass
class MatrixRoom:
    synapse: LocalSynapse
    #: the bridge's account (an admin, its rate limits lifted); raw senders use it too
    bot: RegisteredUser
    #: a staff member in the room (rate limits lifted: the benchmarks send on their behalf)
    staff: RegisteredUser
    room_id: str

    def bridge_arguments(self, store: Path) -> list[str]:
        """``bench/relay_server.py``'s arguments for a sitechat whose team chat is this room."""
        return [
            f"--matrix-homeserver={self.synapse.base_url}",
            f"--matrix-user={self.bot.user_id}",
            f"--matrix-password={self.bot.password}",
            f"--matrix-room={self.room_id}",
            f"--matrix-store={store}",
        ]


async def _user(hs: LocalSynapse, prefix: str, admin: bool, name: str) -> RegisteredUser:
    return await hs.register(
        f"{prefix}-{secrets.token_hex(4)}", secrets.token_urlsafe(16), admin=admin, displayname=name
    )


@asynccontextmanager
async def matrix_room(workdir: Path) -> AsyncIterator[MatrixRoom]:
    """A started Synapse in ``workdir`` with the support room; stopped afterwards."""
    hs = LocalSynapse(synapse_venv(), workdir / "synapse")
    await hs.start()
    try:
        bot = await _user(hs, "sitechat", True, "Sitechat")
        staff = await _user(hs, "staff", False, "Sam Staff")
        for user in (bot, staff):
            await hs.lift_ratelimit(bot.access_token, user.user_id)
        room_id = await hs.create_room(bot.access_token, name="Website chat", invite=[staff.user_id])
        await hs.join(staff.access_token, room_id)
        yield MatrixRoom(hs, bot, staff, room_id)
    finally:
        await hs.stop()


@dataclass
class Timeline:
    """One account's /sync loop over the room: every timeline event with the moment it arrived, in
    /sync order. ``gaps`` counts limited timelines (events /sync left out: order unknown there)."""

    base_url: str
    token: str
    room_id: str
    events: list[tuple[float, Event]] = field(default_factory=list)
    gaps: int = 0
    _task: asyncio.Task[None] | None = None
    _session: aiohttp.ClientSession | None = None
    _since: str | None = None

    async def start(self) -> Timeline:
        self._session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"})
        await self._sync(0, record=False)  # from now on
        self._task = asyncio.create_task(self._loop())
        return self

    async def _loop(self) -> None:
        while True:
            await self._sync(5000, record=True)

    async def _sync(self, timeout_ms: int, *, record: bool) -> None:
        assert self._session is not None
        room_filter = {"room": {"rooms": [self.room_id], "timeline": {"limit": 1000}}, "presence": {"types": []}}
        params = {"timeout": str(timeout_ms), "filter": json.dumps(room_filter)}
        if self._since:
            params["since"] = self._since
        async with self._session.get(f"{self.base_url}/_matrix/client/v3/sync", params=params) as r:
            data = await r.json()
        arrived = time.monotonic()
        if r.status != 200:
            await asyncio.sleep(0.2)
            return
        self._since = data["next_batch"]
        room = data.get("rooms", {}).get("join", {}).get(self.room_id)
        if room is None or not record:
            return
        timeline = room.get("timeline", {})
        self.gaps += bool(timeline.get("limited"))
        self.events.extend((arrived, e) for e in timeline.get("events", ()))

    def messages(self, sender: str) -> list[tuple[float, Event]]:
        return [(t, e) for t, e in self.events if e.get("type") == "m.room.message" and e.get("sender") == sender]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()


async def room_history(room: MatrixRoom, sender: str) -> list[Event]:
    """``sender``'s messages in the room as /messages gives them, oldest first."""
    found: list[Event] = []
    url = f"{room.synapse.base_url}/_matrix/client/v3/rooms/{quote(room.room_id, safe='')}/messages"
    params = {"dir": "b", "limit": "1000"}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {room.staff.access_token}"}) as http:
        while True:
            async with http.get(url, params=params) as r:
                data = await r.json()
            chunk = data.get("chunk", [])
            found.extend(e for e in chunk if e.get("type") == "m.room.message" and e.get("sender") == sender)
            if not chunk or not data.get("end"):
                break
            params["from"] = data["end"]
    return found[::-1]


def body(event: Event) -> str:
    return str(event.get("content", {}).get("body", ""))


def thread_of(event: Event) -> str | None:
    relation = event.get("content", {}).get("m.relates_to") or {}
    return relation.get("event_id") if relation.get("rel_type") == "m.thread" else None
