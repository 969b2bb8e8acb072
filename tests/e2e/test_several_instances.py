"""Two instances on one PostgreSQL: one sender per destination, and signals that cross instances."""

from __future__ import annotations

import asyncio
from collections import Counter

from bridge.store.notify import CHANNEL
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import SlackAgent, Visitor, root_of


async def test_two_instances_share_one_conversation(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, postgres_url: str
) -> None:
    a = await make_bridge(fake_slack, database_url=postgres_url)
    b = await make_bridge(fake_slack, database_url=postgres_url)
    visitor = Visitor(a.url)
    agent_b = SlackAgent(b.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="root")
        live = await visitor.socket()  # held by instance A

        # visitor lines enter through both instances' APIs at once; each is posted once, in seq order
        visitor_b = Visitor(b.url)
        visitor_b.conversation_id, visitor_b.token = visitor.conversation_id, visitor.token
        await asyncio.gather(*(v.say(f"line {i}", f"c{i}") for i, v in enumerate([visitor, visitor_b] * 10)))
        # the socket on A shows every line once, in seq order, those stored through B too; and a line that
        # only B stores reaches it at once, by B's NOTIFY (A's own rechecks come every 10 s)
        said = {f"line {i}" for i in range(20)}
        await live.wait_frame(lambda _: said <= {m["text"] for m in live.messages()})
        heard = [m for m in live.messages() if m["text"] in said]
        assert len(heard) == 20 and [m["seq"] for m in heard] == sorted(m["seq"] for m in heard)
        await visitor_b.say("only through B", "c-b")
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "only through B", 3)
        await visitor_b.close()
        await asyncio.gather(a.wait_idle(15), b.wait_idle(15))
        lines = [line for m in fake_slack.replies("C0SUPPORT", root["ts"]) for line in m["text"].split("\n")]
        stored = [m["text"] for m in (await visitor.messages())["messages"]]
        assert sorted(stored) == sorted([*(f"line {i}" for i in range(20)), "only through B"])
        assert lines == stored, "Slack must show each line once, in the order the conversation stored them"
        roots = [m for m in fake_slack.messages("C0SUPPORT") if m.get("thread_ts") in (None, m["ts"])]
        assert len(roots) == 1

        # an agent's reply arrives at instance B; the visitor's socket on A hears it
        await agent_b.reply("C0SUPPORT", root["ts"], "hello from B")
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "hello from B")
        assert frame["message"]["author"]["name"] == "Alice"

        # closing through B reaches A's socket too
        await agent_b.reply("C0SUPPORT", root["ts"], "!close")
        await live.wait_frame(lambda f: f == {"type": "status", "status": "closed"})
        await asyncio.gather(a.wait_idle(15), b.wait_idle(15))
        transcripts = [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "Transcript" in m["text"]]
        assert len(transcripts) == 1
        counts = Counter(m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"]))
        assert max(counts.values()) == 1, counts
        await live.close()
    finally:
        await visitor.close()
        await agent_b.close()


async def test_a_signal_lost_between_instances_is_made_good_by_the_recheck(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, postgres_url: str
) -> None:
    """A's LISTEN hears nothing from B any more (a NOTIFY lost on the way): A's periodic look at the store
    still brings B's line to the socket on A, once, and the lines A itself took keep coming at once."""
    a = await make_bridge(fake_slack, database_url=postgres_url)
    b = await make_bridge(fake_slack, database_url=postgres_url)
    assert a.runtime is not None
    notifier = a.runtime.notifier
    await notifier._listener.remove_listener(CHANNEL, notifier._receive)
    notifier.recheck_seconds = 0.5
    visitor, visitor_b = Visitor(a.url), Visitor(b.url)
    agent_b = SlackAgent(b.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        live = await visitor.socket()  # held by instance A
        visitor_b.conversation_id, visitor_b.token = visitor.conversation_id, visitor.token
        await visitor.say("through A", "c-a")
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "through A", 3)
        await visitor_b.say("through B, unheard", "c-b")
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "through B, unheard", 8)
        await visitor.say("through A again", "c-a2")
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "through A again", 3)
        texts = [m["text"] for m in live.messages()]
        assert texts.count("through B, unheard") == 1 and texts.count("through A") == 1
        # an agent closes the chat through B, unheard too: the socket on A shows it closed and asks for a
        # rating, each once
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="root")
        await agent_b.reply("C0SUPPORT", root["ts"], "!close")
        await live.wait_frame(lambda f: f == {"type": "status", "status": "closed"}, 8)
        await live.wait_frame(lambda f: f["type"] == "rating_requested", 8)
        kinds = [f["type"] for f in live.frames]
        assert kinds.count("rating_requested") == 1 and kinds.count("status") == 1, kinds
        await live.close()
    finally:
        await visitor.close()
        await visitor_b.close()
        await agent_b.close()
