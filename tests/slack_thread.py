"""One scripted conversation through the real bridge (in this process) and the fake Slack, and the thread
it leaves there: the README's picture of a Slack thread (``docs/make_slack_thread.py``) is drawn from it,
and ``tests/test_docs_slack_thread.py`` checks that the committed picture's JSON still matches it.

A visitor who found the site through Bing, in Chrome on Windows, asks on the pricing page; Alice answers
with some formatting, leaves a note for her colleagues and claims the chat, and the visitor thanks her. The
chat stays open, so the root still has its buttons (a closed chat's root has none). Alice's lines are
stored in the fake Slack as Slack keeps a person's message (and the signed event for each goes to the
bridge), so the thread holds the whole conversation as the team sees it in Slack.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from typing import Any

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_event, signed_json
from tests.harness import SIGNING_SECRET, RunningBridge, SlackAgent, Visitor, bridge_factory, root_of, wait_until

CHANNEL = "C0SUPPORT"
CHANNEL_NAME = "support"
CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
PAGE = {
    "url": "https://acme.example/pricing",
    "title": "Pricing",
    "referrer": "https://www.bing.com/search?q=acme+team+plan&form=QBLH",
}
VISITOR_FIRST = "Hi! Does the Team plan include phone support?"
AGENT_ANSWER = (
    "Hi Ann! Yes: the *Team* plan includes phone support on weekdays, 9–17. "
    "See <https://acme.example/pricing#team|the plan details>."
)
AGENT_NOTE = "// she is on a trial that ends Friday"
VISITOR_THANKS = "Perfect, thank you!"


@dataclass
class Thread:
    """A Slack thread as the fake Slack holds it, and the people in it."""

    root: dict[str, Any]
    replies: list[dict[str, Any]]
    #: Slack user id → (display name, profile picture URL), for the lines people wrote themselves
    people: dict[str, tuple[str, str]]
    channel_name: str = CHANNEL_NAME


async def agent_says(agent: SlackAgent, slack: FakeSlack, root_ts: str, text: str) -> None:
    """Alice writes in the thread: Slack keeps her message and sends the bridge the signed event for it."""
    stored = slack.add_message(CHANNEL, agent.user_id, text, thread_ts=root_ts)
    event = message_event(CHANNEL, agent.user_id, text, ts=stored["ts"], thread_ts=root_ts)
    status, _ = await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(event)))
    assert status == 200, status


async def record_thread() -> Thread:
    """Run the scripted conversation through a fresh bridge (SQLite in a temporary folder) and the fake
    Slack; the thread once everything has been delivered."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSlack() as slack, bridge_factory(f"sqlite+aiosqlite:///{tmp}/thread.db") as make:
            slack.add_channel(CHANNEL, CHANNEL_NAME)
            # the fake Slack has no rate limit: no need to wait Slack's second between posts
            bridge = await make(slack, slack_posts_per_second=100)
            visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, slack)
            try:
                return await _converse(bridge, slack, visitor, agent)
            finally:
                await visitor.close()
                await agent.close()


async def _converse(bridge: RunningBridge, slack: FakeSlack, visitor: Visitor, agent: SlackAgent) -> Thread:
    status, started, _ = await visitor.request(
        "POST",
        "/api/v1/sites/acme/conversations",
        {
            "visitor": {"name": "Ann Lee", "email": "ann@example.com"},
            "page": PAGE,
            "locale": "en-GB",
            "timezone": "Europe/London",
        },
        headers={**visitor.headers(), "User-Agent": CHROME_ON_WINDOWS},
    )
    assert status == 201, started
    visitor.conversation_id, visitor.token = started["conversation"]["id"], started["token"]
    root = await slack.wait_for(lambda: root_of(slack, CHANNEL, "Ann Lee"), message="the thread root")
    ts = root["ts"]

    async def seen_by_visitor(text: str) -> None:
        async def there() -> bool:
            return any(m["text"] == text for m in (await visitor.messages())["messages"])

        await wait_until(there, what=f"{text!r} in the widget")

    def in_thread(text: str) -> list[dict[str, Any]]:
        return [m for m in slack.replies(CHANNEL, ts) if m.get("text") == text]

    def root_says(words: str) -> bool:
        return words in json.dumps(slack.message(CHANNEL, ts).get("blocks"))

    assert (await visitor.say(VISITOR_FIRST))[0] == 201
    await slack.wait_for(lambda: in_thread(VISITOR_FIRST), message="the visitor's question in the thread")

    async def answered() -> bool:
        return any(m["author"]["role"] == "agent" for m in (await visitor.messages())["messages"])

    await agent_says(agent, slack, ts, AGENT_ANSWER)
    await wait_until(answered, what="Alice's answer in the widget")
    await agent_says(agent, slack, ts, AGENT_NOTE)
    await agent_says(agent, slack, ts, "!claim")
    await slack.wait_for(lambda: root_says("Claimed by Alice"), message="the root claimed")

    assert (await visitor.say(VISITOR_THANKS))[0] == 201
    await slack.wait_for(lambda: in_thread(VISITOR_THANKS), message="the visitor's thanks in the thread")
    await bridge.wait_idle()

    people = {agent.user_id: ("Alice", f"https://avatars.example/{agent.user_id}.png")}
    return Thread(slack.message(CHANNEL, ts), slack.replies(CHANNEL, ts), people)


#: what differs from run to run in the root's blocks: the local time the chat began (weekday, time, and the
#: offset, which follows summer time)
_LOCAL_TIME = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{2}:\d{2} \(UTC[+-]\d{2}:\d{2}\)")


def steady(blocks: Any) -> Any:
    """Blocks with the values that change from run to run (the local time, the conversation id a button
    carries) replaced by placeholders; everything else — block types and order, texts, fields, buttons —
    as it was."""
    if isinstance(blocks, list):
        return [steady(b) for b in blocks]
    if isinstance(blocks, dict):
        steadied = {k: steady(v) for k, v in blocks.items()}
        if blocks.get("type") == "button" and "value" in blocks:
            steadied["value"] = "{conversation id}"
        return steadied
    if isinstance(blocks, str):
        return _LOCAL_TIME.sub("{local time}", blocks)
    return blocks
