"""Queries of the team desk (``bridge/team_desk.py``): the open conversations with their threads, and the
sites an agent set away — kept in the database, so that every instance answers the widget alike."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Status, ThreadRef
from bridge.store.conversations import utc
from bridge.store.tables import conversation, site_presence, thread_link


@dataclass(frozen=True)
class OpenRow:
    id: str
    site_id: str
    topic: str | None
    visitor_name: str | None
    created_at: datetime
    awaiting_reply_since: datetime | None
    claimed_by: str | None
    threads: dict[str, ThreadRef]


@dataclass(frozen=True)
class Presence:
    away: bool
    set_by: str
    set_at: datetime


_open_chats = and_(conversation.c.status == Status.OPEN.value, conversation.c.kind == "chat")


async def open_conversations(conn: AsyncConnection, limit: int) -> tuple[list[OpenRow], int]:
    """The oldest ``limit`` open conversations with their threads, and how many are open in all."""
    total = int((await conn.execute(select(func.count()).where(_open_chats))).scalar_one())
    rows = (
        await conn.execute(
            select(
                conversation.c.id,
                conversation.c.site_id,
                conversation.c.topic,
                conversation.c.visitor_name,
                conversation.c.created_at,
                conversation.c.awaiting_reply_since,
                conversation.c.claimed_by,
            )
            .where(_open_chats)
            .order_by(conversation.c.created_at, conversation.c.id)
            .limit(limit)
        )
    ).all()
    threads: dict[str, dict[str, ThreadRef]] = defaultdict(dict)
    if rows:
        links = await conn.execute(
            select(thread_link.c.conversation_id, thread_link.c.endpoint, thread_link.c.thread_ref).where(
                and_(thread_link.c.conversation_id.in_([r.id for r in rows]), thread_link.c.thread_ref.is_not(None))
            )
        )
        for link in links:
            threads[link.conversation_id][link.endpoint] = ThreadRef(link.thread_ref)
    found = [
        OpenRow(
            r.id,
            r.site_id,
            r.topic,
            r.visitor_name,
            utc(r.created_at),
            utc(r.awaiting_reply_since),
            r.claimed_by,
            dict(threads[r.id]),
        )
        for r in rows
    ]
    return found, total


async def presence(conn: AsyncConnection) -> dict[str, Presence]:
    """Every site someone set away or back, by id."""
    rows = await conn.execute(select(site_presence))
    return {r.site_id: Presence(bool(r.away), r.set_by, utc(r.set_at)) for r in rows}


async def is_away(conn: AsyncConnection, site_id: str) -> bool:
    found = await conn.execute(select(site_presence.c.away).where(site_presence.c.site_id == site_id))
    return bool(found.scalar())


async def set_presence(conn: AsyncConnection, site_id: str, away: bool, by: str, now: datetime) -> None:
    """Away or back, by whom: the last word wins (also when two instances are told at once)."""
    values = {"away": away, "set_by": by[:200], "set_at": now}
    changed = await conn.execute(update(site_presence).where(site_presence.c.site_id == site_id).values(**values))
    if changed.rowcount:
        return
    try:
        async with conn.begin_nested():
            await conn.execute(insert(site_presence).values(site_id=site_id, **values))
    except IntegrityError:  # another instance inserted it first: ours is the later word
        await conn.execute(update(site_presence).where(site_presence.c.site_id == site_id).values(**values))
