"""Queries of the reminders (``bridge/reminders.py``): who waits for an answer and is due one, and taking a
reminder — or the visitor's one line about it — exactly once, also with several instances polling.

A wait is ``awaiting_reply_since`` (set by the visitor's first unanswered message, cleared by an agent's
reply and by the close). Its reminders are counted in ``reminders_sent`` from the moment ``reminded_at``
is set by the first one; an agent's reply clears ``reminded_at``, so the next wait counts from nothing
whatever ``reminders_sent`` still says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Status
from bridge.store.conversations import utc
from bridge.store.tables import conversation


@dataclass(frozen=True)
class Waiting:
    """A conversation whose visitor waits for an answer, as the reminders see it."""

    id: str
    site_id: str
    visitor_name: str | None
    since: datetime
    #: reminders of this wait so far
    sent: int
    #: when the next one is due (after the first; the first is due ``first`` after ``since``)
    next_at: datetime | None


_open_chat_waiting = and_(
    conversation.c.status == Status.OPEN.value,
    conversation.c.kind == "chat",
    conversation.c.awaiting_reply_since.is_not(None),
)


async def due(conn: AsyncConnection, now: datetime, first: timedelta, most: int) -> list[Waiting]:
    """The waits due a reminder by ``now`` (office hours aside: the caller knows the sites)."""
    if most <= 0:
        return []
    rows = await conn.execute(
        select(
            conversation.c.id,
            conversation.c.site_id,
            conversation.c.visitor_name,
            conversation.c.awaiting_reply_since,
            conversation.c.reminded_at,
            conversation.c.reminders_sent,
            conversation.c.next_reminder_at,
        ).where(
            and_(
                _open_chat_waiting,
                or_(
                    and_(conversation.c.reminded_at.is_(None), conversation.c.awaiting_reply_since <= now - first),
                    and_(
                        conversation.c.reminded_at.is_not(None),
                        conversation.c.reminders_sent < most,
                        conversation.c.next_reminder_at <= now,
                    ),
                ),
            )
        )
    )
    return [
        Waiting(
            r.id,
            r.site_id,
            r.visitor_name,
            utc(r.awaiting_reply_since),
            0 if r.reminded_at is None else int(r.reminders_sent),
            None if r.reminded_at is None else utc(r.next_reminder_at),
        )
        for r in rows
    ]


async def take(conn: AsyncConnection, wait: Waiting, now: datetime, next_at: datetime) -> bool:
    """Take reminder number ``wait.sent + 1`` of this wait: True for exactly one caller across instances,
    and for none once an agent has answered (or the conversation closed) meanwhile."""
    unchanged: ColumnElement[bool]
    if wait.sent == 0:
        unchanged = conversation.c.reminded_at.is_(None)
        values = {"reminded_at": now, "reminders_sent": 1, "next_reminder_at": next_at}
    else:
        unchanged = and_(conversation.c.reminded_at.is_not(None), conversation.c.reminders_sent == wait.sent)
        values = {"reminders_sent": wait.sent + 1, "next_reminder_at": next_at}
    result = await conn.execute(
        update(conversation).where(and_(conversation.c.id == wait.id, _open_chat_waiting, unchanged)).values(**values)
    )
    return bool(result.rowcount)


async def take_telling(conn: AsyncConnection, cid: str, now: datetime) -> bool:
    """Take the visitor's one line that the team knows: once per conversation, and not when the automatic
    greeting has told them so already."""
    result = await conn.execute(
        update(conversation)
        .where(
            and_(
                conversation.c.id == cid,
                conversation.c.waiting_told_at.is_(None),
                conversation.c.greeted_at.is_(None),
            )
        )
        .values(waiting_told_at=now)
    )
    return bool(result.rowcount)
