"""An agent's name and photo as the visitor sees them follow Slack: a rename or a new photo shows within
the hour (the cache expires), and at once when Slack says so (``user_change``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, signed_json, user_change_event
from tests.faults.helpers import recorded_root
from tests.harness import (
    SIGNING_SECRET,
    Clock,
    RunningBridge,
    SlackAgent,
    TunedSlackBridge,
    Visitor,
    acme_settings,
    wait_until,
)

JSON = dict[str, Any]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bridge(sqlite_url: str, fake_slack: FakeSlack, clock: Clock) -> Any:
    settings = acme_settings(sqlite_url, fake_slack, first_response_alert_seconds=3600)
    started = await TunedSlackBridge(settings, clock=clock).start()
    yield started
    await started.stop()


async def _author_of(visitor: Visitor, text: str) -> JSON:
    async def author() -> JSON | None:
        found = [m["author"] for m in (await visitor.messages())["messages"] if m["text"] == text]
        return found[0] if found else None

    result: JSON = await wait_until(author, what=f"{text!r} in the widget")
    return result


async def test_a_renamed_agent_with_a_new_photo_shows_after_the_cache_expires_or_at_once_on_user_change(
    bridge: RunningBridge, fake_slack: FakeSlack, clock: Clock
) -> None:
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)  # Alice, UAGENT
    try:
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        await agent.reply("C0SUPPORT", root["ts"], "hello")
        first = await _author_of(visitor, "hello")
        assert (first["name"], first["avatar_url"]) == ("Alice", "https://avatars.example/UAGENT.png")

        fake_slack.add_user("UAGENT", "alice", display_name="Alicia", image_url="https://avatars.example/new.png")
        clock.now += 30 * 60  # within the hour: the name Slack gave is still good enough
        await agent.reply("C0SUPPORT", root["ts"], "still me")
        assert (await _author_of(visitor, "still me"))["name"] == "Alice"

        clock.now += 31 * 60  # more than an hour since Slack was asked: asked again
        await agent.reply("C0SUPPORT", root["ts"], "renamed")
        renamed = await _author_of(visitor, "renamed")
        assert (renamed["name"], renamed["avatar_url"]) == ("Alicia", "https://avatars.example/new.png")

        # Slack tells the app about the next change itself: no need to ask, no hour to wait
        asked = len(fake_slack.calls_to("users.info"))
        changed = fake_slack.add_user("UAGENT", "alice", display_name="Ally", image_url="https://avatars.example/3.png")
        status, _ = await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(user_change_event(changed))))
        assert status == 200
        await agent.reply("C0SUPPORT", root["ts"], "changed")
        latest = await _author_of(visitor, "changed")
        assert (latest["name"], latest["avatar_url"]) == ("Ally", "https://avatars.example/3.png")
        assert len(fake_slack.calls_to("users.info")) == asked, "users.info asked although Slack had said"
    finally:
        await visitor.close()
        await agent.close()


async def test_user_change_of_someone_never_seen_or_without_a_profile_changes_nothing(
    bridge: RunningBridge, fake_slack: FakeSlack
) -> None:
    agent = SlackAgent(bridge.url, fake_slack)
    try:
        for user in (
            fake_slack.add_user("USTRANGER", "stranger", display_name="Stranger"),
            {"id": "UODD"},  # no profile at all
            {},  # not even an id
        ):
            status, _ = await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(user_change_event(user))))
            assert status == 200
    finally:
        await agent.close()
