"""A conversation's earlier threads stay its own: after a transfer, a reply in the old thread is
still a reply to the visitor — never a request Slack is told to retry until it gives up."""

from __future__ import annotations

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import root_of, visitor_and_agent, wait_until


async def test_a_reply_in_the_thread_before_a_transfer_reaches_the_visitor(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        await visitor.start(name="Ann")
        old_root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="root")
        await agent.reply("C0SUPPORT", old_root["ts"], "!transfer sales")
        await fake_slack.wait_for(lambda: root_of(fake_slack, "C0SALES"), message="the new root")

        status, _ = await agent.reply("C0SUPPORT", old_root["ts"], "One more thing from support")
        assert status == 200, "Slack would retry a 503 three times, then give up on the reply"

        async def agent_texts() -> list[str]:
            return [m["text"] for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]

        assert await wait_until(agent_texts, what="the reply from the old thread") == ["One more thing from support"]
