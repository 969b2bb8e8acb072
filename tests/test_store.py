"""The store and the outbox, on every backend (SQLite always, PostgreSQL too: CI runs both)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import delete, select

from bridge.conversations import ConversationClosed, Conversations, LimitReached, utcnow
from bridge.deliveries import DeliveryWorker
from bridge.endpoint import Inbox, Outgoing, Sent
from bridge.errors import RetryLater
from bridge.events import MessageReceived
from bridge.live import LiveHub, NewMessage
from bridge.model import EndpointName, Participant, RemoteId, Role, ThreadRef, Visitor
from bridge.observe import NoObserver
from bridge.outbound import Erase, Line, OpenThread, RootState, Transcript
from bridge.store import conversations as q
from bridge.store.database import Database
from bridge.store.limits import CountedUse, SharedLimits
from bridge.store.new_messages import Draft
from bridge.store.notify import CHANNEL, heard, payloads
from bridge.store.tables import conversation, delivery, message_link
from bridge.store.visitor_lines import LineOutcome, store_visitor_line
from tests.harness import acme_settings, wait_for_a_lock_wait, wait_until


class RecordingEndpoint:
    """A team chat that records what it is given and can be told to fail: the outbox's view of an endpoint."""

    name = EndpointName("slack")
    max_batch = 1

    def __init__(self) -> None:
        self.received: list[Outgoing] = []
        self.failures = 0

    async def start(self, inbox: Inbox) -> None: ...

    async def stop(self) -> None: ...

    async def ready(self, destination: str) -> None: ...

    async def check(self, destinations: Sequence[str]) -> list[str]:
        return []

    def warnings(self) -> list[str]:
        return []

    def known_problems(self) -> list[str]:
        return []

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        if self.failures:
            self.failures -= 1
            raise RetryLater("injected", retry_after=0.05)
        self.received.extend(batch)
        item = batch[0]
        thread = ThreadRef(f"C:{item.delivery_id}") if isinstance(item.what, OpenThread) else None
        return [Sent(item.delivery_id, RemoteId(f"r{item.delivery_id}"), thread)]


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    await database.migrate()  # twice is harmless (start-up always migrates)
    yield database
    await database.close()


def _core(db: Database, endpoint: RecordingEndpoint) -> tuple[Conversations, DeliveryWorker]:
    settings = acme_settings(
        "sqlite+aiosqlite://", site={"slack_channel": "C0SUPPORT"}, slack_bot_token="xoxb-x", slack_signing_secret="s"
    )
    worker = DeliveryWorker(db, {"slack": endpoint}, settings.sites, poll_seconds=0.05)
    conversations = Conversations(db, settings.sites, ["slack"], LiveHub(), wake_deliveries=worker.wake)
    return conversations, worker


async def _start(conversations: Conversations) -> str:
    new = await conversations.start(
        "acme", visitor=Visitor("Ann"), topic=None, page=None, locale=None, timezone=None, client_address="1.2.3.4"
    )
    return new.conversation.id


async def test_seq_has_no_gaps_under_concurrency_and_client_ids_dedupe(db: Database) -> None:
    conversations, _ = _core(db, RecordingEndpoint())
    cid = await _start(conversations)
    results = await asyncio.gather(
        *(conversations.post_visitor_message(cid, f"c{i % 20}", f"text {i % 20}") for i in range(40))
    )
    created = [m for m, new in results if new]
    assert len(created) == 20
    stored = await conversations.messages_after(cid, 0)
    assert [m.seq for m in stored] == list(range(1, 21))
    assert sorted(m.client_msg_id for m in stored) == sorted(f"c{i}" for i in range(20))
    assert [m.seq for m in await conversations.messages_after(cid, 15)] == [16, 17, 18, 19, 20]


