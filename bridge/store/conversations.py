"""Queries on conversations, messages, thread and message links. Each takes the caller's connection."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, overload

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import (
    Attachment,
    ClientFacts,
    Conversation,
    ConversationId,
    Message,
    PageView,
    Participant,
    Returning,
    Role,
    Status,
    ThreadRef,
    Visitor,
)
from bridge.store.message_links import remember_remote
from bridge.store.tables import conversation, message, message_link, thread_link

# The statements every message runs, built once: building one and keying it for SQLAlchemy's compiled
# cache costs more CPU than SQLite takes to run it (bench/cpu_per_message.py)
_NOW = bindparam("now", type_=conversation.c.last_activity_at.type)
_GET_CONVERSATION = select(conversation).where(conversation.c.id == bindparam("cid"))
_LOCK_CONVERSATION = _GET_CONVERSATION.with_for_update()
#: messages a socket catching up takes at once
MESSAGES_AFTER = 1000
_MESSAGES_AFTER = (
    select(message)
    .where(message.c.conversation_id == bindparam("cid"), message.c.seq > bindparam("after"))
    .order_by(message.c.seq)
    .limit(bindparam("limit"))
)
_NEXT_SEQ = (
    update(conversation)
    .where(conversation.c.id == bindparam("cid"))
    .values(last_seq=conversation.c.last_seq + 1)
    .returning(conversation.c.last_seq)
)


class Touch(Enum):
    """What a message changes on its conversation besides its seq, in the statement that takes the seq."""

    #: a visitor's: the first unanswered one starts the first-response clock; later ones don't reset it
    VISITOR = "visitor"
    #: an agent's reply: nobody waits any more, reminders start over
    AGENT = "agent"
    #: and, for a visitor who gave an address, unseen for a while it goes to them by email
    #: (``bridge/follow_up.py``), unless a mail about earlier replies is pending already
    AGENT_FOLLOW_UP = "agent, follow-up"


_BY_VISITOR = {
    "last_activity_at": _NOW,
    "awaiting_reply_since": func.coalesce(conversation.c.awaiting_reply_since, _NOW),
}
_BY_AGENT = {"last_activity_at": _NOW, "awaiting_reply_since": None, "reminded_at": None}
_NEXT_SEQ_TOUCHING = {
    Touch.VISITOR: _NEXT_SEQ.values(**_BY_VISITOR),
    Touch.AGENT: _NEXT_SEQ.values(**_BY_AGENT),
    Touch.AGENT_FOLLOW_UP: _NEXT_SEQ.values(
        **_BY_AGENT, follow_up_since=func.coalesce(conversation.c.follow_up_since, _NOW)
    ),
}
_INSERT_MESSAGE = insert(message)
_MESSAGE_BY_CLIENT_ID = select(message).where(
    and_(message.c.conversation_id == bindparam("cid"), message.c.client_msg_id == bindparam("client_msg_id"))
)
_THREAD_LINKS = select(thread_link).where(thread_link.c.conversation_id == bindparam("cid"))
#: a conversation with its thread links, a row per link (one row with no link when it has none)
_CONVERSATION_AND_LINKS = (
    select(
        conversation,
        thread_link.c.endpoint.label("link_endpoint"),
        thread_link.c.destination.label("link_destination"),
        thread_link.c.thread_ref.label("link_ref"),
    )
    .outerjoin(thread_link, thread_link.c.conversation_id == conversation.c.id)
    .where(conversation.c.id == bindparam("cid"))
)

#: endpoint → (destination, thread ref once the root exists)
Links = dict[str, tuple[str, ThreadRef | None]]


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; everything we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _conversation(row: Row[Any]) -> Conversation:
    m = row._mapping
    return Conversation(
        id=ConversationId(m["id"]),
        site_id=m["site_id"],
        topic=m["topic"],
        status=Status(m["status"]),
        visitor=Visitor(m["visitor_name"], m["visitor_email"], m["visitor_external_id"], m["visitor_key"]),
        created_at=utc(m["created_at"]),
        last_activity_at=utc(m["last_activity_at"]),
        locale=m["locale"],
        timezone=m["timezone"],
        client_address=m["client_address"],
        pages=tuple(PageView(p["url"], p.get("title"), p.get("referrer")) for p in m["pages"] or ()),
        claimed_by=m["claimed_by"],
        closed_at=utc(m["closed_at"]),
        rating_score=m["rating_score"],
        rating_comment=m["rating_comment"],
        kind=m["kind"],
        user_agent=m["user_agent"],
        client=ClientFacts.stored(m["client_facts"]),
        language=m["language"] or "en",
        greeted_at=utc(m["greeted_at"]),
        team_read_seq=m["team_read_seq"] or 0,
        returning=Returning.from_stored(m["returning_chats"]),
        awaiting_reply_since=utc(m["awaiting_reply_since"]),
    )


def _message(row: Row[Any]) -> Message:
    return message_of(row._mapping)


def message_of(m: Mapping[Any, Any]) -> Message:
    """A message from its row's columns by name."""
    return Message(
        id=m["id"],
        conversation_id=ConversationId(m["conversation_id"]),
        seq=m["seq"],
        author=Participant(Role(m["role"]), m["author_name"], m["author_avatar_url"], m["author_remote_id"]),
        text="" if m["deleted"] else m["text"],
        created_at=utc(m["created_at"]),
        client_msg_id=m["client_msg_id"],
        edited_at=utc(m["edited_at"]),
        deleted=bool(m["deleted"]),
        origin=m["origin"],
        html=None if m["deleted"] else m["html"],
        attachments=() if m["deleted"] else Attachment.from_stored(m["attachments"]),
    )


