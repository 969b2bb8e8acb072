"""Case 9: Slack delivers an event more than once, or late; the visitor sees each reply once.

What "in ts order" can mean for the widget: ``seq`` is given when the bridge stores a reply and
never changes (clients resume by it), so the widget's order is the order the bridge received the
replies in. A retry of a reply the bridge already has changes nothing, so the thread's order
holds; a reply whose *first* delivery never arrived is shown when its retry comes, after the
replies that arrived meanwhile (reordering what the visitor has already read would be worse).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_event, signed_json
from tests.faults.helpers import held_post, recorded_root
from tests.harness import SIGNING_SECRET, LiveSocket, SlackAgent, Visitor, root_of, visitor_and_agent, wait_until

JSON = dict[str, Any]
JOINED = "Alice joined the chat"  # her face, before her first line (CONTRACT §8): a widget message of its own


def _typed_in_slack(slack: FakeSlack, root_ts: str, text: str) -> JSON:
    """An agent's reply as Slack has it (with its own ts), and the Events API envelope announcing it."""
    stored = slack.add_message("C0SUPPORT", "UAGENT", text, thread_ts=root_ts)
    event = message_event("C0SUPPORT", "UAGENT", text, ts=stored["ts"], thread_ts=root_ts)
    return event_callback(event)  # one event_id, the same on every retry


async def _deliver(agent: SlackAgent, payload: JSON, retry: int = 0) -> int:
    body, headers = signed_json(SIGNING_SECRET, payload)
    if retry:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
    return (await agent.post_signed(body, headers))[0]


async def _texts(visitor: Visitor, count: int) -> list[str] | None:
    texts = [m["text"] for m in (await visitor.messages())["messages"]]
    return texts if len(texts) >= count else None


async def _settled(visitor: Visitor, live: LiveSocket, count: int) -> list[str]:
    """The widget's texts once ``count`` messages are there, checking the live socket agrees (no frame twice)."""
    texts = await wait_until(lambda: _texts(visitor, count), what=f"{count} messages in the widget")
    await live.wait_frame(lambda _: len(live.messages()) >= count)
    await live.ws.send_json({"type": "ping"})  # a pong after every frame the socket had to send
    await live.wait_frame(lambda f: f["type"] == "pong")
    assert [m["text"] for m in live.messages()] == texts, "the live widget showed something twice or missed it"
    assert [m["seq"] for m in live.messages()] == list(range(1, count + 1))
    return list(texts)


async def test_one_event_four_times_at_once_is_one_widget_message(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str
) -> None:
    """The first delivery is slow, so Slack's retries 1–3 arrive while it is still being stored."""
    bridge = await make_bridge(fake_slack, database_url=database_url)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        live = await visitor.socket()
        payload = _typed_in_slack(fake_slack, root["ts"], "hello from Slack")
        statuses = await asyncio.gather(*(_deliver(agent, payload, retry) for retry in range(4)))
        assert statuses == [200] * 4
        later = _typed_in_slack(fake_slack, root["ts"], "and once more")
        assert await _deliver(agent, later) == 200
        assert await _settled(visitor, live, 3) == [JOINED, "hello from Slack", "and once more"]
        await live.close()


async def test_retry_arriving_after_a_later_reply(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str
) -> None:
    bridge = await make_bridge(fake_slack, database_url=database_url)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        live = await visitor.socket()

        # stored at once, but Slack did not see the ack in time: its retries come after the next reply
        first = _typed_in_slack(fake_slack, root["ts"], "first (retried late)")
        second = _typed_in_slack(fake_slack, root["ts"], "second")
        assert await _deliver(agent, first) == 200
        assert await _deliver(agent, second) == 200
        for retry in (1, 2, 3):
            assert await _deliver(agent, first, retry) == 200
        assert await _settled(visitor, live, 3) == [JOINED, "first (retried late)", "second"]  # ts order

        # the first delivery was lost on the way: the retry is the first the bridge hears of it
        lost = _typed_in_slack(fake_slack, root["ts"], "third (first delivery lost)")
        fourth = _typed_in_slack(fake_slack, root["ts"], "fourth")
        assert await _deliver(agent, fourth) == 200
        assert await _deliver(agent, lost, retry=1) == 200
        assert await _deliver(agent, fourth, retry=1) == 200
        assert await _settled(visitor, live, 5) == [
            JOINED,  # still once: a retry does not show Alice's face again
            "first (retried late)",
            "second",
            "fourth",
            "third (first delivery lost)",  # shown when it came, once
        ]
        await live.close()


async def test_reply_under_a_root_whose_ts_is_not_recorded_yet_is_not_lost(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    """Slack has the root (agents see it and answer) while the bridge still waits for the post's answer."""
    bridge = await make_bridge(fake_slack)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        fake_slack.fail_next("chat.postMessage", kind="accept_then_hold", hold=2)
        await visitor.start()
        root = await fake_slack.wait_for(lambda: root_of(fake_slack) if held_post(fake_slack) else None, message="held")
        payload = _typed_in_slack(fake_slack, root["ts"], "a quick agent")
        status = await _deliver(agent, payload)
        await bridge.wait_idle(timeout=15)  # the bridge finds its root (by metadata) and records it
        if status != 200:  # not taken now: Slack's retry comes later
            assert await _deliver(agent, payload, retry=1) == 200
        texts = await wait_until(lambda: _texts(visitor, 2), 3, "the agent's reply in the widget")
        assert texts == [JOINED, "a quick agent"]