async def test_a_line_counts_against_its_limit_once_and_a_refused_one_stores_nothing(db: Database) -> None:
    conversations, _ = _core(db, RecordingEndpoint())
    cid = await _start(conversations)
    now = utcnow()

    def use(seconds: float) -> CountedUse:
        return SharedLimits(db).counted_use("messages", cid, 2, 60, now + timedelta(seconds=seconds))

    first, _ = await conversations.post_visitor_message(cid, "c1", "one", count=use(0))
    await conversations.post_visitor_message(cid, "c2", "two", count=use(1))
    # a resend is answered with what was stored and costs no place, even with none left
    again, created = await conversations.post_visitor_message(cid, "c1", "one", count=use(2))
    assert (again.id, again.seq, again.text, created) == (first.id, 1, "one", False)
    with pytest.raises(LimitReached) as refused:
        await conversations.post_visitor_message(cid, "c3", "three", count=use(2))
    assert refused.value.wait == 58  # until the first use leaves the minute
    assert [m.text for m in await conversations.messages_after(cid, 0)] == ["one", "two"]
    # the place the first use held frees up: the refused line was not counted, so one more fits
    await conversations.post_visitor_message(cid, "c3", "three", count=use(60.5))
    with pytest.raises(LimitReached):
        await conversations.post_visitor_message(cid, "c4", "four", count=use(60.6))
    stored = await conversations.messages_after(cid, 0)
    assert [(m.seq, m.text, m.author.name) for m in stored] == [
        (1, "one", "Ann"),
        (2, "two", "Ann"),
        (3, "three", "Ann"),
    ]


async def test_a_visitor_who_gave_no_name_writes_as_visitor(db: Database) -> None:
    conversations, _ = _core(db, RecordingEndpoint())
    new = await conversations.start(
        "acme", visitor=Visitor(None), topic=None, page=None, locale=None, timezone=None, client_address=None
    )
    # the first line of a chat nobody answered yet, and the next (on PostgreSQL one database call)
    first, _ = await conversations.post_visitor_message(new.conversation.id, "c1", "hello")
    second, _ = await conversations.post_visitor_message(new.conversation.id, "c2", "anyone?")
    stored = await conversations.messages_after(new.conversation.id, 0)
    assert [(m.seq, m.author.name, m.text) for m in stored] == [(1, "Visitor", "hello"), (2, "Visitor", "anyone?")]
    assert (first.author.name, second.author.name) == ("Visitor", "Visitor")


async def first_then_stored_then_resent(
    conversations: Conversations, cid: str, call: Callable[[str], Awaitable[LineOutcome]]
) -> None:
    """What the unit of work's twins for a plain line (PostgreSQL's function, SQLite's calls) do with a
    chat's first lines: ``call(client_msg_id)`` stores a line through the twin."""
    # the place in line is told with the first line, in its transaction: not the twin's to store
    assert (await call("c1")).outcome == "first"
    assert await conversations.messages_after(cid, 0) == []
    await conversations.post_visitor_message(cid, "c1", "hi")
    stored = await call("c2")
    assert (stored.outcome, stored.seq, stored.author, stored.endpoints) == ("stored", 2, "Ann", ("slack",))
    again = await call("c2")
    lines = await conversations.messages_after(cid, 0)
    assert [m.client_msg_id for m in lines] == ["c1", "c2"]
    assert (again.outcome, again.found_id) == ("resent", lines[1].id)


async def test_the_line_function_leaves_a_first_line_to_the_unit_of_work_and_stores_the_next(
    postgres_url: str,
) -> None:
    db = Database(postgres_url)
    await db.migrate()
    try:
        conversations, _ = _core(db, RecordingEndpoint())
        cid = await _start(conversations)

        async def call(client_msg_id: str) -> LineOutcome:
            draft = Draft(cid, Participant(Role.VISITOR, "?"), "hi", utcnow(), "widget", client_msg_id)
            async with db.read() as conn:
                return await store_visitor_line(conn, draft, Line.KIND, None, notify_as="instance-a")

        told: list[str] = []
        listener = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
        await listener.add_listener(CHANNEL, lambda *heard_here: told.append(heard_here[3]))

        await first_then_stored_then_resent(conversations, cid, call)
        # the other instances hear the stored line as they hear a unit of work's (once: not the resend)
        await wait_until(lambda: told, 5, "the line's NOTIFY")
        await listener.close()
        expected = payloads("instance-a", [(cid, NewMessage(2))], wake=True)
        assert [heard(json.loads(p)) for p in told] == [heard(json.loads(p)) for p in expected]
        assert [json.loads(p)["i"] for p in told] == ["instance-a"]
    finally:
        await db.close()


async def test_a_line_for_a_closed_or_unknown_conversation_is_refused_but_a_resend_is_answered(db: Database) -> None:
    conversations, _ = _core(db, RecordingEndpoint())
    cid = await _start(conversations)
    sent, _ = await conversations.post_visitor_message(cid, "c1", "before close")
    assert await conversations.close(cid)
    again, created = await conversations.post_visitor_message(cid, "c1", "before close")
    assert (again.id, created) == (sent.id, False)
    for unknown in (cid, "no-such-conversation"):
        with pytest.raises(ConversationClosed):
            await conversations.post_visitor_message(unknown, "c2", "after close")
    assert [m.text for m in await conversations.messages_after(cid, 0) if m.author.role is Role.VISITOR] == [
        "before close"
    ]


