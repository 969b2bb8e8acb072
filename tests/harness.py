"""A running sitechat (in this process, on a real port) and a visitor that talks to it only through
the public HTTP/WebSocket API. Team-chat traffic goes to the fake Slack or the real Synapse."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from sqlalchemy import text

from config.settings import Settings
from sitechat.runtime import Runtime, build_runtime, serve
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, interactive_form, message_event, signed_form, signed_json

T = TypeVar("T")
SIGNING_SECRET = "test-signing-secret"
ORIGIN = "https://acme.example"


#: variables of the test's own environment that would override a child's env file (real variables win)
OUR_VARIABLES = ("SITECHAT_", "SLACK_", "MATRIX_")


def clean_environment() -> dict[str, str]:
    """The environment for a ``sitechat`` child process: ours, minus anything that configures sitechat."""
    return {k: v for k, v in os.environ.items() if not k.startswith(OUR_VARIABLES)}


async def run_sitechat(*args: str, cwd: Path, timeout: float = 60) -> tuple[int, str]:
    """``python -m sitechat ARGS`` to the end: (exit code, stdout and stderr together)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sitechat",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=clean_environment(),
        cwd=cwd,
    )
    async with asyncio.timeout(timeout):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def acme_settings(database_url: str, slack: FakeSlack | None = None, **overrides: Any) -> Settings:
    """One site, ``acme``, routed to the fake Slack's C0SUPPORT, with a ``sales`` topic in C0SALES."""
    port = overrides.pop("port", None) or free_port()
    site: dict[str, Any] = {
        "name": "Acme",
        "origins": [ORIGIN],
        "greeting": "Hi! Ask us anything.",
        # the automatic greeting is a message of its own: tests of it turn it on, the others keep it out
        "auto_greeting_seconds": 0,
        "topics": {"sales": {"label": "Sales", "slack_channel": "C0SALES"}, "support": {"label": "Support"}},
    }
    values: dict[str, Any] = {"database_url": database_url, "host": "127.0.0.1", "port": port}
    if slack is not None:
        site["slack_channel"] = "C0SUPPORT"
        values.update(slack_bot_token=slack.bot_token, slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url)
    site.update(overrides.pop("site", {}))
    values["sites"] = {"acme": site}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class RunningBridge:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Runtime | None = None
        self._runner: web.AppRunner | None = None
        self.url = settings.widget.public_url

    async def start(self) -> RunningBridge:
        self.runtime = build_runtime(self.settings)
        self._runner = await serve(self.runtime, self.settings.widget.host, self.settings.widget.port)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Until the outbox is drained (nothing pending, no lane working)."""
        assert self.runtime is not None
        worker = self.runtime.worker
        await wait_until(worker.idle, timeout, "the outbox to drain")


class TunedSlackBridge(RunningBridge):
    """The bridge in this process with a Slack endpoint built with options no setting has: the Web API
    client's ``timeout``, the ``clock`` it reads, ``posts_per_second`` beyond the settings'…"""

    def __init__(self, settings: Settings, **slack_options: Any) -> None:
        super().__init__(settings)
        self.slack_options = slack_options

    async def start(self) -> RunningBridge:
        from adapters.slack import plugin as slack_plugin
        from adapters.slack.endpoint import SlackEndpoint

        s = self.settings
        assert s.slack is not None
        endpoint = SlackEndpoint(
            bot_token=s.slack.bot_token.get_secret_value(),
            api_url=s.slack.api_url,
            signing_secret=SIGNING_SECRET,
            app_token=None,
            **self.slack_options,
        )
        self.runtime = build_runtime(s, plugins=[slack_plugin(endpoint)])
        self._runner = await serve(self.runtime, s.widget.host, s.widget.port)
        return self


class Clock:
    """Wall-clock seconds the test moves by hand (``clock.now += 3600``)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def timer_rounds(bridge: RunningBridge) -> list[datetime]:
    """When each of the bridge's timer rounds began (by the timers' clock), from now on."""
    assert bridge.runtime is not None
    timers = bridge.runtime.timers
    began: list[datetime] = []
    fire_due = timers.fire_due

    async def counted() -> None:
        started = timers.clock()
        await fire_due()
        began.append(started)

    timers.fire_due = counted  # type: ignore[method-assign]
    return began


async def timer_rounds_past(began: list[datetime], moment: datetime, what: str) -> None:
    """Until a round that began after ``moment`` is done: whatever was due by then has happened."""
    await wait_until(lambda: any(t > moment for t in began), 20, f"the timers to run after {what}")


BridgeFactory = Callable[..., Awaitable[RunningBridge]]


