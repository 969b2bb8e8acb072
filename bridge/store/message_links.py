"""Which remote events and posts the store knows (``message_link``): an event relayed once however often
it comes, a post of ours never taken for a reply, and each message's copy on an endpoint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import RemoteId
from bridge.store.tables import message_link

#: a remote id (or several) recorded once: by "is it PostgreSQL"; built once (building and cache-keying a
#: statement costs more CPU than SQLite takes to run it)
REMEMBER = {
    True: postgresql.insert(message_link).on_conflict_do_nothing(),
    False: sqlite.insert(message_link).on_conflict_do_nothing(),
}
_THIS_REMOTE = and_(
    message_link.c.endpoint == bindparam("endpoint"), message_link.c.remote_id == bindparam("remote_id")
)
_MESSAGE_FOR_REMOTE = select(message_link.c.message_id).where(_THIS_REMOTE)
_REMOTE_FOR_MESSAGE = (
    select(message_link.c.remote_id)
    .where(and_(message_link.c.endpoint == bindparam("endpoint"), message_link.c.message_id == bindparam("mid")))
    .order_by(message_link.c.created_at)
    .limit(1)
)


async def remember_remote(
    conn: AsyncConnection,
    endpoint: str,
    remote_id: str,
    now: datetime,
    *,
    message_id: str | None = None,
    conversation_id: str | None = None,
) -> bool:
    """Record a remote event; False when it was already recorded (a retry or a replay). One statement:
    ON CONFLICT DO NOTHING, where a savepoint around a failing insert took three."""
    row = {
        "endpoint": endpoint,
        "remote_id": remote_id,
        "message_id": message_id,
        "conversation_id": conversation_id,
        "created_at": now,
    }
    done = await conn.execute(REMEMBER[conn.dialect.name == "postgresql"], row)
    return bool(done.rowcount)


async def message_for_remote(conn: AsyncConnection, endpoint: str, remote_id: str) -> str | None:
    found = await conn.execute(_MESSAGE_FOR_REMOTE, {"endpoint": endpoint, "remote_id": remote_id})
    return found.scalar_one_or_none()


async def remote_for_message(conn: AsyncConnection, endpoint: str, mid: str) -> RemoteId | None:
    """The endpoint's own copy of a message (the first recorded: a split post's first part)."""
    remote = (await conn.execute(_REMOTE_FOR_MESSAGE, {"endpoint": endpoint, "mid": mid})).scalar()
    return RemoteId(remote) if remote is not None else None
