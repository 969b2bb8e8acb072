"""Who has seen what (CONTRACT §7): the visitor an agent's message, the team the visitor's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Role
from bridge.store.tables import conversation, message


async def mark_seen(conn: AsyncConnection, cid: str, seq: int, now: datetime) -> list[tuple[str, str]]:
    """The visitor has seen the conversation up to ``seq``: the agents' messages up to there not marked
    before are marked now (each once, by a conditional UPDATE); their (id, origin)."""
    unseen = and_(
        message.c.conversation_id == cid,
        message.c.seq <= seq,
        message.c.role == Role.AGENT.value,
        message.c.deleted.is_(False),
        message.c.seen_at.is_(None),
    )
    rows = (await conn.execute(select(message.c.id, message.c.origin).where(unseen).order_by(message.c.seq))).all()
    marked: list[tuple[str, str]] = []
    for mid, origin in rows:
        result = await conn.execute(
            update(message).where(and_(message.c.id == mid, message.c.seen_at.is_(None))).values(seen_at=now)
        )
        if result.rowcount:
            marked.append((str(mid), str(origin)))
    return marked


async def visitor_seq_up_to(conn: AsyncConnection, cid: str, seq: int) -> int | None:
    """The visitor's last message at or before ``seq``."""
    found = await conn.execute(
        select(message.c.seq)
        .where(and_(message.c.conversation_id == cid, message.c.seq <= seq, message.c.role == Role.VISITOR.value))
        .order_by(message.c.seq.desc())
        .limit(1)
    )
    value = found.scalar()
    return int(value) if value is not None else None


async def team_read(conn: AsyncConnection, cid: str, seq: int) -> bool:
    """The team has read the visitor's messages up to ``seq``; False when it was known already."""
    result = await conn.execute(
        update(conversation)
        .where(
            and_(
                conversation.c.id == cid,
                or_(conversation.c.team_read_seq.is_(None), conversation.c.team_read_seq < seq),
            )
        )
        .values(team_read_seq=seq)
    )
    return bool(result.rowcount)