async def _alice_in_the_thread(
    worker: DeliveryWorker, endpoint: RecordingEndpoint
) -> tuple[Callable[[int], MessageReceived], ThreadRef]:
    """Once the conversation's thread is open: Alice's n-th reply in it (an event of its own), and the thread."""
    await wait_until(worker.idle, 10, "the thread opened and recorded")
    thread = ThreadRef(f"C:{endpoint.received[0].delivery_id}")
    alice = Participant(Role.AGENT, "Alice", None, "slack:U1")

    def said(n: int) -> MessageReceived:
        return MessageReceived(EndpointName("slack"), thread, RemoteId(f"e{n}"), alice, f"answer {n}")

    return said, thread


async def test_an_agents_replies_are_stored_once_each_after_one_face_and_a_closed_chat_takes_none(
    db: Database,
) -> None:
    endpoint = RecordingEndpoint()
    conversations, worker = _core(db, endpoint)
    runner = asyncio.create_task(worker.run())
    try:
        new = await conversations.start(
            "acme",
            visitor=Visitor("Ann", "ann@example.org"),
            topic=None,
            page=None,
            locale=None,
            timezone=None,
            client_address=None,
        )
        cid = new.conversation.id
        await conversations.post_visitor_message(cid, "c1", "hello?")
        said, thread = await _alice_in_the_thread(worker, endpoint)
        # on PostgreSQL the first two take the unit of work (the face, then learning that Alice was seen);
        # the others one database call each
        for n in range(4):
            assert await conversations.handle(said(n))
        assert await conversations.handle(said(2))  # a retry of an event: recorded already
        assert conversations.core.threads[("slack", thread)] == cid
        stored = [(m.author.role, m.author.name, m.text) for m in await conversations.messages_after(cid, 0)]
        assert stored == [
            (Role.VISITOR, "Ann", "hello?"),
            (Role.SYSTEM, "Alice", "Alice joined the chat"),
            *((Role.AGENT, "Alice", f"answer {n}") for n in range(4)),
        ]
        assert [m.seq for m in await conversations.messages_after(cid, 0)] == list(range(1, 7))
        async with db.read() as conn:
            row = (
                await conn.execute(
                    select(conversation.c.awaiting_reply_since, conversation.c.follow_up_since).where(
                        conversation.c.id == cid
                    )
                )
            ).one()
        assert row.awaiting_reply_since is None and row.follow_up_since is not None  # she left an address
        assert await conversations.close(cid)
        assert await conversations.handle(said(9))  # told it is closed, not stored
        assert [m.author.role for m in await conversations.messages_after(cid, 6) if m.author.role is Role.AGENT] == []
    finally:
        runner.cancel()


class Answers(NoObserver):
    """What the metrics are told of the agents' replies."""

    def __init__(self) -> None:
        self.to_visitor: list[str] = []
        self.first: list[tuple[str, float]] = []

    def message_to_visitor(self, endpoint: str) -> None:
        self.to_visitor.append(endpoint)

    def first_response(self, site: str, seconds: float) -> None:
        self.first.append((site, seconds))


async def test_the_first_response_is_counted_once_even_after_the_agent_spoke_first(db: Database) -> None:
    endpoint = RecordingEndpoint()
    conversations, worker = _core(db, endpoint)
    conversations.core.observer = answers = Answers()
    runner = asyncio.create_task(worker.run())
    try:
        cid = await _start(conversations)
        said, _ = await _alice_in_the_thread(worker, endpoint)
        # Alice speaks first (her face, then known: on PostgreSQL the next replies are one call each)
        for n in range(2):
            assert await conversations.handle(said(n))
        await conversations.post_visitor_message(cid, "c1", "hello?")
        for n in range(2, 4):  # the first answer to the visitor, then one more
            assert await conversations.handle(said(n))
        assert answers.to_visitor == ["slack"] * 4
        assert [site for site, _ in answers.first] == ["acme"] and 0 <= answers.first[0][1] < 60
    finally:
        runner.cancel()


