"""Two instances on one PostgreSQL while one of them loses its database connections and lives on
(what a PostgreSQL restart, a failover or ``pg_terminate_backend`` does): nothing doubled or lost,
order kept, and a visitor whose socket is on the cut instance still hears every reply."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import SlackAgent, Visitor, root_of, wait_until


async def cut_connections(database_url: str, instance: str) -> int:
    """``pg_terminate_backend`` every connection of one instance (its pool, its locks, its LISTEN)."""
    admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            f"sitechat-{instance}",
        )
        return len(rows)
    finally:
        await admin.close()


async def say_until_stored(visitor: Visitor, text: str) -> None:
    """A widget resends with the same client_msg_id until the server has it (a cut may refuse one try)."""
    cmid = "id-" + text.replace(" ", "-")
    answers: Counter[int] = Counter()
    for _ in range(100):
        status, _ = await visitor.say(text, cmid)
        if status in (200, 201):
            return
        answers[status] += 1
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} was never stored (answers: {dict(answers)})")


async def test_cut_connections_double_nothing_and_the_cut_instance_still_serves_its_sockets(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, postgres_url: str
) -> None:
    # 30 lines in a few seconds, each possibly tried again after a cut: the per-conversation limit (30 a
    # minute by default) is not what this test is about
    a = await make_bridge(fake_slack, database_url=postgres_url, rate_messages_per_minute=1000)
    b = await make_bridge(fake_slack, database_url=postgres_url, rate_messages_per_minute=1000)
    assert a.runtime is not None
    visitor = Visitor(a.url)
    agent_b = SlackAgent(b.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="root")
        live = await visitor.socket()  # held by instance A
        # every post in flight long enough for a cut to land in the middle of one
        fake_slack.set_latency(0.25, "chat.postMessage")

        lines = [f"line {i:02d}" for i in range(30)]
        for start in range(0, len(lines), 10):
            sending = asyncio.gather(*(say_until_stored(visitor, t) for t in lines[start : start + 10]))
            await asyncio.sleep(0.4)
            assert await cut_connections(postgres_url, a.runtime.db.instance) > 0
            await sending

        def posted() -> list[str]:
            return [ln for m in fake_slack.replies("C0SUPPORT", root["ts"]) for ln in m["text"].split("\n")]

        await wait_until(lambda: set(lines) <= set(posted()), 60, "every line in Slack")
        await asyncio.gather(a.wait_idle(30), b.wait_idle(30))
        counts = Counter(posted())
        assert [t for t, n in counts.items() if n > 1] == [], "a line was posted twice"
        stored = [m["text"] for m in (await visitor.messages())["messages"]]
        assert posted() == stored, "Slack must show the lines in the order the conversation stored them"
        roots = [m for m in fake_slack.messages("C0SUPPORT") if m.get("thread_ts") in (None, m["ts"])]
        assert len(roots) == 1

        # B takes an agent's reply; the visitor's socket on the cut instance A still hears it
        await agent_b.reply("C0SUPPORT", root["ts"], "hello after the cuts")
        frame = await live.wait_frame(
            lambda f: f["type"] == "message" and f["message"]["text"] == "hello after the cuts", timeout=20
        )
        assert frame["message"]["author"]["role"] == "agent"
        await live.close()
    finally:
        await visitor.close()
        await agent_b.close()
