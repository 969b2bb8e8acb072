"""Who has shown their face in a conversation (``bridge/faces.py``): a team member who wrote to the visitor,
or whose "… joined the chat" the visitor has seen."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Participant, Role
from bridge.store.tables import message

#: the ``origin`` of a "… joined the chat" line (the bridge's own words, about a person)
JOINED = "joined"


def _appeared(same: ColumnElement[bool]) -> Select[tuple[str]]:
    return (
        select(message.c.id)
        .where(
            and_(
                message.c.conversation_id == bindparam("cid"),
                or_(
                    message.c.role == Role.AGENT.value,
                    and_(message.c.role == Role.SYSTEM.value, message.c.origin == JOINED),
                ),
                same,
            )
        )
        .limit(1)
    )


# built once (building and cache-keying a statement costs more CPU than SQLite takes to run it)
_APPEARED_BY_ID = _appeared(message.c.author_remote_id == bindparam("remote_id"))
_APPEARED_BY_NAME = _appeared(and_(message.c.author_remote_id.is_(None), message.c.author_name == bindparam("name")))


async def has_appeared(conn: AsyncConnection, cid: str, person: Participant) -> bool:
    """Whether ``person`` wrote in the conversation or was announced there: by their id on their team chat
    (``slack:U…``), by name for someone without one."""
    if person.remote_id:
        found = await conn.execute(_APPEARED_BY_ID, {"cid": cid, "remote_id": person.remote_id})
    else:
        found = await conn.execute(_APPEARED_BY_NAME, {"cid": cid, "name": person.name})
    return found.first() is not None
