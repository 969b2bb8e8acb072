"""Who has shown their face in a conversation (``bridge/faces.py``): a team member who wrote to the visitor,
or whose "… joined the chat" the visitor has seen."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Participant, Role
from bridge.store.tables import message

#: the ``origin`` of a "… joined the chat" line (the bridge's own words, about a person)
JOINED = "joined"


async def has_appeared(conn: AsyncConnection, cid: str, person: Participant) -> bool:
    """Whether ``person`` wrote in the conversation or was announced there: by their id on their team chat
    (``slack:U…``), by name for someone without one."""
    same = (
        message.c.author_remote_id == person.remote_id
        if person.remote_id
        else and_(message.c.author_remote_id.is_(None), message.c.author_name == person.name)
    )
    found = await conn.execute(
        select(message.c.id)
        .where(
            and_(
                message.c.conversation_id == cid,
                or_(
                    message.c.role == Role.AGENT.value,
                    and_(message.c.role == Role.SYSTEM.value, message.c.origin == JOINED),
                ),
                same,
            )
        )
        .limit(1)
    )
    return found.first() is not None
