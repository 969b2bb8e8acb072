"""Queries of follow-up mail (``bridge/follow_up.py``): which conversations have an agent's reply the visitor
may not have seen for long enough, taking one exactly once (also with several instances polling one
database), what to mail, and the key the mail's links are signed with.

``follow_up_since`` is set by the first agent reply after nothing was pending (``conversations.Touch``)
and cleared by the instance that takes it; ``followed_up_at`` and ``follow_up_seq`` say when the last
mail went and what it covered, so a wait gets one mail: a later one only once the visitor has been back
(written, or seen a message) since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Message, Role
from bridge.store.conversations import _message, utc
from bridge.store.tables import conversation, message

#: the database key of the key follow-up links and reply addresses are signed with
LINK_KEY = "follow-up:link-key"


@dataclass(frozen=True)
class LastMail:
    """When the conversation's last follow-up went and the last seq it covered (None, 0: none yet)."""

    at: datetime | None
    seq: int


async def due(conn: AsyncConnection, replied_before: datetime) -> list[str]:
    """The conversations whose pending reply is older than ``replied_before``."""
    rows = await conn.execute(
        select(conversation.c.id)
        .where(conversation.c.follow_up_since <= replied_before)
        .order_by(conversation.c.follow_up_since)
    )
    return [str(cid) for (cid,) in rows]


async def take(conn: AsyncConnection, cid: str, replied_before: datetime) -> LastMail | None:
    """Take the pending follow-up: the conversation's last mail for exactly one caller across instances;
    None for every other (and once nothing is pending)."""
    taken = await conn.execute(
        update(conversation)
        .where(and_(conversation.c.id == cid, conversation.c.follow_up_since <= replied_before))
        .values(follow_up_since=None)
    )
    if not taken.rowcount:
        return None
    row = (
        await conn.execute(
            select(conversation.c.followed_up_at, conversation.c.follow_up_seq).where(conversation.c.id == cid)
        )
    ).one()
    return LastMail(utc(row.followed_up_at), int(row.follow_up_seq or 0))


async def unseen_replies(conn: AsyncConnection, cid: str, after_seq: int) -> list[Message]:
    """The agents' messages after ``after_seq`` the visitor has not had on screen, in order."""
    rows = await conn.execute(
        select(message)
        .where(
            and_(
                message.c.conversation_id == cid,
                message.c.seq > after_seq,
                message.c.role == Role.AGENT.value,
                message.c.deleted.is_(False),
                message.c.seen_at.is_(None),
            )
        )
        .order_by(message.c.seq)
    )
    return [_message(r) for r in rows]


async def back_since(conn: AsyncConnection, cid: str, last: LastMail) -> bool:
    """Whether the visitor has been back since the last mail: written (in the widget or by mail), or seen."""
    if last.at is None:
        return True
    wrote = and_(message.c.seq > last.seq, message.c.role == Role.VISITOR.value)
    saw = message.c.seen_at >= last.at
    found = await conn.execute(select(exists().where(and_(message.c.conversation_id == cid, or_(wrote, saw)))))
    return bool(found.scalar())


async def mailed(conn: AsyncConnection, cid: str, now: datetime, seq: int) -> None:
    await conn.execute(
        update(conversation).where(conversation.c.id == cid).values(followed_up_at=now, follow_up_seq=seq)
    )
