"""Erasure's SQL: which conversations go, every post the bridge made for them, and deleting their rows.

A conversation's copies in team chat are found in what the outbox recorded: each sent delivery's
``remote_id`` and ``remote_parts`` (the bridge's own posts, never a person's), and the roots of every
thread it ever had (``message_link`` rows ``root:{ref}``). Each copy is addressed to the thread it is
in — a transfer moves a conversation to a new thread, and Matrix needs the room to redact an event.

The rows then go from every table: the ones that point at the conversation or its messages (found
through the schema's foreign keys, so a table added later goes too), its deliveries, and the
conversation itself. The erasure deliveries live on lanes of their own (``erased-…``), which outlive
the conversation and carry nothing of it but the posts' remote ids.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from encodings import idna
from typing import Any

from sqlalchemy import Table, Text, and_, cast, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Conversation, ConversationId, Status, Visitor
from bridge.store import attachments
from bridge.store.tables import conversation, delivery, message, message_link, metadata, rate_hit, thread_link

#: erasure lanes' ids start with this (``delivery.conversation_id``): no conversation has such an id
LANE_PREFIX = "erased-"
#: the lanes of posts into a channel or room itself, in no conversation (the weekly report)
POSTS_PREFIX = "posted-"
#: how ``remember_root`` keys a thread's root in ``message_link``
ROOT_PREFIX = "root:"
#: the kind of the delivery that posts a thread's root (``bridge.outbound.OpenThread.KIND``)
OPEN_THREAD = "open_thread"


@dataclass(frozen=True)
class Copy:
    """One post of the bridge's in a team chat: ``remote_id`` None is the root of ``thread``."""

    endpoint: str
    remote_id: str | None
    destination: str
    thread: str


def new_lane() -> str:
    return LANE_PREFIX + secrets.token_hex(8)


def lane_conversation(lane_id: str, now: datetime) -> Conversation | None:
    """What the deliveries of a lane that is no conversation's go out as — an erasure's (its conversation is
    gone), a report's (``POSTS_PREFIX``): a conversation with nothing in it."""
    if not lane_id.startswith((LANE_PREFIX, POSTS_PREFIX)):
        return None
    return Conversation(ConversationId(lane_id), "", None, Status.CLOSED, Visitor(), now, now, kind="erased")


def address_forms(email: str) -> set[str]:
    """The ways an address may be stored: as given, and with its domain in ASCII (IDNA), lower case."""
    address = email.strip().lower()
    forms = {address}
    local, at, domain = address.rpartition("@")
    if at and domain:
        try:
            forms.add(f"{local}@{b'.'.join(idna.ToASCII(label) for label in domain.split('.')).decode()}")
        except UnicodeError:
            pass
    return forms


async def conversations_of(conn: AsyncConnection, email: str) -> list[str]:
    """The conversations of the person with this address: theirs, and any whose transcript was mailed to it."""
    forms = address_forms(email)
    ids = set(
        (await conn.execute(select(conversation.c.id).where(func.lower(conversation.c.visitor_email).in_(forms))))
        .scalars()
        .all()
    )
    # a transcript requested to this address (the visitor may not have given it at the start)
    mailed = select(delivery.c.conversation_id, delivery.c.payload).where(
        and_(delivery.c.endpoint == "email", or_(*(_contains(delivery.c.payload, f) for f in forms)))
    )
    for row in await conn.execute(mailed):
        if str((row.payload or {}).get("to", "")).lower() in forms:
            ids.add(row.conversation_id)
    return sorted(ids)


