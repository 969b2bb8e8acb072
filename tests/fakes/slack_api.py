"""A faithful fake of the Slack Web API and of Socket Mode, served by a real aiohttp server.

The real ``slack_sdk`` / ``slack_bolt`` code talks to it over HTTP and WebSocket, so what is
exercised is the SDK's real encoding, parsing, retry and error handling — only Slack is fake.

Fidelity notes (what the fake copies from Slack on purpose):

* Every answer is ``application/json; charset=utf-8`` and HTTP 200, with ``ok`` true or false,
  except rate limits (429 + ``Retry-After`` in whole seconds) and injected gateway faults.
* slack-sdk encodes calls three ways: write methods with blocks (``chat.postMessage``,
  ``chat.update``) as a JSON body; most others as ``params`` — for a POST these land in the
  *query string* with an empty body, not in a form body; ``files.completeUploadExternal``
  sends ``files`` as a JSON *string* in the query.  All three are accepted here.
* Slack reads the token of a JSON body only from the ``Authorization`` header, and read
  methods (``conversations.replies``, ``users.info``…) ignore JSON bodies: the same here.
* A thread must be addressed by its root's ``ts``.  Slack's answer to a wrong ``thread_ts`` on
  ``chat.postMessage`` is murky (python-slack-sdk #840: "ok" but the message never shows;
  bolt-js #2307: ``thread_not_found``); the fake refuses it loudly with ``thread_not_found``.
* ``conversations.history`` (newest first) and ``conversations.replies`` (root first, then oldest
  first) page with an opaque ``cursor`` and ``response_metadata.next_cursor`` ("" on the last page),
  honour ``limit`` (history at most 999, replies 1,000), ``oldest``/``latest``/``inclusive``;
  ``cap_history_pages(15)`` serves 15 a page whatever ``limit`` asks, as Slack has done since 2025
  for commercially distributed apps outside the Marketplace.
* A slash command's ``response_url`` (``response_url()`` issues one on this server) takes a JSON message
  (``text``/``blocks``, ``response_type`` ``ephemeral`` — the default — or ``in_channel``,
  ``replace_original``, ``delete_original``) up to 5 times within 30 minutes, as Slack documents, and
  answers ``ok`` (plain text, like an incoming webhook); beyond that, or for a URL it never issued, a 404
  naming why (``used_url``, ``expired_url``, ``no_service``), for an empty message a 400 ``no_text``.
  ``command_responses`` records what each answer said.
* Files (upload, share, ``files.info``, ``files.delete``, ``url_private``): see ``slack_files``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from tests.fakes.slack_errors import SlackError as _SlackError
from tests.fakes.slack_files import DOWNLOAD, UPLOAD, FakeSlackFiles, FileRecord

__all__ = ["DOWNLOAD", "UPLOAD", "Call", "FakeSlack", "FileRecord"]

JSON = dict[str, Any]
T = TypeVar("T")

# Methods whose parameters Slack reads only from the query string or a form body.
_FORM_ONLY_METHODS = frozenset(
    {
        "users.info",
        "conversations.info",
        "conversations.replies",
        "conversations.history",
        "files.getUploadURLExternal",
        "files.info",
        "apps.connections.open",
        "users.list",
        "chat.getPermalink",
    }
)
#: a response_url takes this many messages, within this many seconds of the command (Slack's documented limits)
RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60
# Parameters that travel as JSON text inside a form body or query string.
_JSON_TEXT_PARAMS = ("blocks", "attachments", "metadata", "files")

MAX_TEXT_CHARS = 40_000  # Slack keeps the first 40,000 characters of `text`, silently.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3_000
DEFAULT_BLOCKS_CHAR_LIMIT = 13_000  # msg_blocks_too_long, roughly (bolt-js #2509)

_HTML_GATEWAY_PAGE = (
    "<html><head><title>{status} Bad Gateway</title></head>"
    "<body><center><h1>{status} Bad Gateway</h1></center><hr><center>envoy</center></body></html>"
)


@dataclass
class Call:
    """One request the fake received.

    ``status`` is the HTTP status answered (0 while still in flight, or when the connection
    was dropped without an answer); ``fault`` names the injected fault, if any.
    """

    method: str
    params: JSON
    at: float
    status: int = 0
    fault: str | None = None
    token: str | None = None
    encoding: str = "query"  # "json", "form", "query" or "raw" (upload bytes)
    error: str | None = None  # the `error` of an ok:false answer
    retry_after: float | None = None  # the Retry-After (seconds) of a 429 answer

    def __repr__(self) -> str:
        brief = {k: v for k, v in self.params.items() if k in ("channel", "ts", "thread_ts", "text", "user")}
        if isinstance(brief.get("text"), str) and len(brief["text"]) > 60:
            brief["text"] = brief["text"][:57] + "..."
        extra = f" fault={self.fault}" if self.fault else ""
        extra += f" error={self.error}" if self.error else ""
        return f"<Call {self.method} status={self.status}{extra} {brief}>"


@dataclass
class _Fault:
    kind: str  # http | error | html | timeout | drop | accept_then_drop | accept_then_hold
    status: int = 429
    retry_after: float = 2.0
    error: str | None = None
    hold: float = 30.0

    @property
    def label(self) -> str:
        if self.kind == "http":
            return f"http_{self.status}"
        if self.kind == "error":
            return f"error:{self.error}"
        if self.kind == "html":
            return f"html_{self.status}"
        return self.kind


@dataclass
class _QueuedFault:
    fault: _Fault
    remaining: int
    when: Callable[[JSON], bool] | None = None


@dataclass
class _Window:
    until: float
    fault: _Fault


@dataclass
class _RandomFaults:
    rate: float
    kinds: tuple[str, ...]
    rng: random.Random
    hold: float


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class _RateLimit:
    per_second: float
    burst: int
    buckets: dict[str, _Bucket] = field(default_factory=dict)


@dataclass
class _Channel:
    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    created: int = field(default_factory=lambda: int(time.time()) - 86_400)
    messages: dict[str, JSON] = field(default_factory=dict)  # ts -> current state


def _ts_key(ts: str) -> tuple[int, int]:
    sec, _, frac = ts.partition(".")
    try:
        return int(sec), int(frac.ljust(6, "0")[:6] or 0)
    except ValueError:
        return (0, 0)


def _truthy(value: Any) -> bool:
    """Slack's reading of a boolean argument: JSON true, or "1"/"true" in a form or query."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return False


