"""A line for the conversation's threads: a message stored and queued, in one statement on PostgreSQL.

A visitor's line and an agent's reply are each stored and then queued (a ``message`` delivery) for every
team chat the conversation has a thread on but the one it came from. On PostgreSQL, where a statement is a
round trip, the seq, the message and its deliveries go in one: the thread links are read inside it, after
the caller locked the conversation, so a transfer that relinked the threads meanwhile is seen (a delivery's
``message_id`` names a message of the same statement: PostgreSQL checks the reference at its end).
"""

from __future__ import annotations

from sqlalchemy import bindparam, false, insert, literal, select, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from bridge.model import Message
from bridge.store import outbox
from bridge.store.conversations import thread_links
from bridge.store.new_messages import Draft, Touch, insert_draft, seq_and_insert
from bridge.store.tables import delivery, message, thread_link

_NOW = bindparam("now", type_=delivery.c.created_at.type)
_QUEUED_COLUMNS = [
    "conversation_id",
    "endpoint",
    "kind",
    "message_id",
    "done",
    "attempts",
    "in_doubt",
    "next_attempt_at",
    "created_at",
]


def _stored_and_queued(touch: Touch | None, with_files: bool) -> Select[tuple[int, str | None]]:
    """Rows: the seq with each endpoint queued (one row, endpoint None, when none was)."""
    stored = seq_and_insert(touch, with_files).cte("stored")
    queued = (
        insert(delivery)
        .from_select(
            _QUEUED_COLUMNS,
            select(
                thread_link.c.conversation_id,
                thread_link.c.endpoint,
                bindparam("delivery_kind", type_=delivery.c.kind.type),
                bindparam("m_id", type_=message.c.id.type),
                false(),
                literal(0),
                false(),
                _NOW,
                _NOW,
            )
            .select_from(stored)
            .join(thread_link, thread_link.c.conversation_id == bindparam("cid"))
            .where(thread_link.c.endpoint.is_distinct_from(bindparam("skip", type_=thread_link.c.endpoint.type))),
        )
        .returning(delivery.c.endpoint)
        .cte("queued")
    )
    return select(stored.c.seq, queued.c.endpoint).select_from(stored.outerjoin(queued, true()))


_STORED_AND_QUEUED = {(t, files): _stored_and_queued(t, files) for t in (None, *Touch) for files in (False, True)}


async def insert_line(
    conn: AsyncConnection,
    draft: Draft,
    kind: str,
    *,
    touch: Touch | None = None,
    skip: str | None = None,
) -> tuple[Message, list[str]]:
    """Store ``draft`` (its conversation locked by the caller) and queue it as a ``kind`` delivery for every
    team chat the conversation has a thread on but ``skip``; the message and the endpoints it was queued
    for. ``touch``: what else the message changes on its conversation."""
    if conn.dialect.name != "postgresql":
        msg = await insert_draft(conn, draft, touch)
        endpoints = [e for e in await thread_links(conn, draft.cid) if e != skip]
        for endpoint in endpoints:
            await outbox.enqueue(conn, draft.cid, endpoint, kind, draft.now, message_id=msg.id)
        return msg, endpoints
    # no parameter named for a column of ``conversation``: SQLAlchemy would add it to the UPDATE's SET
    params = draft.params() | {"delivery_kind": kind, "skip": skip}
    rows = (await conn.execute(_STORED_AND_QUEUED[touch, bool(draft.attachments)], params)).all()
    if not rows:
        raise LookupError(f"conversation {draft.cid} is gone")
    return draft.stored(int(rows[0].seq)), [r.endpoint for r in rows if r.endpoint is not None]
