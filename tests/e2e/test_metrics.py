"""``/metrics`` (CONTRACT §9): conversations driven through the public API and the fake Slack, then every
series read back with Prometheus's own text parser."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bridge.store.tables import delivery
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import signed_json
from tests.harness import (
    SIGNING_SECRET,
    BridgeFactory,
    RunningBridge,
    Visitor,
    root_of,
    visitor_and_agent,
    wait_until,
)

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(bridge: RunningBridge) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(f"{bridge.url}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} is not exported; have {sorted(n for n, _ in samples if name in n)}"
    return samples[key]


async def scraped_when(bridge: RunningBridge, check: Callable[[Samples], bool], what: str) -> Samples:
    """Scrape until ``check`` holds; those samples."""

    async def once() -> Samples | None:
        samples = await scrape(bridge)
        return samples if check(samples) else None

    found: Samples = await wait_until(once, 15, what, interval=0.1)
    return found


def no_cache(bridge: RunningBridge) -> None:
    assert bridge.runtime is not None and bridge.runtime.widget.metrics is not None
    bridge.runtime.widget.metrics.cache_seconds = 0


async def done_deliveries(bridge: RunningBridge, endpoint: str) -> int:
    assert bridge.runtime is not None
    async with bridge.runtime.db.read() as conn:
        query = select(func.count()).select_from(delivery).where(delivery.c.done, delivery.c.endpoint == endpoint)
        return int((await conn.execute(query)).scalar_one())


async def test_every_series_counts_what_happened(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack)
    no_cache(bridge)

    fresh = await scrape(bridge)
    # every known series is there from the start, at 0
    assert value(fresh, "sitechat_conversations_started_total", site="acme", topic="") == 0
    assert value(fresh, "sitechat_conversations_started_total", site="acme", topic="sales") == 0
    assert value(fresh, "sitechat_conversations_open", site="acme") == 0
    assert value(fresh, "sitechat_messages_total", direction="to_team", endpoint="slack") == 0
    assert value(fresh, "sitechat_messages_total", direction="to_visitor", endpoint="slack") == 0
    assert value(fresh, "sitechat_outbox_pending", endpoint="slack") == 0
    assert value(fresh, "sitechat_delivery_seconds_count", endpoint="slack") == 0
    assert value(fresh, "sitechat_first_response_seconds_count", site="acme") == 0
    for score in "12345":
        assert value(fresh, "sitechat_ratings_total", site="acme", score=score) == 0
    assert value(fresh, "sitechat_endpoint_up", endpoint="slack") == 1
    assert value(fresh, "sitechat_widget_sockets") == 0

    async with visitor_and_agent(bridge, fake_slack) as (ann, agent):
        await ann.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="Ann's root")
        live = await ann.socket()
        assert (await ann.say("Hello?"))[0] == 201
        assert (await ann.say("Anyone there?"))[0] == 201
        status, event = await agent.reply("C0SUPPORT", root["ts"], "Hi Ann, how can I help?")
        assert status == 200
        # Slack delivers the same event again (a retry): stored once, counted once
        assert (await agent.post_signed(*signed_json(SIGNING_SECRET, event)))[0] == 200
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["seq"] == 3)
        await agent.reply("C0SUPPORT", root["ts"], "A second reply is no first response")
        await agent.reply("C0SUPPORT", root["ts"], "// a note never reaches the visitor")
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["seq"] == 4)

        bob = Visitor(bridge.url)
        try:
            await bob.start(name="Bob", topic="sales")  # a second chat, on a topic, left open
        finally:
            await bob.close()
        await fake_slack.wait_for(lambda: root_of(fake_slack, "C0SALES", "Bob"), message="Bob's root")

        during = await scrape(bridge)
        assert value(during, "sitechat_widget_sockets") == 1
        await live.close()

        status, _, _ = await ann.request("POST", f"/api/v1/conversations/{ann.conversation_id}/close")
        assert status == 200
        status, _, _ = await ann.request(
            "POST", f"/api/v1/conversations/{ann.conversation_id}/rating", {"score": 2, "comment": "slow"}
        )
        assert status == 200
        await bridge.wait_idle()

    after = await scraped_when(bridge, lambda s: value(s, "sitechat_widget_sockets") == 0, "the socket to close")
    assert value(after, "sitechat_conversations_started_total", site="acme", topic="") == 1
    assert value(after, "sitechat_conversations_started_total", site="acme", topic="sales") == 1
    assert value(after, "sitechat_conversations_open", site="acme") == 1
    assert value(after, "sitechat_messages_total", direction="to_team", endpoint="slack") == 2
    assert value(after, "sitechat_messages_total", direction="to_visitor", endpoint="slack") == 2
    assert value(after, "sitechat_outbox_pending", endpoint="slack") == 0
    sent = await done_deliveries(bridge, "slack")
    assert sent >= 6  # two roots, two visitor lines, the transcript, root updates, the rating
    assert value(after, "sitechat_delivery_seconds_count", endpoint="slack") == sent
    assert 0 < value(after, "sitechat_delivery_seconds_sum", endpoint="slack") < 10 * sent
    assert value(after, "sitechat_first_response_seconds_count", site="acme") == 1
    assert 0 < value(after, "sitechat_first_response_seconds_sum", site="acme") < 30
    assert value(after, "sitechat_first_response_seconds_bucket", site="acme", le="+Inf") == 1
    assert value(after, "sitechat_ratings_total", site="acme", score="2") == 1
    assert sum(value(after, "sitechat_ratings_total", site="acme", score=s) for s in "1345") == 0
    assert value(after, "sitechat_endpoint_up", endpoint="slack") == 1


async def test_a_paused_destination_shows_as_backlog_and_endpoint_down(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack)
    no_cache(bridge)
    fake_slack.set_channel_missing("C0SUPPORT")
    async with visitor_and_agent(bridge, fake_slack) as (ann, _agent):
        await ann.start(name="Ann")
        for text in ("one", "two"):
            assert (await ann.say(text))[0] == 201

        down = await scraped_when(
            bridge, lambda s: value(s, "sitechat_endpoint_up", endpoint="slack") == 0, "slack reported down"
        )
        assert value(down, "sitechat_outbox_pending", endpoint="slack") >= 3  # the root and both lines
        assert value(down, "sitechat_conversations_open", site="acme") == 1

        fake_slack.set_channel_missing("C0SUPPORT", missing=False)
        await bridge.wait_idle(timeout=45)
        up = await scraped_when(bridge, lambda s: value(s, "sitechat_endpoint_up", endpoint="slack") == 1, "slack up")
        assert value(up, "sitechat_outbox_pending", endpoint="slack") == 0
        assert value(up, "sitechat_delivery_seconds_count", endpoint="slack") == await done_deliveries(bridge, "slack")


async def test_the_counts_of_state_are_read_at_most_every_few_seconds(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack)
    async with visitor_and_agent(bridge, fake_slack) as (ann, _agent):
        assert value(await scrape(bridge), "sitechat_conversations_open", site="acme") == 0
        await ann.start(name="Ann")
        # cached: a scrape storm costs the database nothing
        assert value(await scrape(bridge), "sitechat_conversations_open", site="acme") == 0
        no_cache(bridge)
        assert value(await scrape(bridge), "sitechat_conversations_open", site="acme") == 1
