"""Case 10: the database is unavailable when a Slack event arrives → 503 in time, stored once on the retry."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bridge.live import NewMessage
from tests.conftest import BridgeFactory, fresh_postgres
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_event, signed_json
from tests.faults.helpers import recorded_root
from tests.faults.proxy import TcpProxy
from tests.harness import SIGNING_SECRET, RunningBridge, SlackAgent, Visitor, visitor_and_agent, wait_until

JSON = dict[str, Any]
ACK_BUDGET = 2.5  # seconds: Slack gives up on an answer after 3


@pytest_asyncio.fixture
async def proxied_postgres() -> AsyncIterator[tuple[str, TcpProxy]]:
    """A fresh PostgreSQL database reached through a proxy the test can cut."""
    async with fresh_postgres() as url:
        proxy = await TcpProxy("127.0.0.1", 5432).start()
        try:
            yield url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/"), proxy
        finally:
            await proxy.stop()


def _typed_in_slack(slack: FakeSlack, root_ts: str, text: str) -> JSON:
    stored = slack.add_message("C0SUPPORT", "UAGENT", text, thread_ts=root_ts)
    return event_callback(message_event("C0SUPPORT", "UAGENT", text, ts=stored["ts"], thread_ts=root_ts))


async def _deliver(agent: SlackAgent, payload: JSON, retry: int = 0) -> tuple[int, float]:
    """Slack's delivery of ``payload`` (attempt ``retry``): the status and how long the answer took."""
    body, headers = signed_json(SIGNING_SECRET, payload)
    if retry:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"})
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, _ = await agent.post_signed(body, headers)
    return status, loop.time() - started


async def _texts(visitor: Visitor, count: int) -> list[str] | None:
    texts = [m["text"] for m in (await visitor.messages())["messages"]]
    return texts if len(texts) >= count else None


async def _outage_then_retry(bridge: RunningBridge, slack: FakeSlack, cut: Any, heal: Any) -> None:
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, slack)
    try:
        await visitor.start()
        root = await recorded_root(bridge, slack)
        assert (await agent.reply("C0SUPPORT", root["ts"], "before"))[0] == 200  # users.info cached, pool warm
        payload = _typed_in_slack(slack, root["ts"], "while the database was away")

        cut()
        status, took = await _deliver(agent, payload)
        assert status == 503, f"answered {status} without storing the event"
        assert took < ACK_BUDGET, f"the 503 took {took:.2f} s"
        heal()

        # Slack retries: stored now, once, however often it comes
        for retry in (1, 2):
            status, took = await _deliver(agent, payload, retry)
            assert status == 200
        texts = await wait_until(lambda: _texts(visitor, 3), what="the messages after the outage")
        # Alice's face before her first line (CONTRACT §8), once; then each of her replies once
        assert texts == ["Alice joined the chat", "before", "while the database was away"]
    finally:
        await visitor.close()
        await agent.close()


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
async def test_postgres_away_answers_503_in_time_and_stores_the_retry_once(
    proxied_postgres: tuple[str, TcpProxy], make_bridge: BridgeFactory, fake_slack: FakeSlack, mode: str
) -> None:
    """refuse: the server is down (connections closed at once); blackhole: the network drops everything."""
    url, proxy = proxied_postgres
    bridge = await make_bridge(fake_slack, database_url=url)
    await _outage_then_retry(bridge, fake_slack, lambda: proxy.cut(mode), proxy.restore)


async def test_sqlite_locked_by_another_process_answers_503_in_time_and_stores_the_retry_once(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """Someone holds the SQLite file's write lock (a backup, an admin's sqlite3 shell)."""
    bridge = await make_bridge(fake_slack)
    other = sqlite3.connect(tmp_path / "sitechat.db", isolation_level=None)
    try:
        await _outage_then_retry(
            bridge, fake_slack, lambda: other.execute("BEGIN IMMEDIATE"), lambda: other.execute("ROLLBACK")
        )
    finally:
        other.close()


async def test_open_widget_socket_still_delivers_after_a_database_blip(
    proxied_postgres: tuple[str, TcpProxy], make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    url, proxy = proxied_postgres
    bridge = await make_bridge(fake_slack, database_url=url)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        assert (await agent.reply("C0SUPPORT", root["ts"], "before"))[0] == 200
        live = await visitor.socket()
        await live.wait_frame(lambda f: f["type"] == "message")
        await live.ws.send_json({"type": "ping"})
        await live.wait_frame(lambda f: f["type"] == "pong")
        proxy.cut("refuse")
        # a signal the socket handles while the database is away (as when it goes between a commit
        # and the socket's read of it)
        assert bridge.runtime is not None
        refused = proxy.refused
        bridge.runtime.live.publish(visitor.conversation_id, NewMessage(1))
        await wait_until(lambda: proxy.refused > refused, 5, "the socket's read to meet the outage")
        proxy.restore()
        assert (await agent.reply("C0SUPPORT", root["ts"], "after"))[0] == 200
        await live.wait_frame(lambda _: len(live.messages()) >= 3, timeout=3)
        assert [m["text"] for m in live.messages()] == ["Alice joined the chat", "before", "after"]
