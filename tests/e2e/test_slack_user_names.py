"""An agent's name and photo as the visitor sees them follow Slack: a rename or a new photo shows within
the hour (the cache expires), and at once when Slack says so (``user_change``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from adapters.slack import plugin as slack_plugin
from adapters.slack.endpoint import SlackEndpoint
from config.settings import Settings
from sitechat.runtime import build_runtime, serve
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, signed_json, user_change_event
from tests.faults.helpers import recorded_root
from tests.harness import SIGNING_SECRET, RunningBridge, SlackAgent, Visitor, acme_settings, wait_until

JSON = dict[str, Any]


class Clock:
    """Wall-clock seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class ClockedBridge(RunningBridge):
    """The bridge in this process with a Slack endpoint that reads ``clock`` for the time."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        super().__init__(settings)
        self.clock = clock

    async def start(self) -> RunningBridge:
        s = self.settings
        assert s.slack is not None
        endpoint = SlackEndpoint(
            bot_token=s.slack.bot_token.get_secret_value(),
            api_url=s.slack.api_url,
            signing_secret=SIGNING_SECRET,
            app_token=None,
            clock=self.clock,
        )
        self.runtime = build_runtime(s, plugins=[slack_plugin(endpoint)])
        self._runner = await serve(self.runtime, s.widget.host, s.widget.port)
        return self


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bridge(sqlite_url: str, fake_slack: FakeSlack, clock: Clock) -> Any:
    started = await ClockedBridge(
        acme_settings(sqlite_url, fake_slack, first_response_alert_seconds=3600), clock
    ).start()
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
