"""Attachments' SQL: a file's row and its bytes in chunks, written as they arrive and read one at a time.

Every write is a short transaction of its own: a slow upload never holds the database (SQLite has one
writer) for longer than one chunk takes. A file is offered only once ``complete``; the pieces of one
that never completes (a cut connection, a crash) are purged with it after a while (``purge_unfinished``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Attachment
from bridge.store.tables import attachment, attachment_chunk, message

#: how long a report's picture is kept beyond the unsent files' day
REPORT_KEPT = timedelta(days=30)
#: how many bytes one row of ``attachment_chunk`` holds: the most a transfer keeps in memory at once
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class StoredFile:
    """An attachment as the store knows it: what it is, whose, and how many chunks hold it."""

    file: Attachment
    conversation_id: str | None
    message_id: str | None
    complete: bool
    chunks: int


async def begin(
    conn: AsyncConnection,
    aid: str,
    *,
    name: str,
    content_type: str,
    origin: str,
    now: datetime,
    conversation_id: str | None = None,
) -> None:
    await conn.execute(
        attachment.insert().values(
            id=aid,
            conversation_id=conversation_id,
            name=name,
            content_type=content_type,
            size=0,
            origin=origin,
            complete=False,
            created_at=now,
        )
    )


async def add_chunk(conn: AsyncConnection, aid: str, n: int, data: bytes) -> None:
    await conn.execute(attachment_chunk.insert().values(attachment_id=aid, n=n, data=data))


async def finish(conn: AsyncConnection, aid: str, size: int) -> None:
    await conn.execute(update(attachment).where(attachment.c.id == aid).values(size=size, complete=True))


async def discard(conn: AsyncConnection, aids: Sequence[str]) -> None:
    """These files and their bytes, gone."""
    if aids:
        await conn.execute(delete(attachment_chunk).where(attachment_chunk.c.attachment_id.in_(aids)))
        await conn.execute(delete(attachment).where(attachment.c.id.in_(aids)))


async def get(conn: AsyncConnection, aid: str) -> StoredFile | None:
    count = select(func.count()).where(attachment_chunk.c.attachment_id == aid).scalar_subquery()
    row = (await conn.execute(select(attachment, count.label("chunks")).where(attachment.c.id == aid))).first()
    if row is None:
        return None
    m = row._mapping
    return StoredFile(
        Attachment(m["id"], m["name"], int(m["size"]), m["content_type"]),
        m["conversation_id"],
        m["message_id"],
        bool(m["complete"]),
        int(m["chunks"]),
    )


async def chunk(conn: AsyncConnection, aid: str, n: int) -> bytes | None:
    row = (
        await conn.execute(
            select(attachment_chunk.c.data).where(
                and_(attachment_chunk.c.attachment_id == aid, attachment_chunk.c.n == n)
            )
        )
    ).first()
    return bytes(row[0]) if row else None


async def usable(conn: AsyncConnection, aids: Sequence[str], cid: str) -> list[Attachment] | None:
    """The complete files ``aids`` of conversation ``cid``, in the order asked; None when one of them is
    not (another conversation's, unknown, or still being uploaded): the visitor may not send it."""
    if not aids:
        return []
    rows = (
        await conn.execute(
            select(attachment).where(
                and_(attachment.c.id.in_(aids), attachment.c.conversation_id == cid, attachment.c.complete.is_(True))
            )
        )
    ).all()
    found = {r.id: Attachment(r.id, r.name, int(r.size), r.content_type) for r in rows}
    if len(found) != len(set(aids)):
        return None
    return [found[a] for a in dict.fromkeys(aids)]


async def link(conn: AsyncConnection, aids: Sequence[str], cid: str, mid: str) -> None:
    """These files are sent with message ``mid`` of conversation ``cid``."""
    if aids:
        await conn.execute(
            update(attachment).where(attachment.c.id.in_(aids)).values(conversation_id=cid, message_id=mid)
        )


async def forget_message_files(conn: AsyncConnection, mid: str) -> None:
    """A deleted message's files go with it: their links stop working at once."""
    aids = (await conn.execute(select(attachment.c.id).where(attachment.c.message_id == mid))).scalars().all()
    await discard(conn, list(aids))
    await conn.execute(update(message).where(message.c.id == mid).values(attachments=None))


async def of_conversations(conn: AsyncConnection, cids: Sequence[str]) -> list[str]:
    return list(
        (await conn.execute(select(attachment.c.id).where(attachment.c.conversation_id.in_(cids)))).scalars().all()
    )


async def unfinished(conn: AsyncConnection, before: datetime, limit: int = 500) -> list[str]:
    """Files that never became part of a message since ``before``: an upload cut off, one the visitor
    never sent, a team file whose event was no conversation's reply. Their bytes are of no use to anyone.
    Team members' photos (origin ``avatar``, ``bridge/faces.py``) belong to no message and stay; a report's
    picture stays a month (its post may wait out a long team-chat outage)."""
    unsent = and_(
        or_(attachment.c.complete.is_(False), attachment.c.message_id.is_(None)),
        attachment.c.origin.not_in(("report", "avatar")),
    )
    old_report = and_(attachment.c.origin == "report", attachment.c.created_at < before - REPORT_KEPT)
    rows = await conn.execute(
        select(attachment.c.id).where(and_(attachment.c.created_at < before, or_(unsent, old_report))).limit(limit)
    )
    return list(rows.scalars().all())
