"""The abuse limits with several instances on one PostgreSQL: counted once, whichever instance a request
reaches — not once per instance (CONTRACT §2, §3).

Every test client comes from 127.0.0.1, so all of them share one client address. Each bridge runs
with the same settings, as instances behind one load balancer do. ``postgres_url`` comes first in
each test's fixtures, so its database is dropped only after the bridges on it have stopped.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, text, update

from bridge.store.instances import GONE_AFTER
from bridge.store.tables import instance
from tests.fakes.slack_api import FakeSlack
from tests.faults.process import new_bridge_process
from tests.harness import BridgeFactory, LiveSocket, RunningBridge, Visitor, wait_until
from widget_server.context import CONTEXT, WidgetContext

START = "/api/v1/sites/acme/conversations"
ENDED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def instances(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, url: str, n: int, **kw: Any
) -> list[RunningBridge]:
    return [await make_bridge(fake_slack, database_url=url, **kw) for _ in range(n)]


def ctx(bridge: RunningBridge) -> WidgetContext:
    assert bridge.runtime is not None
    return bridge.runtime.app[CONTEXT]


def same_conversation(visitor: Visitor, base_url: str) -> Visitor:
    """The visitor's conversation, reached through another instance."""
    other = Visitor(base_url)
    other.conversation_id, other.token = visitor.conversation_id, visitor.token
    return other


def assert_limited(status: int, payload: Any, headers: Any, longest: int) -> None:
    assert status == 429, payload
    assert payload["error"]["code"] == "rate_limited" and payload["error"]["message"], payload
    assert 0 < int(headers["Retry-After"]) <= longest, headers


