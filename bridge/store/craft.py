"""Queries of the conversation craft (CONTRACT §10): who is due a greeting, who waits for a first answer,
and how long a first answer has been taking on a site.

A conversation *waits for a first answer* while its visitor has written and no agent has answered yet:
``awaiting_reply_since`` is set by the visitor's first message and only an agent's reply clears it, so
with no agent message at all it still holds the time of the first one.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Role, Status
from bridge.store.conversations import utc
from bridge.store.stats import FIRST_AGENT_AT, FIRST_VISITOR_AT
from bridge.store.tables import conversation, message

#: how many of a site's latest conversations the estimate of a first answer is taken from
RECENT_CONVERSATIONS = 100

_answered = exists().where(and_(message.c.conversation_id == conversation.c.id, message.c.role == Role.AGENT.value))
_waiting = and_(
    conversation.c.status == Status.OPEN.value,
    conversation.c.kind == "chat",
    conversation.c.awaiting_reply_since.is_not(None),
    ~_answered,
)


async def waiting_ungreeted(
    conn: AsyncConnection, sites: Sequence[str], *, wrote_after: datetime
) -> list[tuple[str, str, datetime]]:
    """(id, site, when the visitor first wrote) of the conversations on ``sites`` that wait for a first
    answer, not greeted, whose visitor first wrote after ``wrote_after``: one query per round of timers."""
    rows = await conn.execute(
        select(conversation.c.id, conversation.c.site_id, conversation.c.awaiting_reply_since).where(
            and_(
                conversation.c.site_id.in_(sites),
                conversation.c.greeted_at.is_(None),
                conversation.c.awaiting_reply_since > wrote_after,
                _waiting,
            )
        )
    )
    return [(r.id, r.site_id, utc(r.awaiting_reply_since)) for r in rows]


async def mark_greeted(conn: AsyncConnection, cid: str, now: datetime) -> bool:
    """Take the greeting for this conversation: True for exactly one caller, across instances, and for
    none once an agent has answered or the visitor was already told the team knows (a first reminder)."""
    result = await conn.execute(
        update(conversation)
        .where(
            and_(
                conversation.c.id == cid,
                conversation.c.greeted_at.is_(None),
                conversation.c.waiting_told_at.is_(None),
                _waiting,
            )
        )
        .values(greeted_at=now)
    )
    return bool(result.rowcount)


async def waiting_before(conn: AsyncConnection, site_id: str, cid: str) -> int:
    """How many other conversations on the site wait for a first answer."""
    found = await conn.execute(
        select(func.count()).where(and_(conversation.c.site_id == site_id, conversation.c.id != cid, _waiting))
    )
    return int(found.scalar_one())


async def visitor_wrote_before(conn: AsyncConnection, cid: str, seq: int) -> bool:
    """Whether the visitor wrote in the conversation before message ``seq`` (one row looked at, however
    long the conversation)."""
    found = await conn.execute(
        select(message.c.seq)
        .where(and_(message.c.conversation_id == cid, message.c.role == Role.VISITOR.value, message.c.seq < seq))
        .limit(1)
    )
    return found.first() is not None


async def recent_median_first_response(conn: AsyncConnection, site_id: str, since: datetime) -> float | None:
    """The median first response (seconds) of the site's latest answered conversations started since
    ``since`` (``bridge.store.stats`` defines a first response); None when there is none."""
    rows = await conn.execute(
        select(FIRST_VISITOR_AT, FIRST_AGENT_AT)
        .where(and_(conversation.c.site_id == site_id, conversation.c.created_at >= since))
        .order_by(conversation.c.created_at.desc())
        .limit(RECENT_CONVERSATIONS)
    )
    waits = [
        max(0.0, (utc(r.first_agent_at) - utc(r.first_visitor_at)).total_seconds())
        for r in rows
        if r.first_agent_at is not None and r.first_visitor_at is not None
    ]
    return statistics.median(waits) if waits else None
