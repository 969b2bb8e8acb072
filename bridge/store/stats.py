"""The statistics' SQL: each conversation's facts, read once per conversation and streamed.

The first response is defined here, once, as two correlated subqueries (the visitor's first message,
the first agent message after it) that the report, the export and the first-response metric share.
They run on the ``(conversation_id, seq)`` unique index, a handful of rows per conversation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.insight import UTC_ZONE, ConversationFacts, Stats, StatsBuilder
from bridge.store.conversations import utc
from bridge.store.database import Database
from bridge.store.tables import conversation, delivery, message

#: rows fetched at a time from a streamed query (a server-side cursor on PostgreSQL and SQLite alike)
STREAM_BATCH = 1000

_visitor = message.alias("first_visitor")
_agent = message.alias("first_agent")

_first_visitor_seq = (
    select(func.min(_visitor.c.seq))
    .where(and_(_visitor.c.conversation_id == _agent.c.conversation_id, _visitor.c.role == "visitor"))
    .scalar_subquery()
)
_agent_after_visitor = and_(
    _agent.c.conversation_id == conversation.c.id, _agent.c.role == "agent", _agent.c.seq > _first_visitor_seq
)

#: when the visitor first wrote
FIRST_VISITOR_AT = (
    select(func.min(_visitor.c.created_at))
    .where(and_(_visitor.c.conversation_id == conversation.c.id, _visitor.c.role == "visitor"))
    .correlate(conversation)
    .scalar_subquery()
    .label("first_visitor_at")
)
#: when an agent first answered (the first agent message after the visitor's first)
FIRST_AGENT_AT = (
    select(func.min(_agent.c.created_at)).where(_agent_after_visitor).correlate(conversation).scalar_subquery()
).label("first_agent_at")
_FIRST_AGENT_SEQ = (
    select(func.min(_agent.c.seq)).where(_agent_after_visitor).correlate(conversation).scalar_subquery()
).label("first_agent_seq")


def in_period(start: datetime, end: datetime, site: str | None) -> Any:
    """Conversations started in ``[start, end)``, of one site or of all."""
    started = and_(conversation.c.created_at >= start, conversation.c.created_at < end)
    return started if site is None else and_(started, conversation.c.site_id == site)


def facts_query(start: datetime, end: datetime, site: str | None) -> Select[Any]:
    return (
        select(
            conversation.c.id,
            conversation.c.site_id,
            conversation.c.kind,
            conversation.c.status,
            conversation.c.created_at,
            conversation.c.rating_score,
            conversation.c.rating_comment,
            FIRST_VISITOR_AT,
            FIRST_AGENT_AT,
        )
        .where(in_period(start, end, site))
        .order_by(conversation.c.created_at, conversation.c.id)
    )


def facts_of(row: Row[Any]) -> ConversationFacts:
    m = row._mapping
    return ConversationFacts(
        id=m["id"],
        site_id=m["site_id"],
        kind=m["kind"],
        status=m["status"],
        created_at=utc(m["created_at"]),
        first_visitor_at=utc(m["first_visitor_at"]),
        first_agent_at=utc(m["first_agent_at"]),
        rating_score=m["rating_score"],
        rating_comment=m["rating_comment"],
    )


async def stream_rows(conn: AsyncConnection, query: Select[Any]) -> AsyncIterator[Row[Any]]:
    """A query's rows through a server-side cursor, ``STREAM_BATCH`` at a time: never all in memory."""
    result = await conn.stream(query.execution_options(yield_per=STREAM_BATCH))
    async for rows in result.partitions():  # a batch per await, not a row
        for row in rows:
            yield row


async def compute_stats(
    db: Database, start: datetime, end: datetime, *, site: str | None = None, zone: Any = UTC_ZONE
) -> Stats:
    """The period's statistics (``bridge.insight`` says what each number means); ``zone`` is the
    site's (``bridge.insight.site_zone``)."""
    builder = StatsBuilder(start, end, zone, site)
    async with db.read(bulk=True) as conn:
        async for row in stream_rows(conn, facts_query(start, end, site)):
            builder.add(facts_of(row))
    return builder.result()


@dataclass(frozen=True)
class FirstResponse:
    agent_seq: int
    seconds: float


async def first_response_of(conn: AsyncConnection, cid: str) -> FirstResponse | None:
    """The conversation's first response so far (which agent message, how long after the visitor)."""
    row = (
        await conn.execute(select(FIRST_VISITOR_AT, FIRST_AGENT_AT, _FIRST_AGENT_SEQ).where(conversation.c.id == cid))
    ).first()
    if row is None or row.first_agent_seq is None or row.first_visitor_at is None:
        return None
    wait = (utc(row.first_agent_at) - utc(row.first_visitor_at)).total_seconds()
    return FirstResponse(int(row.first_agent_seq), max(0.0, wait))


async def open_conversations_by_site(conn: AsyncConnection) -> dict[str, int]:
    """Open conversations per site: a range of the (status, last_activity_at) index."""
    rows = await conn.execute(
        select(conversation.c.site_id, func.count())
        .where(conversation.c.status == "open")
        .group_by(conversation.c.site_id)
    )
    return {site: int(n) for site, n in rows}


async def pending_deliveries_by_endpoint(conn: AsyncConnection) -> dict[str, int]:
    """Deliveries not yet done per endpoint: a range of the (done, endpoint, …) outbox index."""
    rows = await conn.execute(
        select(delivery.c.endpoint, func.count()).where(delivery.c.done.is_(False)).group_by(delivery.c.endpoint)
    )
    return {endpoint: int(n) for endpoint, n in rows}
