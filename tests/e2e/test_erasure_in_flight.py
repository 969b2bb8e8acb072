"""A post on its way while its conversation is erased: once it lands, it is removed too."""

from __future__ import annotations

from bridge.retention import forget
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import Visitor, root_of, wait_until


async def test_a_post_landing_after_the_erasure_is_removed_as_well(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack, first_response_alert_seconds=3600)
    assert bridge.runtime is not None
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann", email="ann@example.com")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="root")
        posts_before = len(fake_slack.calls_to("chat.postMessage"))
        fake_slack.set_latency(1.0, "chat.postMessage")  # the line is on its way for a second
        status, _ = await visitor.say("my account number is 1234")
        assert status == 201
        await wait_until(lambda: len(fake_slack.calls_to("chat.postMessage")) > posts_before, what="the send")

        assert await forget(bridge.runtime.db, "ann@example.com") == 1  # while the post is in flight

        def remaining() -> list[str]:
            return [m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])] + [
                m["text"] for m in fake_slack.messages("C0SUPPORT")
            ]

        # the line landed after its conversation was gone, and was deleted then
        await wait_until(lambda: any("1234" in m.get("text", "") for m in fake_slack.deleted), 15, "the late post")
        await wait_until(lambda: not remaining(), 15, "the whole thread removed")
    finally:
        await visitor.close()
