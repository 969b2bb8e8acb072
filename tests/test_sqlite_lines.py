"""SQLite's hot paths past SQLAlchemy. A visitor's plain line in two calls (bridge/store/sqlite_lines.py):
what it stores is what the unit of work stores, row for row; it leaves what it does not do to the unit of
work (the first line of a chat) and counts a line against the limit only when it is new. A lane's plain
sends recorded in one call (bridge/store/sqlite_sends.py): the rows PostgreSQL's ``record_sends`` makes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.conversations import ConversationClosed, utcnow
from bridge.model import Participant, Role
from bridge.outbound import Line
from bridge.store import outbox, sqlite_lines, sqlite_sends
from bridge.store.database import Database
from bridge.store.limits import SharedLimits
from bridge.store.new_messages import Draft
from bridge.store.tables import conversation, delivery, message, message_link
from bridge.store.visitor_lines import LineOutcome
from tests.test_sqlite_calls import watch_thread_waits
from tests.test_store import RecordingEndpoint, _core, _start, first_then_stored_then_resent


@pytest_asyncio.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    await database.migrate()
    yield database
    await database.close()


class Refusal(Exception):
    pass


async def test_a_line_is_stored_and_queued_as_the_unit_of_work_stores_it(db: Database) -> None:
    conversations, _ = _core(db, RecordingEndpoint())
    cid = await _start(conversations)
    await conversations.post_visitor_message(cid, "c1", "first, by the unit of work")
    await conversations.post_visitor_message(cid, "c2", "by the calls")
    # a use counted in the store takes the unit of work on SQLite too: the same line, the other way
    use = SharedLimits(db).counted_use("messages", cid, 100, 60, utcnow())
    await conversations.post_visitor_message(cid, "c3", "by the unit of work", count=use)
    async with db.read() as conn:
        rows = (await conn.execute(select(message).where(message.c.conversation_id == cid))).mappings().all()
        queued = (await conn.execute(select(delivery).where(delivery.c.message_id.is_not(None)))).mappings().all()
        conv = (await conn.execute(select(conversation).where(conversation.c.id == cid))).mappings().one()
    by_calls, by_work = (_row_but_the_line(r) for r in rows if r["client_msg_id"] in ("c2", "c3"))
    assert by_calls == by_work
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert by_calls["author_name"] == "Ann" and by_calls["role"] == "visitor"
    deliveries = {r["message_id"]: r for r in queued}
    line_of = {r["client_msg_id"]: r["id"] for r in rows}
    assert _delivery_but_ids(deliveries[line_of["c2"]]) == _delivery_but_ids(deliveries[line_of["c3"]])
    assert deliveries[line_of["c2"]]["kind"] == Line.KIND and deliveries[line_of["c2"]]["endpoint"] == "slack"
    # the clock of the first unanswered line kept; the last activity is the last line's
    assert conv["last_seq"] == 3 and conv["last_activity_at"] == rows[2]["created_at"]
    assert conv["awaiting_reply_since"] == rows[0]["created_at"]
    stored = await conversations.messages_after(cid, 1)
    assert [(m.seq, m.text, m.author.name) for m in stored] == [
        (2, "by the calls", "Ann"),
        (3, "by the unit of work", "Ann"),
    ]


def _row_but_the_line(row: Any) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "seq", "text", "client_msg_id", "created_at")}


def _delivery_but_ids(row: Any) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "message_id", "next_attempt_at", "created_at")}


async def test_the_calls_leave_a_first_line_to_the_unit_of_work_and_count_only_a_new_line(db: Database) -> None:
    conversations, _ = _core(db, RecordingEndpoint())
    cid = await _start(conversations)
    admitted: list[str] = []

    async def call(client_msg_id: str, refuse: bool = False) -> LineOutcome:
        async def admit(_conn: AsyncConnection) -> None:
            admitted.append(client_msg_id)
            if refuse:
                raise Refusal

        draft = Draft(cid, Participant(Role.VISITOR, "?"), "hi", utcnow(), "widget", client_msg_id)
        async with db.sqlite_writer() as conn:
            return await sqlite_lines.store_visitor_line(conn, draft, Line.KIND, admit)

    await first_then_stored_then_resent(conversations, cid, call)
    # refused by the limit: nothing stored, the seq not taken
    with pytest.raises(Refusal):
        await call("c3", refuse=True)
    assert (await call("c4")).seq == 3
    assert admitted == ["c2", "c3", "c4"]  # never for the first line nor for the resend
    assert [m.client_msg_id for m in await conversations.messages_after(cid, 0)] == ["c1", "c2", "c4"]
    assert await conversations.close(cid)
    assert (await call("c5")).outcome == "closed"
    assert (await call("c2")).outcome == "resent"  # a resend is answered after close too
    with pytest.raises(ConversationClosed):
        await conversations.post_visitor_message("no-such-conversation", "c6", "hello?")
    assert admitted == ["c2", "c3", "c4"]


async def test_a_chat_nobody_owes_an_answer_yet_is_not_first_after_the_visitors_first_line(db: Database) -> None:
    """An agent answered (no answer owed), and the visitor writes again: not their first line."""
    conversations, _ = _core(db, RecordingEndpoint())
    cid = await _start(conversations)
    await conversations.post_visitor_message(cid, "c1", "hi")
    async with db.write() as conn:
        await conn.execute(conversation.update().where(conversation.c.id == cid).values(awaiting_reply_since=None))
    later = utcnow() + timedelta(seconds=1)
    draft = Draft(cid, Participant(Role.VISITOR, "?"), "still there?", later, "widget", "c2")
    async with db.sqlite_writer() as conn:
        stored = await sqlite_lines.store_visitor_line(conn, draft, Line.KIND, None)
    assert (stored.outcome, stored.seq) == ("stored", 2)
    async with db.read() as conn:
        since = (await conn.execute(select(conversation.c.awaiting_reply_since))).scalar_one()
    assert since is not None and since.replace(tzinfo=None) == later.replace(tzinfo=None)  # the clock starts again


async def test_a_line_cancelled_while_it_waits_for_another_writer_leaves_no_transaction_open(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its first call waits on aiosqlite's thread for another process (``sitechat forget``) and goes on
    there after the cancel: the connection must not go back to the pool with what that call opened."""
    conversations, _ = _core(db, RecordingEndpoint())
    cid = await _start(conversations)
    await conversations.post_visitor_message(cid, "c1", "first")
    waits = watch_thread_waits(monkeypatch)
    other = sqlite3.connect(tmp_path / "sitechat.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    line = asyncio.create_task(conversations.post_visitor_message(cid, "c2", "second"))
    await waits.met_the_lock.wait()
    line.cancel()
    other.execute("ROLLBACK")  # the thread's call gets the lock now, after the cancel
    other.close()
    with pytest.raises(asyncio.CancelledError):
        await line
    assert await asyncio.to_thread(waits.over.wait, 10)
    third = sqlite3.connect(tmp_path / "sitechat.db", isolation_level=None, timeout=0)
    third.execute("BEGIN IMMEDIATE")  # another process can write at once: nothing holds the lock
    third.execute("ROLLBACK")
    third.close()
    again, created = await conversations.post_visitor_message(cid, "c3", "third")
    assert created and [m.client_msg_id for m in await conversations.messages_after(cid, 0)] == ["c1", "c3"]
    assert again.seq == 2


async def test_plain_sends_are_recorded_as_postgresql_records_them(database_url: str) -> None:
    """Two lines combined into one post (the first line's copy), one post the endpoint gave no id, and a
    delivery erased while on its way (not done, no copy)."""
    db = Database(database_url)
    await db.migrate()
    try:
        conversations, _ = _core(db, RecordingEndpoint())
        cid = await _start(conversations)
        lines = [(await conversations.post_visitor_message(cid, f"c{i}", f"line {i}"))[0].id for i in range(3)]
        async with db.read() as conn:
            found = await conn.execute(select(delivery.c.id).where(delivery.c.message_id.in_(lines)).order_by("id"))
            d1, d2, d3 = found.scalars().all()
        sends = [
            outbox.PlainSend(d1, "R1", lines[0]),
            outbox.PlainSend(d2, "R1", lines[1]),
            outbox.PlainSend(d3, None, lines[2]),
            outbox.PlainSend(d3 + 1000, "R9", lines[2]),
        ]
        now = utcnow()
        if db.is_sqlite:
            async with db.sqlite_writer() as conn:
                done = await sqlite_sends.record_sends(conn, "slack", cid, sends, now)
        else:
            async with db.read() as conn:  # in autocommit: the statement is the transaction
                done = await outbox.record_sends(conn, "slack", cid, sends, now)
        assert done == {d1, d2, d3}
        async with db.read() as conn:
            marked = (await conn.execute(select(delivery).where(delivery.c.id.in_(done)).order_by("id"))).mappings()
            copies = (await conn.execute(select(message_link.c.remote_id, message_link.c.message_id))).all()
            rows = [(r["done"], r["remote_id"], r["in_doubt"], r["last_error"], r["remote_parts"]) for r in marked]
            sent_as_one, sent_without_an_id = (True, "R1", False, None, None), (True, None, False, None, None)
            assert rows == [sent_as_one, sent_as_one, sent_without_an_id]
            done_at = (await conn.execute(select(delivery.c.done_at).where(delivery.c.id == d1))).scalar_one()
        assert done_at.replace(tzinfo=None) == now.replace(tzinfo=None)
        assert copies == [("R1", lines[0])]
    finally:
        await db.close()
