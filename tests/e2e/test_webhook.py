"""The webhook (CONTRACT §9): closed and rated conversations POSTed, signed, to a real local receiver,
through the outbox — retried until it accepts, with the same body and delivery id every time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import select

import adapters.webhook.endpoint
from adapters.webhook.signature import verify
from bridge.store.export_rows import COLUMNS
from bridge.store.tables import delivery
from tests.fakes.slack_api import FakeSlack
from tests.harness import BridgeFactory, RunningBridge, root_of, visitor_and_agent, wait_until

SECRET = "whsec-test-0123456789abcdef"


@dataclass
class Attempt:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


@dataclass
class Receiver:
    """The site's own system: answers each POST with the next status of ``answers`` (then 200)."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def accepted(self) -> list[Attempt]:
        return [a for a in self.attempts if 200 <= a.status < 300]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.answers.pop(0) if self.answers else 200
        loop = asyncio.get_running_loop()
        self.attempts.append(Attempt(dict(request.headers), body, status, loop.time()))
        return web.json_response({"ok": 200 <= status < 300}, status=status)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/sitechat", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hooks/sitechat"
    yield found
    await runner.cleanup()


async def _bridge(make_bridge: BridgeFactory, slack: FakeSlack, receiver: Receiver) -> RunningBridge:
    return await make_bridge(slack, webhook_url=receiver.url, webhook_secret=SECRET)


def _document(attempt: Attempt) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(attempt.body)
    return loaded


async def test_a_closed_conversation_is_posted_once_through_two_failures(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    bridge = await _bridge(make_bridge, fake_slack, receiver)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        await visitor.start(name="Ann", email="ann@example.com", topic="support")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="root")
        await visitor.say("Where is my order?")
        await agent.reply("C0SUPPORT", root["ts"], "On its way!")
        await wait_until(lambda: _agent_answered(visitor), what="the reply")
        status, _, _ = await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
        assert status == 200

        await wait_until(lambda: receiver.accepted, timeout=15, what="an accepted webhook")
        await bridge.wait_idle()
        await asyncio.sleep(0.5)  # nothing more comes
        attempts = receiver.attempts
        assert [a.status for a in attempts] == [500, 503, 200]
        assert len(receiver.accepted) == 1
        # one delivery: the same id and the same body on every retry, each attempt signed anew
        assert len({a.headers["X-Sitechat-Delivery"] for a in attempts}) == 1
        assert len({a.body for a in attempts}) == 1
        for a in attempts:
            assert verify(SECRET, a.headers["X-Sitechat-Signature"], a.body, now=_now())
            assert a.headers["Content-Type"].startswith("application/json")
            assert a.headers["X-Sitechat-Event"] == "conversation.closed"
        assert attempts[1].at - attempts[0].at >= 0.2, "retried at once: no back-off"

        document = _document(attempts[-1])
        assert document["event"] == "conversation.closed"
        row = document["conversation"]
        assert tuple(row) == COLUMNS
        assert row["id"] == visitor.conversation_id
        assert (row["site"], row["topic"]) == ("acme", "support")
        assert (row["visitor_name"], row["visitor_email"]) == ("Ann", "ann@example.com")
        assert row["started_at"].endswith("Z") and row["closed_at"].endswith("Z")
        assert row["started_at"] <= row["closed_at"]
        # the visitor's line, Alice's face (CONTRACT §8: a stored message of its own) and her reply
        assert row["agents"] == ["Alice"] and row["messages"] == 3
        assert isinstance(row["first_response_seconds"], int | float) and row["first_response_seconds"] >= 0
        assert (row["rating"], row["rating_comment"]) == (None, None)
        assert row["pages"] == ["https://acme.example/pricing"]
        lines = [line.split("] ", 1)[-1] for line in row["transcript"].splitlines() if line.startswith("[")]
        assert lines == ["Ann: Where is my order?", "—: Alice joined the chat", "Alice: On its way!"]


async def test_a_rating_is_its_own_event_with_the_rating_in_the_row(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, receiver: Receiver
) -> None:
    bridge = await _bridge(make_bridge, fake_slack, receiver)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, _agent):
        await visitor.start(name="Ann", email="ann@example.com")
        await visitor.say("Hi")
        path = f"/api/v1/conversations/{visitor.conversation_id}"
        assert (await visitor.request("POST", f"{path}/close"))[0] == 200
        assert (await visitor.request("POST", f"{path}/close"))[0] == 200  # closed once: one event
        assert (await visitor.request("POST", f"{path}/rating", {"score": 4, "comment": "great help"}))[0] == 200
        await wait_until(lambda: len(receiver.accepted) >= 2, timeout=15, what="two webhooks")
        await bridge.wait_idle()
        events = [_document(a) for a in receiver.accepted]
        assert [e["event"] for e in events] == ["conversation.closed", "conversation.rated"]
        closed, rated = (e["conversation"] for e in events)
        assert closed["rating"] is None
        assert (rated["rating"], rated["rating_comment"]) == (4, "great help")
        assert rated["closed_at"] == closed["closed_at"]
        ids = [a.headers["X-Sitechat-Delivery"] for a in receiver.accepted]
        assert len(set(ids)) == 2


async def test_a_refusing_receiver_is_retried_and_shown_as_a_warning_not_unready(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 (a secret being rotated) or a 404 (a deploy) loses nothing: the event waits, /readyz warns
    and stays 200 (the chat works), and the event goes once the receiver accepts."""
    monkeypatch.setattr(adapters.webhook.endpoint, "REFUSED_WAIT", 0.3)
    receiver.answers = [401, 404]
    bridge = await _bridge(make_bridge, fake_slack, receiver)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, _agent):
        await visitor.start(name="Ann")
        assert (await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close"))[0] == 200

        async def warned() -> Any:
            status, body, _ = await visitor.request("GET", "/readyz")
            return status == 200 and any("webhook" in w for w in body.get("warnings", [])) and body

        await wait_until(warned, what="/readyz to warn about the webhook")
        await wait_until(lambda: receiver.accepted, timeout=15, what="the event, once accepted")
        assert [a.status for a in receiver.attempts] == [401, 404, 200]
        _, body, _ = await visitor.request("GET", "/readyz")
        assert not any("webhook" in w for w in body.get("warnings", []))


async def test_without_a_webhook_nothing_is_queued_for_one(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, _agent):
        await visitor.start(name="Ann")
        assert (await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close"))[0] == 200
        await bridge.wait_idle()
        assert bridge.runtime is not None
        async with bridge.runtime.db.read() as conn:
            endpoints = set((await conn.execute(select(delivery.c.endpoint))).scalars())
        assert "webhook" not in endpoints and endpoints == {"slack"}


async def _agent_answered(visitor: Any) -> bool:
    return any(m["author"]["role"] == "agent" for m in (await visitor.messages())["messages"])


def _now() -> float:
    import time

    return time.time()
