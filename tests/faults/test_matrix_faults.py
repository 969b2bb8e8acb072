"""Cases 3, 4, 7 and 8 of "nothing lost, nothing doubled, order kept", on the Matrix side: a real
``sitechat run`` killed with SIGKILL, talking to the real Synapse (through a recording proxy where a
test has to see or hold what crosses the wire).

What the visitor sees is read through the public widget API; what the room holds is read by the
staff member with ``/messages``; what the bridge had recorded when it died is read from its SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from adapters.matrix.inbound import BACKFILL_PAGE
from adapters.matrix.timeline import TIMELINE_LIMIT
from sitechat.demo.local_homeserver import LocalSynapse
from tests.faults.matrix_process import (
    Event,
    MatrixProxy,
    MatrixRoom,
    db_execute,
    db_rows,
    freeze,
    matrix_bridge,
    stored_token,
    thaw,
)
from tests.faults.process import BridgeProcess, pending_deliveries
from tests.harness import Visitor, wait_until

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]

Launch = Callable[..., BridgeProcess]


@pytest_asyncio.fixture(loop_scope="session")
async def room(synapse: LocalSynapse) -> MatrixRoom:
    return await MatrixRoom.create(synapse)


@pytest_asyncio.fixture(loop_scope="session")
async def proxy(synapse: LocalSynapse) -> AsyncIterator[MatrixProxy]:
    p = await MatrixProxy(synapse.base_url).start()
    yield p
    await p.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def launch(tmp_path: Path, room: MatrixRoom) -> AsyncIterator[Launch]:
    """A ``sitechat run`` for ``room`` (not started yet); killed at the end, frozen or not."""
    made: list[BridgeProcess] = []

    def make(homeserver: str | None = None) -> BridgeProcess:
        bridge = matrix_bridge(tmp_path, room, homeserver)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        await bridge.kill()  # SIGKILL ends a stopped (SIGSTOP) process too


@pytest_asyncio.fixture(loop_scope="session")
async def visitors() -> AsyncIterator[list[Visitor]]:
    made: list[Visitor] = []
    yield made
    for v in made:
        await v.close()


async def agent_texts(visitor: Visitor) -> list[str]:
    return [m["text"] for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]


async def has_reply(visitor: Visitor, text: str) -> bool:
    return text in await agent_texts(visitor)


async def wait_drained(bridge: BridgeProcess, timeout: float) -> None:
    async def drained() -> bool:
        return await pending_deliveries(bridge.db_path) == 0

    try:
        await wait_until(drained, timeout, "the bridge's outbox to drain", interval=0.1)
    except AssertionError as exc:
        tail = "".join(bridge.output.splitlines(keepends=True)[-30:])
        raise AssertionError(f"{exc}\n--- bridge output ---\n{tail}") from None


# -- case 3 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["line", "root"])
async def test_killed_after_synapse_accepted_an_event_the_resend_is_the_same_event(
    what: str, room: MatrixRoom, proxy: MatrixProxy, launch: Launch, visitors: list[Visitor]
) -> None:
    """Case 3: Synapse stored the event, its answer (the event id) never reached the bridge, and the
    bridge is killed. After the restart the delivery is sent again with the same transaction id,
    Synapse answers with the same event, and the room holds it once."""
    bridge = await launch(proxy.url).start()
    visitor = Visitor(bridge.url)
    visitors.append(visitor)

    def held(content: Event) -> bool:
        body = str(content.get("body", ""))
        return body.startswith("Chat from Ann ") if what == "root" else body == "Ann: only once"

    proxy.hold_sends(held)
    await visitor.start(name="Ann")
    if what == "line":
        assert (await visitor.say("only once"))[0] == 201
    first = (await wait_until(lambda: [s for s in proxy.sends_where(held) if s.held], 15, f"the {what} held"))[0]
    assert first.status == 200 and first.event_id, first
    assert [e["event_id"] for e in await room.events() if e.get("content") == first.content] == [first.event_id]
    await bridge.kill()

    # what the crash left: the delivery still pending, marked as possibly sent
    kind = "open_thread" if what == "root" else "message"
    rows = await db_rows(bridge.db_path, "SELECT id, done, in_doubt FROM delivery WHERE kind = ?", kind)
    assert [(r["done"], r["in_doubt"]) for r in rows] == [(0, 1)], rows
    delivery_id = rows[0]["id"]
    assert first.txn_id.endswith(f"-{delivery_id}-0"), first.txn_id

    proxy.hold_sends(None)
    await bridge.start()
    assert (await visitor.say("after the restart"))[0] == 201
    await wait_drained(bridge, 20)

    sends = proxy.sends_where(held)
    assert len(sends) >= 2, "the delivery was never sent again after the restart"
    assert {s.txn_id for s in sends} == {first.txn_id}, [s.txn_id for s in sends]
    assert {s.event_id for s in sends} == {first.event_id}, [s.event_id for s in sends]
    (done,) = await db_rows(bridge.db_path, "SELECT done, in_doubt, remote_id FROM delivery WHERE id = ?", delivery_id)
    assert (done["done"], done["in_doubt"], done["remote_id"]) == (1, 0, first.event_id)

    events = await room.events()
    assert len([e for e in events if room.is_bot_message(e) and held(e["content"])]) == 1, "a doubled event"
    roots = await room.roots()
    assert [r["event_id"] for r in roots] == ([first.event_id] if what == "root" else [roots[0]["event_id"]])
    expected = ["Ann: after the restart"] if what == "root" else ["Ann: only once", "Ann: after the restart"]
    assert await room.thread_bodies(roots[0]["event_id"]) == expected


# -- case 4 ----------------------------------------------------------------------------------------


async def _conversation_with_a_first_reply(
    room: MatrixRoom, bridge: BridgeProcess, visitors: list[Visitor]
) -> tuple[Visitor, str]:
    """A visitor whose conversation has its thread and one staff reply already relayed."""
    visitor = Visitor(bridge.url)
    visitors.append(visitor)
    await visitor.start(name="Ann")
    root = (await room.wait_root())["event_id"]
    await room.reply(root, "reply 1")
    await wait_until(lambda: agent_texts(visitor), 15, "reply 1 at the visitor")
    # nothing of the bot's still on its way: the room stays quiet until the test acts
    await wait_drained(bridge, 15)
    return visitor, root


async def _freeze_during_a_long_poll(bridge: BridgeProcess, proxy: MatrixProxy) -> None:
    """SIGSTOP the bridge while one of its ``/sync`` long polls waits at Synapse, so the next event
    is answered into the socket of a process that cannot read it."""
    for _ in range(50):
        await wait_until(lambda: proxy.syncs_waiting > 0, 15, "the bridge's sync long poll")
        freeze(bridge)
        if proxy.syncs_waiting > 0:
            return
        thaw(bridge)  # caught between two syncs: try again
    raise AssertionError("never caught the bridge inside a sync long poll")


async def test_killed_with_a_sync_answer_unprocessed_the_reply_arrives_once(
    room: MatrixRoom, proxy: MatrixProxy, launch: Launch, visitors: list[Visitor]
) -> None:
    """Case 4: the sync answer holding a staff reply reached the bridge's socket, the bridge never
    processed it (frozen), and it is killed; a second reply waits at Synapse meanwhile. After the
    restart both reach the visitor once each, in order."""
    bridge = await launch(proxy.url).start()
    visitor, root = await _conversation_with_a_first_reply(room, bridge, visitors)

    await _freeze_during_a_long_poll(bridge, proxy)
    before = len(proxy.syncs)
    arrived = await room.reply(root, "reply 2")
    await wait_until(lambda: proxy.synced(arrived, before), 15, "the sync answer with reply 2 in the bridge's socket")
    # the frozen bridge asks for nothing more: this one waits at Synapse for the next sync
    await room.reply(root, "reply 3")
    unprocessed = await db_rows(bridge.db_path, "SELECT text FROM message WHERE text IN ('reply 2', 'reply 3')")
    assert unprocessed == [], "the frozen bridge processed the answer: the window was missed"
    await bridge.kill()

    await bridge.start()
    await wait_until(lambda: has_reply(visitor, "reply 3"), 20, "reply 3 at the visitor")
    await room.reply(root, "reply 4")
    await wait_until(lambda: has_reply(visitor, "reply 4"), 20, "reply 4 at the visitor")
    assert await agent_texts(visitor) == ["reply 1", "reply 2", "reply 3", "reply 4"]


async def test_sync_answer_processed_but_its_token_unsaved_is_not_doubled(
    room: MatrixRoom, proxy: MatrixProxy, launch: Launch, visitors: list[Visitor]
) -> None:
    """Case 4, the other half of the window: the core had the batch, the bridge died before the sync
    token was saved (the test puts the older token back, as such a crash leaves it). The restart
    gets the same events again; the visitor still sees each reply once."""
    bridge = await launch(proxy.url).start()
    visitor, root = await _conversation_with_a_first_reply(room, bridge, visitors)

    older = await stored_token(bridge.db_path)
    assert older
    replies = [await room.reply(root, text) for text in ("reply 2", "reply 3")]
    await wait_until(lambda: has_reply(visitor, "reply 3"), 15, "reply 3 at the visitor")

    async def moved_on() -> bool:
        return await stored_token(bridge.db_path) != older

    await wait_until(moved_on, 15, "the bridge to save a newer sync token")
    await bridge.kill()
    await db_execute(bridge.db_path, "UPDATE sync_state SET value = ? WHERE key = 'matrix:next_batch'", older)
    assert await stored_token(bridge.db_path) == older

    replayed_from = len(proxy.syncs)
    await bridge.start()
    await wait_until(lambda: all(proxy.synced(r, replayed_from) for r in replies), 20, "the replies synced again")
    await room.reply(root, "reply 4")
    await wait_until(lambda: has_reply(visitor, "reply 4"), 20, "reply 4 at the visitor")
    assert await agent_texts(visitor) == ["reply 1", "reply 2", "reply 3", "reply 4"]


# -- case 7 ----------------------------------------------------------------------------------------

#: The issue says 30 s. 10 s by default exercises the same paths (sends refused or hanging, the lane
#: backing off, the sync loop failing and coming back) and keeps this file near half a minute; a
#: longer outage only means longer backoffs. ``SITECHAT_TEST_OUTAGE_SECONDS=30`` runs the issue's figure.
OUTAGE_SECONDS = float(os.environ.get("SITECHAT_TEST_OUTAGE_SECONDS", "10"))
STREAM = [f"m{i:03d}" for i in range(100)]


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["stop", "pause"])
async def test_synapse_down_during_a_100_message_stream_each_arrives_once_in_order(
    outage: str, synapse: LocalSynapse, room: MatrixRoom, launch: Launch, visitors: list[Visitor]
) -> None:
    """Case 7: in the middle of a visitor's stream of 100 messages Synapse goes away, either stopped
    (its port refuses; started again on the same port) or frozen with SIGSTOP (requests hang, as
    with a dead server), for ``OUTAGE_SECONDS``. Each message is in the thread once, in order."""
    bridge = await launch().start()
    visitor = Visitor(bridge.url)
    visitors.append(visitor)
    await visitor.start(name="Ann")
    root = (await room.wait_root())["event_id"]

    async def say(text: str) -> None:
        status, payload = await visitor.say(text)
        assert status == 201, payload

    for text in STREAM[:30]:
        await say(text)
    if outage == "stop":
        await synapse.stop()
        # refused: deliveries fail and are postponed
        felt = "SELECT id FROM delivery WHERE NOT done AND last_error IS NOT NULL"
    else:
        synapse.pause()
        # hanging: a delivery has gone out and has no answer
        felt = "SELECT id FROM delivery WHERE NOT done AND in_doubt"
    try:
        # the stream goes on while the homeserver is away, spread over the outage (pacing, not waiting)
        during = STREAM[30:70]
        for text in during:
            await say(text)
            await asyncio.sleep(OUTAGE_SECONDS / len(during))
        assert await db_rows(bridge.db_path, felt), "the bridge did not notice the outage"
    finally:
        synapse.resume()
        if not synapse.running:
            await synapse.start()
    for text in STREAM[70:]:
        await say(text)
    await wait_drained(bridge, 30 + 2 * OUTAGE_SECONDS)

    assert await room.thread_bodies(root) == [f"Ann: {text}" for text in STREAM]
    # and the other way round: the sync loop is back too
    await room.reply(root, "welcome back")
    await wait_until(lambda: has_reply(visitor, "welcome back"), 20 + 2 * OUTAGE_SECONDS, "the staff reply after it")
    assert await agent_texts(visitor) == ["welcome back"]


# -- case 8 ----------------------------------------------------------------------------------------


async def test_bridge_killed_while_staff_post_more_than_a_sync_holds_the_gap_is_backfilled(
    room: MatrixRoom, launch: Launch, visitors: list[Visitor]
) -> None:
    """Case 8: the bridge is killed; staff post more replies than one sync returns (and more than
    one backfill page), with internal notes between them; after the restart the visitor has every
    reply once, in order. (tests/e2e covers a clean stop in process; this is ``kill -9``.)"""
    replies = [f"r{i:03d}" for i in range(1, 131)]
    assert len(replies) > TIMELINE_LIMIT + BACKFILL_PAGE  # a gap, backfilled over several pages

    bridge = await launch().start()
    visitor, root = await _conversation_with_a_first_reply(room, bridge, visitors)
    await bridge.kill()
    for i, text in enumerate(replies):
        await room.reply(root, text)
        if i % 10 == 9:
            await room.reply(root, f"// note after {text}")  # never relayed, but part of the gap

    started = len(bridge.output)
    await bridge.start()
    await wait_until(lambda: has_reply(visitor, replies[-1]), 30, "the last reply at the visitor")
    assert await agent_texts(visitor) == ["reply 1", *replies]
    backfilled = [int(n) for n in re.findall(r"backfilled (\d+) event", bridge.output[started:])]
    assert backfilled and backfilled[0] > BACKFILL_PAGE, bridge.output[started:]


async def test_gap_backfill_refused_once_by_a_gateway_loses_nothing(
    room: MatrixRoom, proxy: MatrixProxy, launch: Launch, visitors: list[Visitor]
) -> None:
    """Case 8 with a fault inside it: the first ``/messages`` of the backfill gets a gateway's 502
    (a reverse proxy while Synapse restarts). The gap is read on the next try; nothing is skipped."""
    replies = [f"r{i:03d}" for i in range(1, TIMELINE_LIMIT + 11)]

    bridge = await launch(proxy.url).start()
    visitor, root = await _conversation_with_a_first_reply(room, bridge, visitors)
    await bridge.kill()
    for text in replies:
        await room.reply(root, text)

    proxy.fail_next("/messages", 502)
    await bridge.start()
    await wait_until(lambda: has_reply(visitor, replies[-1]), 30, "the last reply at the visitor")
    assert [path for _, path, _ in proxy.failed if path.endswith("/messages")], "the backfill never asked"
    assert await agent_texts(visitor) == ["reply 1", *replies]