def _block_text_chars(value: Any) -> int:
    """Characters of text in a block structure (every `text` string, at any depth)."""
    if isinstance(value, dict):
        total = 0
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                total += len(item)
            else:
                total += _block_text_chars(item)
        return total
    if isinstance(value, list):
        return sum(_block_text_chars(item) for item in value)
    return 0


class FakeSlack(FakeSlackFiles):
    """A fake Slack workspace (Web API + Socket Mode) on 127.0.0.1 with a free port.

    Use as ``async with FakeSlack() as slack:`` and point clients at ``slack.api_url``.
    """

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        channels: Iterable[str] = ("C0SUPPORT", "C0SALES"),
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        app_id: str = "AAPP",
        team_id: str = "T0TEAM",
        *,
        team_name: str = "Sitechat Test",
        team_domain: str = "sitechat-test",
        bot_name: str = "sitechat",
        scopes: str = (
            "chat:write,chat:write.customize,channels:history,groups:history,users:read,files:write,files:read,commands"
        ),
        blocks_char_limit: int | None = DEFAULT_BLOCKS_CHAR_LIMIT,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_name = bot_name
        self.scopes = scopes
        self.blocks_char_limit = blocks_char_limit
        #: at most this many messages per conversations.history/replies page, whatever ``limit`` asks:
        #: since 2025 Slack gives commercially distributed non-Marketplace apps 15 (None: Slack's usual)
        self.history_page_cap: int | None = None

        self.api_url = ""
        self.base_url = ""
        self.socket_url = ""
        self.port = 0

        # Records (cleared by reset()).
        self.calls: list[Call] = []
        self.updates: list[JSON] = []  # every chat.update: {channel, ts, text, blocks, message}
        self.deleted: list[JSON] = []  # every chat.delete: the message as it was, plus "channel"
        self.files: list[FileRecord] = []
        self.socket_envelopes: list[JSON] = []  # every envelope sent to a Socket Mode client
        self.socket_acks: list[JSON] = []  # every ack received
        self.socket_connects = 0
        #: every message posted to a response_url: {"url", "at", **the message as sent}
        self.command_responses: list[JSON] = []
        self._response_urls: dict[str, list[float]] = {}  # path → [issued at, uses so far]

        self._channels: dict[str, _Channel] = {}
        self._missing: set[str] = set()  # channels that answer channel_not_found for now
        for channel_id in channels:
            self.add_channel(channel_id)
        self._users: dict[str, JSON] = {}
        self.add_user(bot_user_id, bot_name, is_bot=True)
        self._pending_files: dict[str, FileRecord] = {}

        # Faults.
        self._queued: dict[str, list[_QueuedFault]] = {}
        self._windows: dict[str, list[_Window]] = {}
        self._random: dict[str, _RandomFaults] = {}
        self._rate_limits: dict[str, _RateLimit] = {}
        self._latency: dict[str, float] = {}

        # ts values: a counter on top of the start time, so they are unique, strictly
        # increasing and still look like real epoch timestamps.
        self._ts_base_us = int(time.time()) * 1_000_000
        self._ts_counter = itertools.count(1)
        self._ids = itertools.count(1)

        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._pending_acks: dict[str, asyncio.Future[JSON]] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeSlack:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        self._file_routes(app)
        app.router.add_get("/socket-mode", self._handle_socket)
        app.router.add_post("/commands/{team}/{command}/{secret}", self._handle_response_url)
        # shutdown_timeout: a request held by a "timeout" fault must not delay stop() by 60 s.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.base_url}/api/"
        self.socket_url = f"ws://127.0.0.1:{self.port}/socket-mode"
        return self

    async def stop(self) -> None:
        self._stopping.set()  # releases requests held by "timeout" faults
        for future in self._pending_acks.values():
            if not future.done():
                future.cancel()
        self._pending_acks.clear()
        await self.close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ workspace setup

    def add_channel(
        self, channel_id: str, name: str | None = None, *, is_private: bool = False, is_member: bool = True
    ) -> None:
        """Add (or replace) a channel; the bot is a member unless ``is_member=False``."""
        self._channels[channel_id] = _Channel(
            id=channel_id, name=name or channel_id.lower(), is_private=is_private, is_member=is_member
        )

    def set_channel_missing(self, channel_id: str, missing: bool = True) -> None:
        """While missing, the channel answers ``channel_not_found`` (deleted, or a wrong id in the
        configuration); its messages are kept for when it comes back (``missing=False``)."""
        if missing:
            self._missing.add(channel_id)
        else:
            self._missing.discard(channel_id)
        self._bump()

    def add_user(
        self,
        user_id: str,
        name: str,
        display_name: str | None = None,
        image_url: str | None = None,
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        tz: str = "Europe/Berlin",
    ) -> JSON:
        """Add a user for users.info.  Like Slack, an unset display name is "" (not absent)."""
        real = real_name if real_name is not None else name
        display = display_name or ""
        image = image_url or f"https://avatars.example.invalid/{user_id}"
        profile: JSON = {
            "real_name": real,
            "real_name_normalized": real,
            "display_name": display,
            "display_name_normalized": display,
            "team": self.team_id,
            "avatar_hash": f"g{user_id.lower()}",
        }
        for size in (24, 32, 48, 72, 192, 512):
            profile[f"image_{size}"] = image if image_url else f"{image}_{size}.png"
        user: JSON = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real,
            "tz": tz,
            "tz_label": "Central European Time",
            "tz_offset": 3600,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
        }
        self._users[user_id] = user
        return copy.deepcopy(user)

    def add_message(
        self,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> JSON:
        """Store a message from a person (an agent's reply, say), as if typed in Slack.

        Returns the stored message (with its new ``ts``); build the matching event with
        ``slack_payloads.message_event(channel, user, text, ts=msg["ts"], thread_ts=...)``.
        """
        chan = self._channels[channel]
        ts = self._next_ts()
        message: JSON = {"type": "message", "user": user, "text": text, "ts": ts, "team": self.team_id}
        if thread_ts is not None:
            root = chan.messages.get(thread_ts)
            if root is None:
                raise KeyError(f"no thread root {thread_ts} in {channel}")
            message["thread_ts"] = thread_ts
            message["parent_user_id"] = root.get("user")
        message.update(extra)
        chan.messages[ts] = message
        self._bump()
        return copy.deepcopy(message)

    # ------------------------------------------------------------------ records

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def messages(self, channel: str) -> list[JSON]:
        """Every stored message of the channel (roots and replies), in ts order."""
        chan = self._channels.get(channel)
        if chan is None:
            return []
        return [copy.deepcopy(chan.messages[ts]) for ts in sorted(chan.messages, key=_ts_key)]

    def thread(self, channel: str, thread_ts: str) -> list[JSON]:
        """The root (if still there) followed by its replies, in ts order."""
        return [m for m in self.messages(channel) if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]

    def replies(self, channel: str, thread_ts: str) -> list[JSON]:
        return [m for m in self.thread(channel, thread_ts) if m["ts"] != thread_ts]

    def message(self, channel: str, ts: str) -> JSON:
        """The current state of one message; KeyError if there is none."""
        chan = self._channels.get(channel)
        if chan is None or ts not in chan.messages:
            raise KeyError(f"no message {ts} in {channel}")
        return copy.deepcopy(chan.messages[ts])

    def updates_of(self, channel: str, ts: str) -> list[JSON]:
        return [u for u in self.updates if u["channel"] == channel and u["ts"] == ts]

    def reset(self) -> None:
        """Forget calls, messages, files and socket records (channels, users and faults stay)."""
        self.calls.clear()
        self.updates.clear()
        self.deleted.clear()
        self.files.clear()
        self.socket_envelopes.clear()
        self.socket_acks.clear()
        self.command_responses.clear()
        self._pending_files.clear()
        for chan in self._channels.values():
            chan.messages.clear()
        self._bump()

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 10.0,
        message: str = "",
    ) -> T:
        """Wait until ``predicate()`` returns something truthy and return it.

        The predicate is re-checked whenever the fake sees a request, an ack or a store
        change (and at least every 0.1 s, for predicates about state outside the fake).
        An exception from the predicate counts as "not yet".  On timeout: AssertionError
        with ``message`` and what the fake saw.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_error: BaseException | None = None
        while True:
            # Capture the event *before* checking, so a change in between is not missed.
            changed = self._changed
            try:
                value = predicate()
            except Exception as exc:
                last_error = exc
            else:
                if value:
                    return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._describe_timeout(message, timeout, last_error))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.1)):
                    await changed.wait()

    def describe(self) -> str:
        """What the fake saw: the last calls and each channel's last messages (for failure messages)."""
        return self._describe_timeout("", 0, None).split("\n", 1)[1]

    def _describe_timeout(self, message: str, timeout: float, last_error: BaseException | None) -> str:
        lines = [f"{message or 'condition'}: not met within {timeout:g} s."]
        if last_error is not None:
            lines.append(f"Last predicate error: {type(last_error).__name__}: {last_error}")
        lines.append(f"Fake Slack saw {len(self.calls)} call(s); the last ones:")
        lines.extend(f"  {call!r}" for call in self.calls[-25:])
        for chan in self._channels.values():
            if chan.messages:
                lines.append(f"Channel {chan.id}: {len(chan.messages)} message(s); the last ones:")
                for ts in sorted(chan.messages, key=_ts_key)[-8:]:
                    msg = chan.messages[ts]
                    where = f" (thread {msg['thread_ts']})" if msg.get("thread_ts") not in (None, ts) else ""
                    lines.append(f"  {ts}{where} {msg.get('user')}: {str(msg.get('text'))[:80]!r}")
        if self.socket_envelopes:
            lines.append(f"Socket Mode: {len(self.socket_envelopes)} envelope(s), {len(self.socket_acks)} ack(s)")
        return "\n".join(lines)

    def _bump(self) -> None:
        """Wake every wait_for(): swap in a fresh event and set the old one."""
        old, self._changed = self._changed, asyncio.Event()
        old.set()

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        count: int = 1,
        status: int = 429,
        retry_after: float = 2.0,
        error: str | None = None,
        kind: str = "http",
        hold: float = 30.0,
        when: Callable[[JSON], bool] | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` ("*" = any method) fail.

        ``when``: only calls whose parameters it accepts count (and fail), e.g. the second part
        of a split post: ``when=lambda p: p["metadata"]["event_payload"]["part"] == 1``.

        kind: "http" (HTTP ``status``; 429 carries Retry-After), "error" (200 ok:false
        ``error``), "html" (a gateway's 502/503 HTML page), "timeout" (hold ``hold`` s, then
        close without answering), "drop" (close at once, nothing done), "accept_then_drop"
        (do the work, then close without answering: the crash-in-flight case),
        "accept_then_hold" (do the work, then hold ``hold`` s before closing without an answer:
        Slack has the message while the client still waits, e.g. to be killed meanwhile).
        """
        if kind not in ("http", "error", "html", "timeout", "drop", "accept_then_drop", "accept_then_hold"):
            raise ValueError(f"unknown fault kind {kind!r}")
        if kind == "error" and not error:
            raise ValueError('kind="error" needs error=..., e.g. "channel_not_found"')
        if kind == "html" and not 500 <= status <= 599:
            status = 502
        fault = _Fault(kind=kind, status=status, retry_after=retry_after, error=error, hold=hold)
        self._queued.setdefault(method, []).append(_QueuedFault(fault, count, when))

    def fail_for(self, method: str, seconds: float, status: int = 429, retry_after: float = 2) -> None:
        """Every call of ``method`` in the next ``seconds`` answers HTTP ``status`` (429: Retry-After)."""
        window = _Window(time.monotonic() + seconds, _Fault(kind="http", status=status, retry_after=retry_after))
        self._windows.setdefault(method, []).append(window)

    def random_faults(
        self,
        method: str,
        rate: float = 0.3,
        kinds: Iterable[str] = ("500", "502_html", "timeout"),
        seed: int = 1,
        hold: float = 2.0,
    ) -> None:
        """Fail a random share ``rate`` of ``method``'s calls, reproducibly (``seed``).

        kinds: "429", "500", "503", "502_html", "503_html", "timeout", "drop", "accept_then_drop",
        "accept_then_timeout" (the work is done, then the answer is held ``hold`` s and lost).
        """
        kinds = tuple(kinds)
        for kind in kinds:
            self._random_fault(kind, hold)  # validate now rather than mid-test
        self._random[method] = _RandomFaults(rate=rate, kinds=kinds, rng=random.Random(seed), hold=hold)

    def rate_limit(self, method: str = "chat.postMessage", per_second: float = 1.0, burst: int = 3) -> None:
        """Emulate Slack's per-channel rate limit: a token bucket per channel, 429 when empty."""
        self._rate_limits[method] = _RateLimit(per_second=per_second, burst=burst)

    def set_latency(self, seconds: float, method: str = "*") -> None:
        """Answer ``method`` ("*" = every method) only after ``seconds``."""
        self._latency[method] = seconds

    def cap_history_pages(self, messages: int | None = 15) -> None:
        """Serve conversations.history/replies at most ``messages`` to a page, as Slack does since 2025 for
        commercially distributed apps outside the Marketplace (None: lift the cap)."""
        self.history_page_cap = messages

    def clear_faults(self) -> None:
        """Remove every injected fault, rate limit and latency."""
        self._queued.clear()
        self._windows.clear()
        self._random.clear()
        self._rate_limits.clear()
        self._latency.clear()

    @staticmethod
    def _random_fault(kind: str, hold: float) -> _Fault:
        if kind == "timeout":
            return _Fault(kind="timeout", hold=hold)
        if kind in ("drop", "accept_then_drop"):
            return _Fault(kind=kind)
        if kind == "accept_then_timeout":
            return _Fault(kind="accept_then_hold", hold=hold)
        if kind.endswith("_html") and kind[:3].isdigit():
            return _Fault(kind="html", status=int(kind[:3]))
        if kind.isdigit():
            return _Fault(kind="http", status=int(kind), retry_after=1)
        raise ValueError(f"unknown random fault kind {kind!r}")

    def _take_fault(self, method: str, params: JSON | None = None) -> _Fault | None:
        for key in (method, "*"):
            queue = self._queued.get(key) or []
            for head in queue:
                if head.when is not None:
                    try:
                        if not head.when(params or {}):
                            continue
                    except (KeyError, TypeError, ValueError):
                        continue
                head.remaining -= 1
                if head.remaining <= 0:
                    queue.remove(head)
                return head.fault
        now = time.monotonic()
        for key in (method, "*"):
            windows = self._windows.get(key)
            if windows:
                windows[:] = [w for w in windows if w.until > now]
                if windows:
                    fault = windows[0].fault
                    # Retry-After counts down with the window, like a real limiter's would.
                    left = max(0.0, windows[0].until - now)
                    return _Fault(kind="http", status=fault.status, retry_after=min(fault.retry_after, left))
        for key in (method, "*"):
            spec = self._random.get(key)
            if spec is not None and spec.rng.random() < spec.rate:
                return self._random_fault(spec.rng.choice(spec.kinds), spec.hold)
        return None

    def _check_rate_limit(self, method: str, params: JSON) -> float | None:
        """Seconds to wait if this call exceeds the emulated rate limit, else None."""
        limit = self._rate_limits.get(method)
        if limit is None:
            return None
        key = str(params.get("channel") or params.get("channel_id") or "")
        now = time.monotonic()
        bucket = limit.buckets.setdefault(key, _Bucket(tokens=float(limit.burst), updated=now))
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * limit.per_second)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / limit.per_second

    # ------------------------------------------------------------------ HTTP plumbing

    @staticmethod
    def _json_response(body: JSON, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            status=status,
            text=json.dumps(body),
            content_type="application/json",
            charset="utf-8",
            headers=headers,
        )

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection without an answer: the client sees ServerDisconnectedError."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never reaches the client

    async def _hold(self, seconds: float) -> None:
        """Sleep server-side (emulating a slow Slack), cut short when the fake stops."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _read_params(self, request: web.Request, method: str) -> tuple[JSON, str, str | None]:
        params: JSON = dict(request.query)
        encoding = "query"
        token: str | None = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :].strip()
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                raw = await request.read()
                body = json.loads(raw) if raw else {}
                if not isinstance(body, dict):
                    raise _SlackError("invalid_json")
                if method not in _FORM_ONLY_METHODS:
                    # Slack takes a JSON body's token only from the Authorization header.
                    params.update(body)
                    encoding = "json"
            else:
                form = await request.post()
                if form:
                    encoding = "form"
                for key, value in form.items():
                    params[key] = value if isinstance(value, str) else getattr(value, "filename", str(value))
        if token is None and isinstance(params.get("token"), str) and encoding != "json":
            token = params.pop("token")
        for name in _JSON_TEXT_PARAMS:
            text = params.get(name)
            if isinstance(text, str):
                with contextlib.suppress(ValueError):
                    params[name] = json.loads(text)
        return params, encoding, token

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        call = Call(method=method, params={}, at=time.monotonic())
        try:
            call.params, call.encoding, call.token = await self._read_params(request, method)
        except (_SlackError, ValueError):
            call.status, call.error = 200, "invalid_json"
            self.calls.append(call)
            self._bump()
            return self._json_response({"ok": False, "error": "invalid_json"})
        self.calls.append(call)
        self._bump()
        try:
            return await self._dispatch(request, call)
        finally:
            self._bump()

    async def _dispatch(self, request: web.Request, call: Call) -> web.StreamResponse:
        latency = self._latency.get(call.method, self._latency.get("*"))
        if latency:
            await self._hold(latency)

        fault = self._take_fault(call.method, call.params)
        if fault is not None:
            call.fault = fault.label
            if fault.kind in ("accept_then_drop", "accept_then_hold"):
                self._run(call)  # the work is done; only the answer is lost
                call.status = 0
                if fault.kind == "accept_then_hold":
                    self._bump()  # the message is there already: let wait_for() see it while we hold
                    await self._hold(fault.hold)
                return self._drop(request)
            return await self._answer_fault(request, call, fault)

        status, body, headers = self._run(call)
        call.status = status
        return self._json_response(body, status=status, headers=headers)

    def _run(self, call: Call) -> tuple[int, JSON, dict[str, str]]:
        """Authenticate, apply the emulated rate limit and run one method."""
        headers: dict[str, str] = {}
        try:
            token_kind = self._authenticate(call.method, call.token)
            if token_kind == "bot":
                # Slack reports the token's scopes on every answer; bolt reads them after auth.test.
                headers["x-oauth-scopes"] = self.scopes
            wait = self._check_rate_limit(call.method, call.params)
            if wait is not None:
                call.fault, call.error = "rate_limited", "ratelimited"
                call.retry_after = max(1, math.ceil(wait))
                headers["Retry-After"] = str(call.retry_after)
                return 429, {"ok": False, "error": "ratelimited"}, headers
            handler = self._methods().get(call.method)
            if handler is None:
                raise _SlackError("unknown_method", req_method=call.method)
            body = handler(call.params)
        except _SlackError as exc:
            call.error = exc.code
            body = {"ok": False, "error": exc.code, **exc.extra}
        return 200, body, headers

    async def _answer_fault(self, request: web.Request, call: Call, fault: _Fault) -> web.StreamResponse:
        if fault.kind == "timeout":
            await self._hold(fault.hold)
            return self._drop(request)
        if fault.kind == "drop":
            return self._drop(request)
        if fault.kind == "error":
            call.status, call.error = 200, fault.error
            return self._json_response({"ok": False, "error": fault.error})
        if fault.kind == "html":
            call.status = fault.status
            return web.Response(
                status=fault.status,
                text=_HTML_GATEWAY_PAGE.format(status=fault.status),
                content_type="text/html",
            )
        # kind == "http"
        call.status = fault.status
        headers: dict[str, str] = {}
        if fault.status == 429:
            # Slack sends whole seconds; slack-sdk's retry handler int()s the header.
            call.retry_after = max(0, math.ceil(fault.retry_after))
            headers["Retry-After"] = str(call.retry_after)
            error = fault.error or "ratelimited"
        else:
            error = fault.error or {500: "internal_error", 503: "service_unavailable"}.get(fault.status, "fatal_error")
        call.error = error
        return self._json_response({"ok": False, "error": error}, status=fault.status, headers=headers)

    def _authenticate(self, method: str, token: str | None) -> str:
        if not token:
            raise _SlackError("not_authed")
        if token == self.bot_token:
            kind = "bot"
        elif token == self.app_token:
            kind = "app"
        else:
            raise _SlackError("invalid_auth")
        if (method == "apps.connections.open") != (kind == "app"):
            raise _SlackError("not_allowed_token_type")
        return kind

    def _methods(self) -> dict[str, Callable[[JSON], JSON]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
            "files.delete": self._files_delete,
            "apps.connections.open": self._apps_connections_open,
        }

    # ------------------------------------------------------------------ helpers for methods

    def _next_ts(self) -> str:
        total = self._ts_base_us + next(self._ts_counter) * 100
        return f"{total // 1_000_000}.{total % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}0{next(self._ids):08d}"

    def _channel(self, params: JSON, name: str = "channel") -> _Channel:
        value = params.get(name)
        if not isinstance(value, str) or not value:
            raise _SlackError("channel_not_found")
        chan = self._channels.get(value)
        if chan is None:
            # chat.postMessage also takes a channel name, with or without "#".
            wanted = value.lstrip("#")
            chan = next((c for c in self._channels.values() if c.name == wanted), None)
        if chan is None or chan.id in self._missing:
            raise _SlackError("channel_not_found")
        return chan

    @staticmethod
    def _required(params: JSON, name: str) -> str:
        value = params.get(name)
        if value is None or value == "":
            raise _SlackError(
                "invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {name}"]}
            )
        return str(value)

    def _check_blocks(self, blocks: Any) -> list[JSON]:
        if not isinstance(blocks, list):
            raise _SlackError("invalid_blocks_format")
        if len(blocks) > MAX_BLOCKS:
            raise _SlackError(
                "invalid_blocks",
                response_metadata={"messages": ["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]},
            )
        for index, block in enumerate(blocks):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise _SlackError(
                    "invalid_blocks",
                    response_metadata={
                        "messages": [f"[ERROR] missing required field: type [json-pointer:/blocks/{index}]"]
                    },
                )
            text = block.get("text")
            if (
                block["type"] == "section"
                and isinstance(text, dict)
                and len(str(text.get("text", ""))) > MAX_SECTION_TEXT
            ):
                raise _SlackError(
                    "invalid_blocks",
                    response_metadata={
                        "messages": [
                            f"[ERROR] must be less than 3001 characters [json-pointer:/blocks/{index}/text/text]"
                        ]
                    },
                )
        if self.blocks_char_limit is not None and _block_text_chars(blocks) > self.blocks_char_limit:
            raise _SlackError("msg_blocks_too_long")
        return blocks

    @staticmethod
    def _check_metadata(metadata: Any) -> JSON:
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            raise _SlackError("invalid_metadata_format")
        return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}

    def _bot_profile(self) -> JSON:
        return {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": self.bot_name,
            "icons": {"image_36": "https://avatars.example.invalid/bot_36.png"},
            "deleted": False,
            "updated": int(time.time()),
            "team_id": self.team_id,
        }

    def _thread_root(self, chan: _Channel, ts: str) -> JSON:
        """The root of the thread addressed by ``ts`` (a root's ts, for a new reply)."""
        root = chan.messages.get(ts)
        if root is None or root.get("thread_ts") not in (None, ts):
            raise _SlackError("thread_not_found")
        return root

    def _api_view(self, chan: _Channel, message: JSON, include_metadata: bool) -> JSON:
        """A stored message as conversations.replies/history show it (thread fields computed)."""
        view = copy.deepcopy(message)
        if not include_metadata:
            view.pop("metadata", None)
        ts = message["ts"]
        if message.get("thread_ts") in (None, ts):
            replies = [m for m in chan.messages.values() if m.get("thread_ts") == ts and m["ts"] != ts]
            if replies:
                replies.sort(key=lambda m: _ts_key(m["ts"]))
                users = list(dict.fromkeys(str(m.get("user") or m.get("bot_id")) for m in replies))
                view.update(
                    thread_ts=ts,
                    reply_count=len(replies),
                    reply_users_count=len(users),
                    latest_reply=replies[-1]["ts"],
                    reply_users=users,
                    is_locked=False,
                    subscribed=False,
                )
        return view

    def _page(self, items: list[JSON], params: JSON, default_limit: int) -> tuple[list[JSON], str]:
        """Cursor paging like Slack's: an opaque cursor, an empty next_cursor at the end."""
        try:
            limit = int(params.get("limit") or default_limit)
        except (TypeError, ValueError):
            raise _SlackError("invalid_limit") from None
        limit = max(1, min(limit, 999 if default_limit < 1000 else 1000))
        if self.history_page_cap is not None:
            limit = min(limit, self.history_page_cap)
        start = 0
        cursor = params.get("cursor")
        if cursor:
            try:
                start = int(base64.b64decode(str(cursor)).decode().removeprefix("offset:"))
            except (ValueError, UnicodeDecodeError):
                raise _SlackError("invalid_cursor") from None
        page = items[start : start + limit]
        more = start + limit < len(items)
        next_cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return page, next_cursor

    @staticmethod
    def _in_window(ts: str, params: JSON) -> bool:
        inclusive = _truthy(params.get("inclusive"))
        key = _ts_key(ts)
        oldest, latest = params.get("oldest"), params.get("latest")
        if oldest:
            bound = _ts_key(str(oldest))
            if key < bound or (key == bound and not inclusive):
                return False
        if latest:
            bound = _ts_key(str(latest))
            if key > bound or (key == bound and not inclusive):
                return False
        return True

    # ------------------------------------------------------------------ methods

    def _auth_test(self, params: JSON) -> JSON:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: JSON) -> JSON:
        chan = self._channel(params)
        if not chan.is_member:
            raise _SlackError("not_in_channel")
        text = params.get("text")
        blocks = params.get("blocks")
        attachments = params.get("attachments")
        if not text and not blocks and not attachments and not params.get("markdown_text"):
            raise _SlackError("no_text")
        message: JSON = {
            "type": "message",
            "text": str(text or params.get("markdown_text") or "")[:MAX_TEXT_CHARS],
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "bot_profile": self._bot_profile(),
        }
        if blocks is not None and blocks != "":
            message["blocks"] = self._check_blocks(blocks)
        if attachments:
            message["attachments"] = attachments
        if params.get("metadata") not in (None, ""):
            message["metadata"] = self._check_metadata(params["metadata"])
        thread_ts = params.get("thread_ts")
        if thread_ts:
            root = self._thread_root(chan, str(thread_ts))
            message["thread_ts"] = root["ts"]
            message["parent_user_id"] = root.get("user")
            if _truthy(params.get("reply_broadcast")):
                message["subtype"] = "thread_broadcast"
        if params.get("username"):
            message["username"] = str(params["username"])
        if params.get("icon_url"):
            message["icons"] = {"image_48": str(params["icon_url"])}
        elif params.get("icon_emoji"):
            message["icons"] = {"emoji": str(params["icon_emoji"])}
        ts = self._next_ts()
        message["ts"] = ts
        chan.messages[ts] = message
        return {"ok": True, "channel": chan.id, "ts": ts, "message": copy.deepcopy(message)}

    def _own_message(self, chan: _Channel, ts: str, refusal: str) -> JSON:
        message = chan.messages.get(ts)
        if message is None:
            raise _SlackError("message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise _SlackError(refusal)
        return message

    def _chat_update(self, params: JSON) -> JSON:
        chan = self._channel(params)
        message = self._own_message(chan, self._required(params, "ts"), "cant_update_message")
        text, blocks = params.get("text"), params.get("blocks")
        if text is None and blocks is None and params.get("attachments") is None:
            raise _SlackError("no_text")
        if text is not None:
            message["text"] = str(text)[:MAX_TEXT_CHARS]
        if blocks is not None:
            checked = self._check_blocks(blocks)
            if checked:
                message["blocks"] = checked
            else:
                message.pop("blocks", None)
        if params.get("attachments") is not None:
            message["attachments"] = params["attachments"]
        if params.get("metadata") not in (None, ""):
            message["metadata"] = self._check_metadata(params["metadata"])
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        self.updates.append(
            {
                "channel": chan.id,
                "ts": message["ts"],
                "text": message.get("text"),
                "blocks": copy.deepcopy(message.get("blocks")),
                "message": copy.deepcopy(message),
                "at": time.monotonic(),
            }
        )
        return {
            "ok": True,
            "channel": chan.id,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": copy.deepcopy(message),
        }

    def _chat_delete(self, params: JSON) -> JSON:
        chan = self._channel(params)
        ts = self._required(params, "ts")
        self._own_message(chan, ts, "cant_delete_message")
        removed = chan.messages.pop(ts)
        self.deleted.append({**copy.deepcopy(removed), "channel": chan.id})
        return {"ok": True, "channel": chan.id, "ts": ts}

    def _reactions_add(self, params: JSON) -> JSON:
        chan = self._channel(params)
        name = self._required(params, "name").strip(":")
        message = chan.messages.get(self._required(params, "timestamp"))
        if message is None:
            raise _SlackError("message_not_found")
        reactions: list[JSON] = message.setdefault("reactions", [])
        existing = next((r for r in reactions if r["name"] == name), None)
        if existing is None:
            reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        elif self.bot_user_id in existing["users"]:
            raise _SlackError("already_reacted")
        else:
            existing["users"].append(self.bot_user_id)
            existing["count"] += 1
        return {"ok": True}

    def _users_info(self, params: JSON) -> JSON:
        user = self._users.get(str(params.get("user") or ""))
        if user is None:
            raise _SlackError("user_not_found")
        return {"ok": True, "user": copy.deepcopy(user)}

    def _users_list(self, params: JSON) -> JSON:
        """Every member (bots and deactivated ones too, flagged), paged like Slack's: ``limit`` and ``cursor``."""
        members = [copy.deepcopy(user) for user in self._users.values()]
        try:
            limit = int(params.get("limit") or 0) or len(members) or 1
            start = (
                int(base64.b64decode(str(params["cursor"])).decode().removeprefix("user:"))
                if params.get("cursor")
                else 0
            )
        except (ValueError, UnicodeDecodeError):
            raise _SlackError("invalid_cursor") from None
        page = members[start : start + limit]
        more = start + limit < len(members)
        next_cursor = base64.b64encode(f"user:{start + limit}".encode()).decode() if more else ""
        return {
            "ok": True,
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _chat_get_permalink(self, params: JSON) -> JSON:
        chan = self._channel(params)
        ts = self._required(params, "message_ts")
        message = chan.messages.get(ts)
        if message is None:
            raise _SlackError("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{chan.id}/p{ts.replace('.', '')}"
        if message.get("thread_ts") not in (None, ts):
            link += f"?thread_ts={message['thread_ts']}&cid={chan.id}"
        return {"ok": True, "channel": chan.id, "permalink": link}

    def _channel_view(self, chan: _Channel) -> JSON:
        return {
            "id": chan.id,
            "name": chan.name,
            "name_normalized": chan.name,
            "is_channel": not chan.is_private,
            "is_group": chan.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": chan.is_private,
            "is_archived": False,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": chan.is_member,
            "created": chan.created,
            "creator": "UADMIN",
            "context_team_id": self.team_id,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    def _conversations_info(self, params: JSON) -> JSON:
        return {"ok": True, "channel": self._channel_view(self._channel(params))}

    def _conversations_join(self, params: JSON) -> JSON:
        chan = self._channel(params)
        if chan.is_private and not chan.is_member:
            raise _SlackError("method_not_supported_for_channel_type")
        body: JSON = {"ok": True}
        if chan.is_member:
            body.update(warning="already_in_channel", response_metadata={"warnings": ["already_in_channel"]})
        chan.is_member = True
        body["channel"] = self._channel_view(chan)
        return body

    def _conversations_replies(self, params: JSON) -> JSON:
        chan = self._channel(params)
        ts = params.get("ts")
        message = chan.messages.get(str(ts or ""))
        if message is None:
            raise _SlackError("thread_not_found")
        # Slack accepts the ts of any message of the thread, and always lists the root first.
        root_ts = message.get("thread_ts") or message["ts"]
        root = chan.messages.get(root_ts)
        if root is None:
            raise _SlackError("thread_not_found")
        include_metadata = _truthy(params.get("include_all_metadata"))
        replies = sorted(
            (m for m in chan.messages.values() if m.get("thread_ts") == root_ts and m["ts"] != root_ts),
            key=lambda m: _ts_key(m["ts"]),
        )
        items = [self._api_view(chan, root, include_metadata)] + [
            self._api_view(chan, m, include_metadata) for m in replies if self._in_window(m["ts"], params)
        ]
        page, next_cursor = self._page(items, params, default_limit=1000)
        return {
            "ok": True,
            "messages": page,
            "has_more": bool(next_cursor),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_history(self, params: JSON) -> JSON:
        chan = self._channel(params)
        include_metadata = _truthy(params.get("include_all_metadata"))
        top_level = [
            m
            for m in chan.messages.values()
            if (m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast")
            and self._in_window(m["ts"], params)
        ]
        top_level.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)  # newest first, like Slack
        items = [self._api_view(chan, m, include_metadata) for m in top_level]
        page, next_cursor = self._page(items, params, default_limit=100)
        return {
            "ok": True,
            "messages": page,
            "has_more": bool(next_cursor),
            "pin_count": 0,
            "channel_actions_updated": 0,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _apps_connections_open(self, params: JSON) -> JSON:
        return {"ok": True, "url": self.socket_url}

    # ------------------------------------------------------------------ slash commands' response_url

    def response_url(self) -> str:
        """A new ``response_url`` on this server, as Slack puts one in each slash command it sends."""
        path = f"/commands/{self.team_id}/{next(self._ids)}/{uuid.uuid4().hex[:24]}"
        self._response_urls[path] = [time.monotonic(), 0]
        return self.base_url + path

    def responses_to(self, url: str) -> list[JSON]:
        return [r for r in self.command_responses if r["url"] == url]

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        issued = self._response_urls.get(request.path)
        try:
            if issued is None:
                return web.Response(status=404, text="no_service")
            if time.monotonic() - issued[0] > RESPONSE_URL_SECONDS:
                return web.Response(status=404, text="expired_url")
            if issued[1] >= RESPONSE_URL_USES:
                return web.Response(status=404, text="used_url")
            try:
                message = json.loads(await request.read())
            except ValueError:
                return web.Response(status=400, text="invalid_payload")
            if not isinstance(message, dict):
                return web.Response(status=400, text="invalid_payload")
            if not (message.get("text") or message.get("blocks") or _truthy(message.get("delete_original"))):
                return web.Response(status=400, text="no_text")
            issued[1] += 1
            self.command_responses.append(
                {"url": self.base_url + request.path, "at": time.monotonic(), "response_type": "ephemeral", **message}
            )
            return web.Response(status=200, text="ok")
        finally:
            self._bump()

    # ------------------------------------------------------------------ Socket Mode

    @property
    def socket_connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        # autoping: answers the SDK's "sdk-ping-pong:<t>" pings with matching pongs.
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connects += 1
        hello = {
            "type": "hello",
            "num_connections": sum(1 for s in self._sockets if not s.closed),
            "debug_info": {"host": "applink-fake-1", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }
        await ws.send_str(json.dumps(hello))
        self._bump()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(data, dict) and isinstance(data.get("envelope_id"), str):
                    self.socket_acks.append(data)
                    future = self._pending_acks.pop(data["envelope_id"], None)
                    if future is not None and not future.done():
                        future.set_result(data)
                    self._bump()
        finally:
            with contextlib.suppress(ValueError):
                self._sockets.remove(ws)
            self._bump()
        return ws

    async def wait_socket_connected(self, timeout: float = 5.0) -> None:
        await self.wait_for(lambda: self.socket_connected, timeout, "no Socket Mode client connected")

    async def send_socket_event(
        self,
        payload: JSON,
        type: str = "events_api",
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5,
        accepts_response_payload: bool | None = None,
    ) -> JSON:
        """Send an envelope to the newest connected client and return its ack.

        Raises TimeoutError when no ack comes within ``timeout`` (bolt sends none when no
        listener matched, for example).
        """
        if type not in ("events_api", "interactive", "slash_commands"):
            raise ValueError(f"unknown envelope type {type!r}")
        await self.wait_socket_connected(timeout)
        ws = next(s for s in reversed(self._sockets) if not s.closed)
        envelope_id = str(uuid.uuid4())
        if accepts_response_payload is None:
            # Slack lets slash commands and view submissions answer in the ack.
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in ("view_submission", "block_suggestion")
            )
        envelope: JSON = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = future
        self.socket_envelopes.append(envelope)
        await ws.send_str(json.dumps(envelope))
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(
                f"no ack for {type} envelope {envelope_id} within {timeout:g} s (acks so far: {len(self.socket_acks)})"
            ) from None
        finally:
            self._pending_acks.pop(envelope_id, None)

    async def send_socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask connected clients to reconnect, as Slack does before recycling a connection."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake-1"}}
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_str(json.dumps(message))

    async def close_sockets(self) -> None:
        """Close every Socket Mode connection from the server side."""
        for ws in list(self._sockets):
            await ws.close()
        self._sockets.clear()
        self._bump()