async def test_tokens_authorize_only_their_conversation(db: Database) -> None:
    conversations, _ = _core(db, RecordingEndpoint())
    a = await conversations.start(
        "acme", visitor=Visitor("A"), topic=None, page=None, locale=None, timezone=None, client_address=None
    )
    b = await conversations.start(
        "acme", visitor=Visitor("B"), topic=None, page=None, locale=None, timezone=None, client_address=None
    )
    assert (await conversations.authorize(a.conversation.id, a.token)).id == a.conversation.id  # type: ignore[union-attr]
    assert await conversations.authorize(a.conversation.id, b.token) is None
    assert await conversations.authorize("no-such-id", a.token) is None


async def test_outbox_delivers_in_order_through_failures_and_close_comes_last(db: Database) -> None:
    endpoint = RecordingEndpoint()
    conversations, worker = _core(db, endpoint)
    runner = asyncio.create_task(worker.run())
    try:
        cid = await _start(conversations)
        endpoint.failures = 3
        for i in range(5):
            await conversations.post_visitor_message(cid, f"c{i}", f"line {i}")
        assert await conversations.close(cid)
        assert not await conversations.close(cid)  # closing twice: one transcript
        await wait_until(worker.idle, 10, "the outbox to drain")
        kinds = [type(o.what) for o in endpoint.received]
        assert kinds == [OpenThread, *[Line] * 5, Transcript, RootState]
        assert [o.what.message.text for o in endpoint.received if isinstance(o.what, Line)] == [
            f"line {i}" for i in range(5)
        ]
        last = endpoint.received[6].what
        assert isinstance(last, Transcript)
        transcript = last.text
        assert all(f"line {i}" in transcript for i in range(5))
        assert all(o.thread == ThreadRef(f"C:{endpoint.received[0].delivery_id}") for o in endpoint.received[1:])
        try:
            await conversations.post_visitor_message(cid, "late", "after close")
            raise AssertionError("a closed conversation took a message")
        except ConversationClosed:
            pass
    finally:
        runner.cancel()


async def test_pending_deliveries_survive_a_restart(db: Database, database_url: str) -> None:
    endpoint = RecordingEndpoint()
    conversations, _ = _core(db, endpoint)  # no worker running: as if the process died after the commit
    cid = await _start(conversations)
    await conversations.post_visitor_message(cid, "c1", "kept")
    later = Database(database_url)
    try:
        _, worker2 = _core(later, endpoint)
        runner = asyncio.create_task(worker2.run())
        await wait_until(worker2.idle, 10, "the outbox to drain after restart")
        runner.cancel()
        assert [type(o.what) for o in endpoint.received] == [OpenThread, Line]
        line = endpoint.received[1].what
        assert isinstance(line, Line) and line.message.text == "kept"
    finally:
        await later.close()


class BatchingEndpoint(RecordingEndpoint):
    """Takes several deliveries at once, and refuses a line whose thread is not known yet, as Slack's and
    Matrix's senders do."""

    max_batch = 20

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[type]] = []

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        self.batches.append([type(o.what) for o in batch])
        sent: list[Sent] = []
        for item in batch:
            if isinstance(item.what, OpenThread):
                sent.append(
                    Sent(item.delivery_id, RemoteId(f"r{item.delivery_id}"), ThreadRef(f"C:{item.delivery_id}"))
                )
            elif item.thread is None:
                raise RetryLater("the thread's root is not posted yet", sent=sent)
            else:
                self.received.append(item)
                sent.append(Sent(item.delivery_id, RemoteId(f"r{item.delivery_id}")))
        return sent


async def test_lines_queued_behind_a_root_go_into_its_thread_without_waiting_out_a_retry(db: Database) -> None:
    """A visitor quicker than the root's post: their lines go out in the batch after the root, in its
    thread — never in the root's batch, where they would have no thread yet and be postponed."""
    endpoint = BatchingEndpoint()
    conversations, worker = _core(db, endpoint)
    cid = await _start(conversations)
    for i in range(3):
        await conversations.post_visitor_message(cid, f"c{i}", f"line {i}")
    runner = asyncio.create_task(worker.run())
    try:
        await wait_until(worker.idle, 10, "the outbox to drain")
        assert endpoint.batches == [[OpenThread], [Line, Line, Line]]
        assert [o.thread for o in endpoint.received] == [endpoint.received[0].thread] * 3
        assert endpoint.received[0].thread is not None
    finally:
        runner.cancel()


