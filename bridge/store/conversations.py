"""Queries on conversations, messages, thread and message links. Each takes the caller's connection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import and_, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.live import Snapshot
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

# where a message's seq and row are stored (one round trip on PostgreSQL); used through this module too
from bridge.store.new_messages import Touch as Touch
from bridge.store.new_messages import insert_message as insert_message
from bridge.store.tables import conversation, message, message_link, thread_link

# The statements every message runs, built once: building one and keying it for SQLAlchemy's compiled
# cache costs more CPU than SQLite takes to run it (bench/cpu_per_message.py)
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
_GET_MESSAGE = select(message).where(message.c.id == bindparam("mid"))
_THREAD_LINKS = select(thread_link).where(thread_link.c.conversation_id == bindparam("cid"))
#: a thread link's columns as ``links_of`` reads them
LINK_COLUMNS = (
    thread_link.c.endpoint.label("link_endpoint"),
    thread_link.c.destination.label("link_destination"),
    thread_link.c.thread_ref.label("link_ref"),
)
#: the id of the message a visitor's ``client_msg_id`` was stored as, if it was
_EXISTING = (
    select(message.c.id)
    .where(and_(message.c.conversation_id == bindparam("cid"), message.c.client_msg_id == bindparam("client_msg_id")))
    .scalar_subquery()
    .label("existing_id")
)
#: a conversation with the id of its message stored for a ``client_msg_id`` (None: not stored yet)
_CONVERSATION_AND_EXISTING = _GET_CONVERSATION.add_columns(_EXISTING)
_ONLY_EXISTING = select(_EXISTING)

#: the conversation whose thread a ref is: the current one, or (after a transfer) the one whose root it was
_FOR_THREAD_NOW = (
    select(thread_link.c.conversation_id)
    .where(and_(thread_link.c.endpoint == bindparam("endpoint"), thread_link.c.thread_ref == bindparam("ref")))
    .scalar_subquery()
)
_FOR_THREAD_BEFORE = (
    select(message_link.c.conversation_id)
    .where(and_(message_link.c.endpoint == bindparam("endpoint"), message_link.c.remote_id == bindparam("root")))
    .limit(1)
    .scalar_subquery()
)
_FOR_THREAD = select(func.coalesce(_FOR_THREAD_NOW, _FOR_THREAD_BEFORE))
_THREAD_EVENT = select(
    func.coalesce(_FOR_THREAD_NOW, _FOR_THREAD_BEFORE).label("cid"),
    exists()
    .where(and_(message_link.c.endpoint == bindparam("endpoint"), message_link.c.remote_id == bindparam("remote_id")))
    .label("known"),
)
#: the conversation of an event's thread, locked, and whether the event is recorded already
_LOCKED_FOR_EVENT = (
    select(conversation, _THREAD_EVENT.selected_columns.known)
    .where(conversation.c.id == func.coalesce(_FOR_THREAD_NOW, _FOR_THREAD_BEFORE))
    .with_for_update(of=conversation)
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
    return conversation_of(row._mapping)


def conversation_of(m: Mapping[Any, Any]) -> Conversation:
    """A conversation from its row's columns by name."""
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


async def line_context(
    conn: AsyncConnection, cid: str, client_msg_id: str
) -> tuple[Conversation | None, Message | None]:
    """What storing a visitor's line needs, with the conversation locked for the transaction: the
    conversation (None if it is gone), and the message stored for ``client_msg_id`` already (a resend). On
    PostgreSQL two statements, the lock first: a statement that waits for a row lock reads the other tables
    as they were before it waited, and the holder may just have stored the same line. SQLite's single
    writer is the lock there: one statement."""
    params = {"cid": cid, "client_msg_id": client_msg_id}
    if conn.dialect.name == "postgresql":
        conv = await lock_conversation(conn, cid)
        existing = (await conn.execute(_ONLY_EXISTING, params)).scalar() if conv is not None else None
    else:
        row = (await conn.execute(_CONVERSATION_AND_EXISTING, params)).first()
        conv, existing = (_conversation(row), row.existing_id) if row is not None else (None, None)
    return conv, await get_message(conn, existing) if existing is not None else None


def links_of(rows: Sequence[Row[Any]]) -> Links:
    """The thread links in rows that carry them as ``link_endpoint``, ``link_destination``, ``link_ref``
    (a row with no link: ``link_endpoint`` None)."""
    return {
        r.link_endpoint: (r.link_destination, ThreadRef(r.link_ref) if r.link_ref else None)
        for r in rows
        if r.link_endpoint is not None
    }


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


async def get_message(conn: AsyncConnection, mid: str) -> Message | None:
    row = (await conn.execute(_GET_MESSAGE, {"mid": mid})).first()
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
    found = (await conn.execute(_FOR_THREAD, {"endpoint": endpoint, "ref": ref, "root": root_key(ref)})).scalar()
    return str(found) if found is not None else None


async def thread_event(conn: AsyncConnection, endpoint: str, ref: str, remote_id: str) -> tuple[str | None, bool]:
    """For an event in thread ``ref``: its conversation (as ``conversation_for_thread``), and whether the
    event's ``remote_id`` is recorded already (a retry, a replay, our own post) — in one statement."""
    params = {"endpoint": endpoint, "ref": ref, "root": root_key(ref), "remote_id": remote_id}
    row = (await conn.execute(_THREAD_EVENT, params)).one()
    return (str(row.cid) if row.cid is not None else None), bool(row.known)


async def locked_for_event(
    conn: AsyncConnection, endpoint: str, ref: str, remote_id: str
) -> tuple[Conversation, bool] | None:
    """``thread_event`` and ``lock_conversation`` in one statement: the conversation of thread ``ref``,
    locked, and whether the event is recorded already (read before the lock: a concurrent delivery of
    the same event is caught where the event is recorded); None when no conversation has that thread."""
    params = {"endpoint": endpoint, "ref": ref, "root": root_key(ref), "remote_id": remote_id}
    row = (await conn.execute(_LOCKED_FOR_EVENT, params)).first()
    return (_conversation(row), bool(row.known)) if row is not None else None


async def remember_root(conn: AsyncConnection, endpoint: str, ref: str, cid: str, now: datetime) -> None:
    """Every root a conversation ever had on an endpoint (once: a root found again after a crash is no news)."""
    await remember_remote(conn, endpoint, root_key(ref), now, conversation_id=cid)


def root_key(ref: str) -> str:
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


async def recently_changed(conn: AsyncConnection, since: datetime) -> Sequence[tuple[str, Snapshot]]:
    """Conversations with activity since ``since`` (what touches ``last_activity_at``: the chat's own
    lines, a close — not the team's reading, nor a line the bridge adds unasked, such as a reminder's),
    each with what a socket's catch-up compares."""
    c = conversation.c
    rows = await conn.execute(
        select(c.id, c.last_seq, c.status, c.team_read_seq, c.rating_score.is_not(None).label("rated")).where(
            and_(c.status.in_([Status.OPEN.value, Status.CLOSED.value]), c.last_activity_at >= since)
        )
    )
    return [(r.id, Snapshot(r.last_seq, Status(r.status), r.team_read_seq or 0, bool(r.rated))) for r in rows]
