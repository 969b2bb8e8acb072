"""Posts stay within Slack's size: lines that waited are combined only as far as they fit, and a line too
long for one post is split into numbered parts, each posted once and in order, whatever fails between them.

Slack recommends at most 4,000 characters of ``text`` per message and silently keeps only the first
40,000 (PLATFORM-NOTES: "Message size").
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.slack.format import unescape
from tests.fakes.slack_api import FakeSlack
from tests.faults.helpers import METADATA_TYPE, doubles, recorded_root
from tests.harness import RunningBridge, TunedSlackBridge, Visitor, acme_settings

JSON = dict[str, Any]
MAX_POST_CHARS = 4000


@pytest.fixture
async def bridge(sqlite_url: str, fake_slack: FakeSlack) -> Any:
    # 1 s client timeout: an answer held longer is a real client-side timeout
    settings = acme_settings(sqlite_url, fake_slack, first_response_alert_seconds=3600, rate_messages_per_minute=1000)
    # ten posts a second: the fake has no limit of its own here, only the injected 429s
    started = await TunedSlackBridge(settings, timeout=1.0, posts_per_second=10).start()
    yield started
    await started.stop()


def _payload(message: JSON) -> JSON:
    meta = message.get("metadata") or {}
    return meta["event_payload"] if meta.get("event_type") == METADATA_TYPE else {}


def _posted_texts(slack: FakeSlack) -> list[str]:
    """The text of every chat.postMessage the bridge sent, whatever became of it."""
    return [str(c.params.get("text", "")) for c in slack.calls_to("chat.postMessage")]


async def test_lines_waiting_behind_the_rate_limit_are_combined_within_slacks_size(
    bridge: RunningBridge, fake_slack: FakeSlack
) -> None:
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        fake_slack.fail_next("chat.postMessage", status=429, retry_after=2)  # everything waits behind it
        lines = [f"{i:02d} " + ("Tom & Jerry <3 each other, " * 100)[:2497] for i in range(20)]
        for line in lines:
            assert (await visitor.say(line))[0] == 201
        await bridge.wait_idle(timeout=60)

        too_long = [len(t) for t in _posted_texts(fake_slack) if len(t) > MAX_POST_CHARS]
        assert not too_long, f"posts over {MAX_POST_CHARS} characters: {too_long}"
        replies = fake_slack.replies("C0SUPPORT", root["ts"])
        assert [line for m in replies for line in unescape(m["text"]).split("\n")] == lines
        assert not doubles(fake_slack)
        # nothing was in doubt: Slack's history was never read
        assert not fake_slack.calls_to("conversations.replies") and not fake_slack.calls_to("conversations.history")
    finally:
        await visitor.close()


LONG = "<&>" * 1300  # 3,900 characters (within the widget's 4,000), 16,900 once escaped for Slack

FAULTS: dict[str, dict[str, Any]] = {
    "none": {},
    "500 (not posted)": {"status": 500},
    "429 (not posted)": {"status": 429, "retry_after": 1},
    "accepted, answer lost": {"kind": "accept_then_drop"},
    "accepted, answer too late": {"kind": "accept_then_hold", "hold": 2.0},
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=list(FAULTS))
async def test_a_line_too_long_for_one_post_goes_in_parts_once_and_in_order(
    bridge: RunningBridge, fake_slack: FakeSlack, fault: dict[str, Any]
) -> None:
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        if fault:
            fake_slack.fail_next("chat.postMessage", when=lambda p: _payload(p).get("part") == 2, **fault)
        for text in ("before", LONG, "after"):
            assert (await visitor.say(text))[0] == 201
        await bridge.wait_idle(timeout=30)

        if fault:
            assert [c.fault for c in fake_slack.calls_to("chat.postMessage") if c.fault], "the part did not fail"
        too_long = [len(t) for t in _posted_texts(fake_slack) if len(t) > MAX_POST_CHARS]
        assert not too_long, f"posts over {MAX_POST_CHARS} characters: {too_long}"
        replies = fake_slack.replies("C0SUPPORT", root["ts"])
        assert not doubles(fake_slack), "a part was posted twice"
        texts = [unescape(m["text"]) for m in replies]
        assert texts[0] == "before" and texts[-1] == "after", texts
        parts = replies[1:-1]
        assert [_payload(m)["part"] for m in parts] == list(range(len(parts))) and len(parts) >= 5
        assert len({tuple(_payload(m)["delivery_ids"]) for m in parts}) == 1, "the parts carry one delivery"
        assert "".join(texts[1:-1]) == LONG, "a character was lost, doubled or moved"
    finally:
        await visitor.close()