async def test_new_conversations_per_address_are_counted_once_across_instances(
    postgres_url: str, make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridges = await instances(make_bridge, fake_slack, postgres_url, 3, rate_conversations_per_hour=5)
    visitors = [Visitor(b.url) for b in bridges]
    try:
        # a burst spread over the instances, all at once: exactly the limit gets through, not 3 × 5
        burst = await asyncio.gather(*(visitors[i % 3].request("POST", START, {"visitor": {}}) for i in range(12)))
        assert Counter(status for status, _, _ in burst) == {201: 5, 429: 7}
        for status, payload, headers in burst:
            if status == 429:
                assert_limited(status, payload, headers, 3600)
        # and afterwards, whichever instance the next one reaches
        for visitor in visitors:
            assert_limited(*(await visitor.request("POST", START, {"visitor": {}})), 3600)
            # the offline form counts on the same limit
            note = {"email": "ann@example.com", "text": "call me"}
            assert_limited(*(await visitor.request("POST", "/api/v1/sites/acme/offline-messages", note)), 3600)
    finally:
        for visitor in visitors:
            await visitor.close()


async def test_visitor_messages_per_conversation_are_counted_once_across_instances(
    postgres_url: str, make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridges = await instances(make_bridge, fake_slack, postgres_url, 3, rate_messages_per_minute=4)
    first = Visitor(bridges[0].url)
    await first.start()
    visitors = [first, same_conversation(first, bridges[1].url), same_conversation(first, bridges[2].url)]
    try:
        said = await asyncio.gather(*(visitors[i % 3].say(f"line {i}", f"m{i}") for i in range(10)))
        assert Counter(status for status, _ in said) == {201: 4, 429: 6}
        stored = (await first.messages())["messages"]
        assert len(stored) == 4
        for i, visitor in enumerate(visitors):
            status, payload = await visitor.say("one more", f"more-{i}")
            assert status == 429 and payload["error"]["code"] == "rate_limited", payload
        # a resend of a stored line is answered from the store on any instance, and costs no place
        again = stored[0]["client_msg_id"]
        for visitor in visitors:
            status, payload = await visitor.say(stored[0]["text"], again)
            assert status == 200 and payload["message"]["id"] == stored[0]["id"]
        # the socket's message frame meets the same limit, on another instance again
        live = await visitors[2].socket()
        await live.ws.send_json({"type": "message", "client_msg_id": "by-socket", "text": "over the socket"})
        error = await live.wait_frame(lambda f: f["type"] == "error")
        assert error["code"] == "rate_limited"
        await live.close()
        assert len((await first.messages())["messages"]) == 4
    finally:
        for visitor in visitors:
            await visitor.close()


async def refused_socket(visitor: Visitor) -> aiohttp.WSServerHandshakeError:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await visitor.socket()
    assert refused.value.status == 429 and int((refused.value.headers or {})["Retry-After"]) > 0
    return refused.value


async def test_open_sockets_per_address_are_counted_once_across_instances(
    postgres_url: str, make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    a, b, c = await instances(make_bridge, fake_slack, postgres_url, 3, rate_sockets_per_address=3)
    first = Visitor(a.url)
    await first.start()
    via = {bridge.url: same_conversation(first, bridge.url) for bridge in (a, b, c)}
    try:
        # handshakes racing each other on all three instances: three places in all, not three on each
        attempts = await asyncio.gather(*(via[x.url].socket() for x in (a, b, c) * 3), return_exceptions=True)
        opened = [s for s in attempts if isinstance(s, LiveSocket)]
        refused = [e for e in attempts if isinstance(e, aiohttp.WSServerHandshakeError)]
        assert len(opened) == 3 and len(refused) == 6, attempts
        assert all(e.status == 429 and int((e.headers or {})["Retry-After"]) > 0 for e in refused)
        for live in opened:
            await live.close()
        await wait_until(lambda: not any(ctx(x).sockets for x in (a, b, c)), what="every place to be free")

        # one socket on each instance; a fourth is refused wherever it goes
        sockets: dict[str, LiveSocket] = {x.url: await via[x.url].socket() for x in (a, b, c)}
        for x in (a, b, c):
            await refused_socket(via[x.url])
        # closing the one on C frees a place that A can take
        await sockets[c.url].close()
        await wait_until(lambda: not ctx(c).sockets, what="C's socket to give its place back")
        sockets[c.url] = await via[a.url].socket()
        await refused_socket(via[b.url])

        # an instance that stops gives back the places of the sockets it held (they are told to reconnect)
        await b.stop()
        assert (await sockets[b.url].ws.receive(timeout=10)).type in ENDED
        sockets[b.url] = await via[c.url].socket()
        await refused_socket(via[a.url])
        for live in sockets.values():
            await live.close()
    finally:
        for visitor in (first, *via.values()):
            await visitor.close()


async def test_the_places_of_a_killed_instance_are_freed_once_it_is_gone(
    postgres_url: str,
    make_bridge: BridgeFactory,
    fake_slack: FakeSlack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real ``sitechat run`` killed with SIGKILL holds two places: they stay taken (a silent instance may
    only be slow) until it has been silent for GONE_AFTER — time this test skips by moving its last
    heartbeat back — and then the others' heartbeat frees them."""
    monkeypatch.setattr("bridge.store.instances.HEARTBEAT_SECONDS", 0.2)  # the in-process instance's
    a = await make_bridge(fake_slack, database_url=postgres_url, rate_sockets_per_address=3)
    killed = new_bridge_process(
        tmp_path, fake_slack, SITECHAT_DATABASE_URL=postgres_url, SITECHAT_RATE_SOCKETS_PER_ADDRESS="3"
    )
    await killed.start()
    first = Visitor(a.url)
    on_killed = None
    try:
        await first.start()
        on_killed = same_conversation(first, killed.url)
        held = [await on_killed.socket(), await on_killed.socket(), await first.socket()]
        await refused_socket(first)

        await killed.kill()  # nothing runs: its rows stay behind
        for live in held[:2]:
            assert (await live.ws.receive(timeout=10)).type in ENDED
        assert a.runtime is not None
        engine = a.runtime.db.engine
        async with engine.connect() as conn:
            others = (await conn.execute(select(instance.c.id).where(instance.c.id != a.runtime.db.instance))).all()
        assert len(others) == 1, others
        gone = others[0].id
        await asyncio.sleep(1.0)  # several heartbeats of A: a silent instance is not gone yet
        await refused_socket(first)

        async with a.runtime.db.write() as conn:  # GONE_AFTER passes (for it: nothing else changes)
            await conn.execute(
                update(instance).where(instance.c.id == gone).values(seen_at=instance.c.seen_at - GONE_AFTER)
            )

        async def a_place_is_free() -> bool:
            async with engine.connect() as conn:
                left = await conn.execute(text("SELECT count(*) FROM open_socket WHERE instance_id = :i"), {"i": gone})
                return not left.scalar_one()

        await wait_until(a_place_is_free, what="A's heartbeat to free the killed instance's places")
        held += [await first.socket(), await first.socket()]
        await refused_socket(first)
        for live in held[2:]:
            await live.close()
    finally:
        await killed.kill()
        await first.close()
        if on_killed is not None:
            await on_killed.close()