def _contains(column: Any, text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(cast(column, Text)).like(f"%{escaped}%", escape="\\")


async def closed_before(conn: AsyncConnection, cutoff: datetime, limit: int, *, skip_locked: bool) -> list[str]:
    """Up to ``limit`` conversations closed before ``cutoff``, locked for this transaction (another
    instance's retention skips them: each is erased once)."""
    query = (
        select(conversation.c.id)
        .where(and_(conversation.c.status == Status.CLOSED.value, conversation.c.closed_at < cutoff))
        .order_by(conversation.c.closed_at)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return list((await conn.execute(query)).scalars().all())


async def lock(conn: AsyncConnection, cids: Sequence[str]) -> list[str]:
    """The ones still there, locked until the transaction ends (a concurrent erasure waits, then finds none)."""
    query = select(conversation.c.id).where(conversation.c.id.in_(cids)).with_for_update()
    return list((await conn.execute(query)).scalars().all())


async def copies_of(conn: AsyncConnection, cid: str) -> list[Copy]:
    """Every post the bridge made for the conversation, per endpoint, each with the thread it is in;
    replies before their root (a root goes last, so a thread never shows a deleted parent)."""
    links = {
        r.endpoint: (r.destination, r.thread_ref)
        for r in await conn.execute(select(thread_link).where(thread_link.c.conversation_id == cid))
    }
    roots: dict[str, list[str]] = {}
    for r in await conn.execute(
        select(message_link.c.endpoint, message_link.c.remote_id)
        .where(and_(message_link.c.conversation_id == cid, message_link.c.remote_id.startswith(ROOT_PREFIX)))
        .order_by(message_link.c.created_at)
    ):
        roots.setdefault(r.endpoint, []).append(r.remote_id.removeprefix(ROOT_PREFIX))
    for endpoint, (_, ref) in links.items():
        if ref and ref not in roots.get(endpoint, []):
            roots.setdefault(endpoint, []).append(ref)
    rows = (await conn.execute(select(delivery).where(delivery.c.conversation_id == cid).order_by(delivery.c.id))).all()

    copies: list[Copy] = []
    for endpoint in sorted({r.endpoint for r in rows} | set(roots)):
        mine = [r for r in rows if r.endpoint == endpoint]
        known = roots.get(endpoint, [])
        link_destination, link_ref = links.get(endpoint, ("", None))
        # where each thread is (a transfer's old thread: its readdressed deliveries say)
        destination_of = {ref: str((r.payload or {}).get("destination", "")) for r in mine for ref in _addressed(r)}
        if link_ref:
            destination_of[link_ref] = link_destination
        current: str | None = None
        replies: list[Copy] = []
        for r in mine:
            if r.kind == OPEN_THREAD and r.remote_id:
                current = next((ref for ref in known if _is_root_of(ref, r.remote_id)), current)
                continue
            where = next(iter(_addressed(r)), None) or current or link_ref
            if not r.done or where is None:
                continue
            for remote in [r.remote_id, *(r.remote_parts or ())]:
                if remote:
                    replies.append(Copy(endpoint, str(remote), destination_of.get(where, link_destination), where))
        copies.extend(_unique(replies))
        copies.extend(Copy(endpoint, None, destination_of.get(ref, link_destination), ref) for ref in known)
    return copies


def _addressed(row: Any) -> list[str]:
    thread = (row.payload or {}).get("thread")
    return [str(thread)] if thread else []


def _is_root_of(ref: str, remote_id: str) -> bool:
    """A thread ref names its root post: on Slack it is the post's id, on Matrix it ends with the event id."""
    return ref == remote_id or ref.endswith(remote_id)


def _unique(copies: list[Copy]) -> list[Copy]:
    """Lines combined into one post share its id: it is removed once."""
    seen: set[tuple[str, str | None]] = set()
    result = []
    for c in copies:
        if (c.endpoint, c.remote_id) not in seen:
            seen.add((c.endpoint, c.remote_id))
            result.append(c)
    return result


async def delete_conversations(conn: AsyncConnection, cids: Sequence[str]) -> int:
    """Every row of these conversations, in every table; how many conversations were deleted."""
    if not cids:
        return 0
    messages = select(message.c.id).where(message.c.conversation_id.in_(cids)).scalar_subquery()
    # files: their bytes point at the file, not at the conversation (and a file may not be sent yet)
    await attachments.discard(conn, await attachments.of_conversations(conn, cids))
    await conn.execute(delete(delivery).where(delivery.c.conversation_id.in_(cids)))
    # per-conversation abuse counters are keyed by the conversation's id
    await conn.execute(delete(rate_hit).where(rate_hit.c.key.in_(cids)))
    for table in _referring_tables():
        for column in table.columns:
            targets = {fk.column.table.name for fk in column.foreign_keys}
            if "message" in targets:
                await conn.execute(delete(table).where(column.in_(messages)))
            elif "conversation" in targets:
                await conn.execute(delete(table).where(column.in_(cids)))
    result = await conn.execute(delete(conversation).where(conversation.c.id.in_(cids)))
    return int(result.rowcount or 0)


def _referring_tables() -> list[Table]:
    """Tables pointing at a conversation or a message, those that point at the others' rows first."""
    wanted = {"conversation", "message"}
    ordered = [t for t in reversed(metadata.sorted_tables) if t.name not in wanted]
    return [t for t in ordered if any(fk.column.table.name in wanted for fk in t.foreign_keys)] + [message]


async def purge_erasure_lanes(conn: AsyncConnection, done_before: datetime) -> int:
    """Erasure deliveries sent before ``done_before``: nothing is left to remember about them."""
    result = await conn.execute(
        delete(delivery).where(
            and_(
                or_(
                    delivery.c.conversation_id.startswith(LANE_PREFIX),
                    delivery.c.conversation_id.startswith(POSTS_PREFIX),
                ),
                delivery.c.done.is_(True),
                delivery.c.done_at < done_before,
            )
        )
    )
    return int(result.rowcount or 0)
