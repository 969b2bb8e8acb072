"""Queries of returning visitors (CONTRACT §8): the visitor's earlier chats on a site, found by their verified
``identify()`` id when they have one, else by the widget's key for their browser."""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Returning
from bridge.store.conversations import thread_links
from bridge.store.tables import conversation


async def earlier_chats(
    conn: AsyncConnection, site_id: str, *, external_id: str | None, key: str | None
) -> Returning | None:
    """The chats this visitor had on the site so far (offline messages aside); None for a first chat, or for
    a visitor the bridge cannot recognise. A verified id wins over the browser's key: a shared computer's
    key would mix two customers, a customer's id follows them to any browser."""
    if external_id:
        same_visitor = conversation.c.visitor_external_id == external_id
    elif key:
        same_visitor = conversation.c.visitor_key == key
    else:
        return None
    theirs = and_(conversation.c.site_id == site_id, conversation.c.kind == "chat", same_visitor)
    earlier = int((await conn.execute(select(func.count()).where(theirs))).scalar_one())
    if not earlier:
        return None
    last = (
        await conn.execute(
            select(conversation.c.id).where(theirs).order_by(conversation.c.created_at.desc(), conversation.c.id)
        )
    ).first()
    rating = (
        await conn.execute(
            select(conversation.c.rating_score)
            .where(and_(theirs, conversation.c.rating_score.is_not(None)))
            .order_by(conversation.c.rated_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    threads = await thread_links(conn, last.id) if last is not None else {}
    return Returning(
        earlier,
        int(rating) if rating is not None else None,
        tuple((endpoint, dest, ref) for endpoint, (dest, ref) in sorted(threads.items()) if ref is not None),
    )