async def test_timers_close_idle_conversations_once(db: Database) -> None:
    from bridge.lifecycle import Timers

    conversations, _ = _core(db, RecordingEndpoint())
    cid = await _start(conversations)
    future = utcnow() + timedelta(minutes=31)
    timers = [
        Timers(
            conversations, inactivity=timedelta(minutes=30), first_response=timedelta(seconds=60), clock=lambda: future
        )
        for _ in range(2)
    ]
    await asyncio.gather(*(t.fire_due() for t in timers))  # two instances' timers racing
    conv = await conversations.get(cid)
    assert conv is not None and conv.status.value == "closed"
    from bridge.store import outbox

    async with db.read() as conn:
        assert await outbox.pending_count(conn) == 3  # open_thread, one transcript, one root update


async def test_a_line_sent_during_a_transfer_goes_to_the_threads_the_transfer_left(db: Database) -> None:
    """The line waits for the conversation's lock while a transfer relinks its threads; once it has the
    lock it must see the new threads, not the ones it would have read before it waited."""
    conversations, _ = _core(db, RecordingEndpoint())
    cid = await _start(conversations)  # a thread on Slack
    async with db.write() as conn:  # what `!transfer` does, holding the conversation's lock
        await q.lock_conversation(conn, cid)
        sending = asyncio.create_task(conversations.post_visitor_message(cid, "c1", "while they transfer"))
        if not db.is_sqlite:  # the line's transaction is waiting for the lock before the threads change
            await wait_for_a_lock_wait(db.url, "the line waiting for the conversation's lock")
        await q.relink_threads(conn, cid, {"matrix": "!support:example.org"})
    message, _ = await sending
    async with db.read() as conn:
        endpoints = (await conn.execute(select(delivery.c.endpoint).where(delivery.c.message_id == message.id))).all()
    assert [e for (e,) in endpoints] == ["matrix"]


class CombiningEndpoint(RecordingEndpoint):
    """Posts a batch of lines as one post (as Slack's combining does); can have one delivery erased while
    its batch is on its way (``erase_during_send``: the line's text)."""

    max_batch = 10

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self.erase_during_send: str | None = None

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        self.received.extend(batch)
        if isinstance(batch[0].what, OpenThread):
            return [Sent(batch[0].delivery_id, RemoteId("root-post"), ThreadRef("C:root"))]
        for o in batch:
            if isinstance(o.what, Line) and o.what.message.text == self.erase_during_send:
                async with self.db.write() as conn:  # what retention or `sitechat forget` does to it
                    await conn.execute(delete(delivery).where(delivery.c.id == o.delivery_id))
        post = RemoteId(f"post-{len(self.received)}")
        return [Sent(o.delivery_id, post) for o in batch]


async def test_a_combined_post_is_its_first_lines_copy_and_a_post_for_an_erased_line_is_taken_back(
    db: Database,
) -> None:
    """What a batch's sends became is recorded the same on every backend (PostgreSQL in one statement): each
    delivery done with its post, the post remembered once as the first line's copy (its echo is never a
    reply), and a post made for a delivery erased meanwhile queued for removal."""
    endpoint = CombiningEndpoint(db)
    conversations, worker = _core(db, endpoint)
    cid = await _start(conversations)
    lines = [(await conversations.post_visitor_message(cid, f"c{i}", f"line {i}"))[0] for i in range(4)]
    endpoint.erase_during_send = "line 3"
    runner = asyncio.create_task(worker.run())
    try:

        async def taken_back() -> bool:
            return any(isinstance(o.what, Erase) for o in endpoint.received)

        await wait_until(taken_back, 10, "the erased line's post to be taken back")
        await wait_until(worker.idle, 10, "the outbox to drain")
    finally:
        runner.cancel()
    assert [type(o.what) for o in endpoint.received[:5]] == [OpenThread, *[Line] * 4]  # the lines in one batch
    post = RemoteId("post-5")
    erased = [o.what for o in endpoint.received if isinstance(o.what, Erase)]
    assert [e.copy for e in erased] == [post]
    async with db.read() as conn:
        done = (
            await conn.execute(
                select(delivery.c.message_id, delivery.c.remote_id, delivery.c.in_doubt)
                .where(delivery.c.conversation_id == cid, delivery.c.kind == "message")
                .order_by(delivery.c.id)
            )
        ).all()
        copies = (
            await conn.execute(
                select(message_link.c.remote_id, message_link.c.message_id).order_by(message_link.c.remote_id)
            )
        ).all()
    assert [tuple(r) for r in done] == [(m.id, post, False) for m in lines[:3]]
    assert (post, lines[0].id) in [tuple(r) for r in copies]
    assert [r for r in copies if r.remote_id == post] == [(post, lines[0].id)]