async def get_conversation(conn: AsyncConnection, cid: str) -> Conversation | None:
    row = (await conn.execute(_GET_CONVERSATION, {"cid": cid})).first()
    return _conversation(row) if row else None


async def conversation_and_links(
    conn: AsyncConnection, cid: str, *, lock: bool = False
) -> tuple[Conversation | None, Links]:
    """The conversation (None if it is gone) and its thread links; ``lock``: as ``lock_conversation`` does.
    One statement, but where a lock is taken (PostgreSQL): there a statement that waits for the row lock
    reads the other tables as they were before it waited, and a transfer that held the lock may just have
    relinked the threads. (SQLite's single writer is the lock: nobody changed anything meanwhile.)"""
    if lock and conn.dialect.name == "postgresql":
        conv = await lock_conversation(conn, cid)
        return conv, await thread_links(conn, cid) if conv is not None else {}
    rows = (await conn.execute(_CONVERSATION_AND_LINKS, {"cid": cid})).all()
    if not rows:
        return None, {}
    links = {
        r.link_endpoint: (r.link_destination, ThreadRef(r.link_ref) if r.link_ref else None)
        for r in rows
        if r.link_endpoint is not None
    }
    return _conversation(rows[0]), links


async def lock_conversation(conn: AsyncConnection, cid: str) -> Conversation | None:
    """Read and lock the row for this transaction (PostgreSQL); SQLite's single writer is the lock there."""
    row = (await conn.execute(_LOCK_CONVERSATION, {"cid": cid})).first()
    return _conversation(row) if row else None


async def token_hash_of(conn: AsyncConnection, cid: str) -> str | None:
    return (await conn.execute(select(conversation.c.token_hash).where(conversation.c.id == cid))).scalar_one_or_none()


async def conversation_and_token(conn: AsyncConnection, cid: str) -> tuple[Conversation, str] | None:
    """The conversation and the hash of its token, in one statement."""
    row = (await conn.execute(_GET_CONVERSATION, {"cid": cid})).first()
    return (_conversation(row), row.token_hash) if row else None


async def insert_conversation(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(conversation).values(**values))


async def relink_threads(conn: AsyncConnection, cid: str, destinations: Mapping[str, str]) -> None:
    await conn.execute(delete(thread_link).where(thread_link.c.conversation_id == cid))
    for endpoint, destination in destinations.items():
        await link_thread(conn, cid, endpoint, destination)


async def set_fields(conn: AsyncConnection, cid: str, **values: Any) -> None:
    await conn.execute(update(conversation).where(conversation.c.id == cid).values(**values))


async def close_if_open(conn: AsyncConnection, cid: str, now: datetime) -> bool:
    """Close once: of several closers (visitor, button, timer on another instance) exactly one wins."""
    result = await conn.execute(
        update(conversation)
        .where(and_(conversation.c.id == cid, conversation.c.status == Status.OPEN.value))
        .values(status=Status.CLOSED.value, closed_at=now, last_activity_at=now, awaiting_reply_since=None)
    )
    return bool(result.rowcount)


async def rate_if_unrated(conn: AsyncConnection, cid: str, score: int, comment: str | None, now: datetime) -> bool:
    result = await conn.execute(
        update(conversation)
        .where(
            and_(
                conversation.c.id == cid,
                conversation.c.status == Status.CLOSED.value,
                conversation.c.rating_score.is_(None),
            )
        )
        .values(rating_score=score, rating_comment=comment, rated_at=now)
    )
    return bool(result.rowcount)


async def next_seq(conn: AsyncConnection, cid: str, touch: Touch | None = None, now: datetime | None = None) -> int:
    """Take the next ``seq``: one atomic UPDATE, which also locks the row on PostgreSQL; ``touch``: what
    else the message changes on the conversation (at ``now``), in the same statement."""
    if touch is None:
        result = await conn.execute(_NEXT_SEQ, {"cid": cid})
    else:
        result = await conn.execute(_NEXT_SEQ_TOUCHING[touch], {"cid": cid, "now": now})
    return int(result.scalar_one())


