"""After an unanswered post, the look for it in Slack ("did this post land?") reads page after page, is
bounded by the delivery's own time, and happens only for a delivery in doubt.

Since 2025 Slack serves conversations.history/replies to commercially distributed apps outside the
Marketplace 15 messages a page (PLATFORM-NOTES: "History reads"), so a post that landed is often
beyond the first page.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.slack_api import Call, FakeSlack
from tests.faults.helpers import doubles, held_post, lookups_since, recorded_root, roots_for, thread_lines
from tests.harness import RunningBridge, TunedSlackBridge, Visitor, acme_settings, root_of


@pytest.fixture
async def bridge(sqlite_url: str, fake_slack: FakeSlack) -> Any:
    fake_slack.cap_history_pages(15)
    settings = acme_settings(sqlite_url, fake_slack, first_response_alert_seconds=3600)
    started = await TunedSlackBridge(settings, timeout=1.0).start()  # 1 s: a held answer is a timeout
    yield started
    await started.stop()


def _chatter(slack: FakeSlack, count: int, thread_ts: str | None = None) -> None:
    """People writing in the channel (or the thread) — nothing the bridge posted."""
    for i in range(count):
        slack.add_message("C0SUPPORT", "UCHATTY", f"chatter {i}", thread_ts=thread_ts)


def _assert_paged_and_bounded(lookups: list[Call]) -> None:
    assert lookups, "the bridge did not look before posting again"
    assert all(c.params.get("oldest") for c in lookups), "a look that was not bounded by the delivery's time"
    assert any(c.params.get("cursor") for c in lookups), "the look never went past the first page"


async def test_a_root_that_landed_beyond_the_first_page_is_found(bridge: RunningBridge, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", kind="accept_then_hold", hold=3)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        await fake_slack.wait_for(lambda: held_post(fake_slack) and root_of(fake_slack), message="root stored, held")
        _chatter(fake_slack, 40)  # the channel moves on while the answer is held: the root is on page 3
        assert (await visitor.say("hello?"))[0] == 201
        await bridge.wait_idle(timeout=20)

        assert len(roots_for(fake_slack, "Ann")) == 1, "the root was posted twice"
        root = root_of(fake_slack)
        assert root is not None and thread_lines(fake_slack, root["ts"]) == ["hello?"]
        _assert_paged_and_bounded(lookups_since(fake_slack, 0, "conversations.history"))
    finally:
        await visitor.close()


async def test_a_reply_that_landed_beyond_the_first_page_is_found(bridge: RunningBridge, fake_slack: FakeSlack) -> None:
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        _chatter(fake_slack, 20, thread_ts=root["ts"])  # notes between agents in the thread
        assert (await visitor.say("first"))[0] == 201
        await bridge.wait_idle()
        assert not fake_slack.calls_to("conversations.replies"), "a look in the normal flow"
        assert not fake_slack.calls_to("conversations.history"), "a look in the normal flow"

        fake_slack.fail_next("chat.postMessage", kind="accept_then_hold", hold=3)
        assert (await visitor.say("did this land?"))[0] == 201
        await fake_slack.wait_for(lambda: held_post(fake_slack, "did this land?"), message="the post held")
        _chatter(fake_slack, 30, thread_ts=root["ts"])  # the thread moves on meanwhile
        await bridge.wait_idle(timeout=20)

        assert thread_lines(fake_slack, root["ts"]).count("did this land?") == 1, "posted twice (or lost)"
        assert not doubles(fake_slack)
        _assert_paged_and_bounded(lookups_since(fake_slack, 0))
    finally:
        await visitor.close()
