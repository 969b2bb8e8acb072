"""Case 11: a visitor who was away gets exactly what it missed; a client's resends are stored once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bridge.model import Conversation, Message
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.faults.helpers import recorded_root, thread_lines
from tests.harness import LiveSocket, RunningBridge, Visitor, visitor_and_agent


async def _all_frames_sent(live: LiveSocket) -> None:
    """A pong comes after every frame the server had queued before it."""
    pongs = sum(1 for f in live.frames if f["type"] == "pong")
    await live.ws.send_json({"type": "ping"})
    await live.wait_frame(lambda _: sum(1 for f in live.frames if f["type"] == "pong") > pongs)


def _reply_during_replay(bridge: RunningBridge, commit: Callable[[], Awaitable[Any]]) -> list[int]:
    """The next socket's opening read from the store (its token checked, the messages it missed and the
    conversation, in one) commits another reply right after reading: the reply lands between the
    socket's read and its sending of what it read. The seqs it read are returned."""
    assert bridge.runtime is not None
    conversations = bridge.runtime.conversations
    original = conversations.open_socket
    read: list[int] = []

    async def open_socket(cid: str, token: str | None, after: int) -> tuple[list[Message], Conversation] | None:
        opened = await original(cid, token, after)
        if opened is not None and not read:
            read.extend(m.seq for m in opened[0])
            await commit()
        return opened

    conversations.open_socket = open_socket  # type: ignore[method-assign]
    return read


async def test_reconnect_gets_exactly_what_was_missed_even_while_replies_land(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str
) -> None:
    bridge = await make_bridge(fake_slack, database_url=database_url)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        live = await visitor.socket()
        assert (await agent.reply("C0SUPPORT", root["ts"], "welcome"))[0] == 200
        assert (await visitor.say("hi"))[0] == 201
        await live.wait_frame(lambda _: len(live.messages()) == 3)
        # Alice's face comes before her first line (CONTRACT §8), once
        assert [(m["author"]["role"], m["text"]) for m in live.messages()] == [
            ("system", "Alice joined the chat"),
            ("agent", "welcome"),
            ("visitor", "hi"),
        ]
        last_seen = live.messages()[-1]["seq"]
        await live.close()  # the visitor's laptop goes to sleep

        for i in range(20):
            assert (await agent.reply("C0SUPPORT", root["ts"], f"missed {i:02d}"))[0] == 200

        read = _reply_during_replay(bridge, lambda: agent.reply("C0SUPPORT", root["ts"], "during the replay"))
        back = await visitor.socket(after=last_seen)
        await back.wait_frame(lambda _: len(back.messages()) >= 21)
        await _all_frames_sent(back)
        assert read == list(range(last_seen + 1, last_seen + 21)), "the reply did not land during the replay"
        texts = [m["text"] for m in back.messages()]
        assert texts == [*(f"missed {i:02d}" for i in range(20)), "during the replay"]
        assert [m["seq"] for m in back.messages()] == list(range(last_seen + 1, last_seen + 22))

        # the same over HTTP, for a widget that polls
        polled = (await visitor.messages(after=last_seen))["messages"]
        assert [m["text"] for m in polled] == texts
        await back.close()


async def test_resent_unacknowledged_message_is_stored_once(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str
) -> None:
    bridge = await make_bridge(fake_slack, database_url=database_url)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        first = await visitor.socket()
        second = await visitor.socket()  # a second tab, or the old socket not yet noticed as dead
        frame = {"type": "message", "client_msg_id": "m-1", "text": "did this arrive?"}

        # the ack was lost, so the client sends again, over every way it has, all at once
        async def over_http() -> tuple[int, Any]:
            return await visitor.say("did this arrive?", "m-1")

        results = await asyncio.gather(
            first.ws.send_json(frame), second.ws.send_json(frame), *(over_http() for _ in range(4))
        )
        answers = [r for r in results if r is not None]
        assert all(status in (200, 201) for status, _ in answers), answers
        assert sum(1 for status, _ in answers if status == 201) <= 1
        assert len({body["message"]["id"] for _, body in answers}) == 1

        # and once more after reconnecting: still the same message
        await first.close()
        again = await visitor.socket(after=0)
        await again.ws.send_json(frame)
        await again.wait_frame(lambda _: len(again.messages()) >= 2)  # the replay, then the repeated ack
        assert {m["id"] for m in again.messages()} == {answers[0][1]["message"]["id"]}

        stored = (await visitor.messages())["messages"]
        assert [(m["client_msg_id"], m["seq"]) for m in stored] == [("m-1", 1)]
        await bridge.wait_idle()
        assert thread_lines(fake_slack, root["ts"]) == ["did this arrive?"]
        await second.close()
        await again.close()
    finally:
        await visitor.close()