@asynccontextmanager
async def bridge_factory(default_database_url: str) -> AsyncIterator[BridgeFactory]:
    """``make(slack=None, database_url=None, **overrides)`` starts a bridge; all are stopped at the end.
    Fixtures in any event-loop scope wrap this (the Synapse and browser tests live in the session loop)."""
    started: list[RunningBridge] = []

    async def make(slack: FakeSlack | None = None, database_url: str | None = None, **overrides: Any) -> RunningBridge:
        bridge = RunningBridge(acme_settings(database_url or default_database_url, slack, **overrides))
        await bridge.start()
        started.append(bridge)
        return bridge

    try:
        yield make
    finally:
        for bridge in reversed(started):
            await bridge.stop()


async def wait_until(
    check: Callable[[], Any], timeout: float = 10.0, what: str = "condition", interval: float = 0.02
) -> Any:
    """Poll a condition (sync or async) until it holds; the value it returned. Fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_for_a_lock_wait(url: str, what: str) -> None:
    """Until a session of the PostgreSQL database at ``url`` is waiting for a lock (a row's, an advisory
    one): what a test holds a lock for has reached it."""
    from bridge.store.database import Database

    db = Database(url)
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )

    async def waiting() -> bool:
        async with db.read() as conn:
            return bool((await conn.execute(query)).scalar())

    try:
        await wait_until(waiting, what=what)
    finally:
        await db.close()


class Visitor:
    """A website visitor's browser, reduced to the HTTP and WebSocket calls of the contract."""

    def __init__(self, base_url: str, site: str = "acme", origin: str | None = ORIGIN) -> None:
        self.base_url = base_url
        self.site = site
        self.origin = origin
        self.session = aiohttp.ClientSession()
        self.conversation_id = ""
        self.token = ""

    def headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"Origin": self.origin} if self.origin else {}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        return headers

    async def request(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any, Any]:
        headers = kw.pop("headers", None) or self.headers()
        data = json.dumps(body) if body is not None and not isinstance(body, str | bytes) else body
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
        async with self.session.request(method, self.base_url + path, data=data, headers=headers, **kw) as r:
            text = await r.text()
            try:
                payload = json.loads(text) if text else None
            except ValueError:
                payload = text
            return r.status, payload, r.headers

    async def start(self, name: str = "Ann", email: str | None = "ann@example.com", **extra: Any) -> dict[str, Any]:
        body = {
            "visitor": {"name": name, "email": email},
            "page": {"url": "https://acme.example/pricing", "title": "Pricing", "referrer": "https://search.example/"},
            "locale": "en-GB",
            "timezone": "Europe/London",
            **extra,
        }
        status, payload, _ = await self.request("POST", f"/api/v1/sites/{self.site}/conversations", body)
        assert status == 201, payload
        self.conversation_id = payload["conversation"]["id"]
        self.token = payload["token"]
        return payload

    async def upload(
        self, data: bytes, name: str = "screenshot.png", content_type: str = "image/png", **kw: Any
    ) -> tuple[int, Any]:
        """POST …/attachments as a browser's FormData does: one part named ``file``."""
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type=content_type)
        path = f"{self.base_url}/api/v1/conversations/{self.conversation_id}/attachments"
        async with self.session.post(path, data=form, headers=self.headers(), **kw) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text) if text else None
            except ValueError:
                return r.status, text

    async def send_file(
        self, data: bytes, name: str, text: str = "", content_type: str = "application/octet-stream"
    ) -> dict[str, Any]:
        """Upload a file and send it with ``text`` (the widget's two calls); the attachment as uploaded."""
        status, body = await self.upload(data, name, content_type)
        assert status == 201, body
        status, sent = await self.say(text, attachment_ids=[body["attachment"]["id"]])
        assert status == 201, sent
        return dict(body["attachment"])

    async def download(self, url: str) -> tuple[int, bytes, Any]:
        """An attachment's link, fetched as an ``<img>`` or a download link would (no token, no origin)."""
        async with self.session.get(url) as r:
            return r.status, await r.read(), r.headers

    async def say(
        self, text: str, client_msg_id: str | None = None, attachment_ids: list[str] | None = None
    ) -> tuple[int, Any]:
        body: dict[str, Any] = {"client_msg_id": client_msg_id or uuid.uuid4().hex, "text": text}
        if attachment_ids is not None:
            body["attachment_ids"] = attachment_ids
        status, payload, _ = await self.request("POST", f"/api/v1/conversations/{self.conversation_id}/messages", body)
        return status, payload

    async def messages(self, after: int = 0) -> dict[str, Any]:
        status, payload, _ = await self.request(
            "GET", f"/api/v1/conversations/{self.conversation_id}/messages?after={after}"
        )
        assert status == 200, payload
        return payload

    async def socket(self, after: int = 0) -> LiveSocket:
        ws = await self.session.ws_connect(
            self.base_url.replace("http", "ws", 1) + f"/api/v1/conversations/{self.conversation_id}/ws",
            headers={"Origin": self.origin} if self.origin else {},
        )
        await ws.send_json({"type": "hello", "token": self.token, "after": after})
        live = LiveSocket(ws)
        ready = await live.next_frame()
        assert ready["type"] == "ready", ready
        live.status = ready["status"]
        return live

    async def close(self) -> None:
        await self.session.close()


class LiveSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.status = ""

    async def next_frame(self, timeout: float = 10.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"socket ended: {msg.type} {msg.data!r} {msg.extra!r}"
        frame = json.loads(msg.data)
        self.frames.append(frame)
        return frame

    async def wait_frame(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        for frame in self.frames:
            if predicate(frame):
                return frame
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next_frame(timeout)
                if predicate(frame):
                    return frame

    def messages(self) -> list[dict[str, Any]]:
        return [f["message"] for f in self.frames if f["type"] == "message"]

    async def close(self) -> None:
        await self.ws.close()


#: Slack's pause before each try of an event (the first at once; the retries compressed from 0 s, 1 and 5 min)
SLACK_RETRY_PAUSES = (0.0, 0.1, 1.0, 3.0)


class SlackAgent:
    """A person in the Slack workspace: replies and clicks arrive as correctly signed HTTP requests."""

    def __init__(self, bridge_url: str, slack: FakeSlack, user_id: str = "UAGENT", name: str = "Alice") -> None:
        self.bridge_url = bridge_url
        self.slack = slack
        self.user_id = user_id
        slack.add_user(user_id, name.lower(), display_name=name, image_url=f"https://avatars.example/{user_id}.png")
        self.session = aiohttp.ClientSession()

    async def post_signed(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        async with self.session.post(f"{self.bridge_url}/slack/events", data=body, headers=headers) as r:
            return r.status, await r.text()

    async def deliver(self, payload: dict[str, Any]) -> int:
        """Send an event as Slack does: an answer other than 2xx is retried, at most three times, with
        ``X-Slack-Retry-Num`` and the same ``event_id`` (Slack waits ~0 s, 1 min and 5 min; compressed
        here). A 503 for a reply under a root whose post's answer the bridge has not recorded yet is the
        bridge's way of asking for that retry. The last answer's status."""
        for attempt, pause in enumerate(SLACK_RETRY_PAUSES):
            body, headers = signed_json(SIGNING_SECRET, payload)
            if attempt:
                await asyncio.sleep(pause)
                headers = {**headers, "X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"}
            status, _ = await self.post_signed(body, headers)
            if status < 300:
                break
        return status

    async def reply(self, channel: str, thread_ts: str, text: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        event = message_event(channel, self.user_id, text, thread_ts=thread_ts)
        payload = event_callback(event, **kw)
        return await self.deliver(payload), payload

    async def share(
        self, channel: str, thread_ts: str, name: str, data: bytes, text: str = "", **file: Any
    ) -> tuple[int, dict[str, Any]]:
        """Upload ``data`` as ``name`` into the thread (the fake keeps the file and the message), and the
        signed ``file_share`` event Slack then sends; ``file``: fields to change in the event's file object."""
        message = self.slack.share_file(channel, thread_ts, self.user_id, name, data, text, **file)
        event = message_event(
            channel, self.user_id, text, ts=message["ts"], thread_ts=thread_ts, files=message["files"]
        )
        payload = event_callback(event)
        return await self.deliver(payload), payload

    async def click(self, action_id: str, channel: str, root_ts: str, value: str = "") -> int:
        from tests.fakes.slack_payloads import block_actions_payload

        payload = block_actions_payload(action_id, value, self.user_id, "alice", channel, root_ts)
        status, _ = await self.post_signed(*signed_form(SIGNING_SECRET, interactive_form(payload)))
        return status

    async def close(self) -> None:
        await self.session.close()


@asynccontextmanager
async def visitor_and_agent(bridge: RunningBridge, slack: FakeSlack) -> AsyncIterator[tuple[Visitor, SlackAgent]]:
    """A visitor on the bridge's widget API and Alice in its Slack workspace, both closed afterwards."""
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, slack)
    try:
        yield visitor, agent
    finally:
        await visitor.close()
        await agent.close()


def root_of(slack: FakeSlack, channel: str = "C0SUPPORT", visitor: str = "Ann") -> dict[str, Any] | None:
    """The thread root the bridge posted for ``visitor``'s conversation, if it is there yet."""
    for m in slack.messages(channel):
        if m.get("thread_ts") in (None, m["ts"]) and visitor in json.dumps(m.get("blocks", "")):
            return m
    return None