async def insert_message(
    conn: AsyncConnection,
    cid: str,
    author: Participant,
    text: str,
    now: datetime,
    *,
    origin: str,
    client_msg_id: str | None = None,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    touch: Touch | None = None,
) -> Message:
    """``touch``: what else the message changes on its conversation (``Touch``)."""
    seq = await next_seq(conn, cid, touch, now)
    mid = uuid.uuid4().hex
    row: dict[str, Any] = {
        "id": mid,
        "conversation_id": cid,
        "seq": seq,
        "role": author.role.value,
        "author_name": author.name,
        "author_avatar_url": author.avatar_url,
        "author_remote_id": author.remote_id,
        "text": text,
        "client_msg_id": client_msg_id,
        "origin": origin,
        "created_at": now,
        "deleted": False,
        "html": html,
    }
    if attachments:  # left out, it is SQL NULL (a None parameter would be JSON's ``null``)
        row["attachments"] = [a.stored() for a in attachments]
    await conn.execute(_INSERT_MESSAGE, row)
    return Message(
        mid,
        ConversationId(cid),
        seq,
        author,
        text,
        now,
        client_msg_id,
        origin=origin,
        html=html,
        attachments=tuple(attachments),
    )


async def message_by_client_id(conn: AsyncConnection, cid: str, client_msg_id: str) -> Message | None:
    row = (await conn.execute(_MESSAGE_BY_CLIENT_ID, {"cid": cid, "client_msg_id": client_msg_id})).first()
    return _message(row) if row else None


async def get_message(conn: AsyncConnection, mid: str) -> Message | None:
    row = (await conn.execute(select(message).where(message.c.id == mid))).first()
    return _message(row) if row else None


async def messages_after(conn: AsyncConnection, cid: str, after: int, limit: int = MESSAGES_AFTER) -> list[Message]:
    """The first ``limit`` messages after seq ``after`` (a socket catching up takes the rest next)."""
    rows = await conn.execute(_MESSAGES_AFTER, {"cid": cid, "after": after, "limit": limit})
    return [_message(r) for r in rows]


async def link_thread(conn: AsyncConnection, cid: str, endpoint: str, destination: str) -> None:
    await conn.execute(insert(thread_link).values(conversation_id=cid, endpoint=endpoint, destination=destination))


async def set_thread_ref(conn: AsyncConnection, cid: str, endpoint: str, ref: str) -> None:
    await conn.execute(
        update(thread_link)
        .where(and_(thread_link.c.conversation_id == cid, thread_link.c.endpoint == endpoint))
        .values(thread_ref=ref)
    )


async def thread_links(conn: AsyncConnection, cid: str) -> Links:
    """endpoint → (destination, thread ref once the root exists)."""
    rows = await conn.execute(_THREAD_LINKS, {"cid": cid})
    return {r.endpoint: (r.destination, ThreadRef(r.thread_ref) if r.thread_ref else None) for r in rows}


async def conversation_for_thread(conn: AsyncConnection, endpoint: str, ref: str) -> str | None:
    """The conversation whose thread ``ref`` is: its current one, or one it had before (a transfer)."""
    current = (
        await conn.execute(
            select(thread_link.c.conversation_id).where(
                and_(thread_link.c.endpoint == endpoint, thread_link.c.thread_ref == ref)
            )
        )
    ).scalar_one_or_none()
    if current is not None:
        return str(current)
    earlier = await conn.execute(
        select(message_link.c.conversation_id).where(
            and_(message_link.c.endpoint == endpoint, message_link.c.remote_id == _root_key(ref))
        )
    )
    found = earlier.scalar()
    return str(found) if found is not None else None


async def remember_root(conn: AsyncConnection, endpoint: str, ref: str, cid: str, now: datetime) -> None:
    """Every root a conversation ever had on an endpoint (once: a root found again after a crash is no news)."""
    await remember_remote(conn, endpoint, _root_key(ref), now, conversation_id=cid)


def _root_key(ref: str) -> str:
    # roots share message_link with events and posts; the prefix keeps a root's key apart from its post's id
    return f"root:{ref}"


async def edit_message(conn: AsyncConnection, mid: str, text: str, now: datetime, html: str | None = None) -> None:
    await conn.execute(update(message).where(message.c.id == mid).values(text=text, html=html, edited_at=now))


async def delete_message(conn: AsyncConnection, mid: str, now: datetime) -> None:
    await conn.execute(
        update(message).where(message.c.id == mid).values(text="", html=None, deleted=True, edited_at=now)
    )


async def open_conversations_idle_since(conn: AsyncConnection, cutoff: datetime) -> Sequence[str]:
    rows = await conn.execute(
        select(conversation.c.id).where(
            and_(conversation.c.status == Status.OPEN.value, conversation.c.last_activity_at < cutoff)
        )
    )
    return [r.id for r in rows]


async def recently_changed(conn: AsyncConnection, since: datetime) -> Sequence[str]:
    """Conversations with a message, a close or a rating since ``since`` (messages and closes touch
    ``last_activity_at``)."""
    rows = await conn.execute(
        select(conversation.c.id).where(
            and_(
                conversation.c.status.in_([Status.OPEN.value, Status.CLOSED.value]),
                conversation.c.last_activity_at >= since,
            )
        )
    )
    return [r.id for r in rows]
