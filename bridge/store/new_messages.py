"""Storing a new message: its ``seq`` taken from its conversation (with what else the message changes
there) and its row, in one round trip on PostgreSQL.

On PostgreSQL each statement is a round trip to the server, and a round trip costs the bridge more CPU
than the statement costs the server (bench/cpu_per_message.py): there the seq is taken by an
``UPDATE … RETURNING`` inside a data-modifying ``WITH`` whose ``INSERT`` stores the message with it. The
``UPDATE`` locks the conversation's row as before, so seqs stay one per message and gap-free in commit
order. SQLite has no data-modifying ``WITH``; there the two statements run on the event loop's thread and
cost no round trip (``bridge/store/sqlite_calls.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert, Update

from bridge.model import Attachment, ConversationId, Message, Participant
from bridge.store.tables import conversation, message


class Touch(Enum):
    """What a message changes on its conversation besides its seq, in the statement that takes the seq."""

    #: a visitor's: the first unanswered one starts the first-response clock; later ones don't reset it
    VISITOR = "visitor"
    #: an agent's reply: nobody waits any more, reminders start over
    AGENT = "agent"
    #: and, for a visitor who gave an address, unseen for a while it goes to them by email
    #: (``bridge/follow_up.py``), unless a mail about earlier replies is pending already
    AGENT_FOLLOW_UP = "agent, follow-up"


# built once: building a statement and keying it for SQLAlchemy's compiled cache costs more CPU than
# SQLite takes to run it
_NOW = bindparam("now", type_=conversation.c.last_activity_at.type)
_NEXT_SEQ = (
    update(conversation)
    .where(conversation.c.id == bindparam("cid"))
    .values(last_seq=conversation.c.last_seq + 1)
    .returning(conversation.c.last_seq)
)
_BY_VISITOR = {
    "last_activity_at": _NOW,
    "awaiting_reply_since": func.coalesce(conversation.c.awaiting_reply_since, _NOW),
}
_BY_AGENT = {"last_activity_at": _NOW, "awaiting_reply_since": None, "reminded_at": None}
_NEXT_SEQ_TOUCHING: dict[Touch | None, Update] = {
    None: _NEXT_SEQ,
    Touch.VISITOR: _NEXT_SEQ.values(**_BY_VISITOR),
    Touch.AGENT: _NEXT_SEQ.values(**_BY_AGENT),
    Touch.AGENT_FOLLOW_UP: _NEXT_SEQ.values(
        **_BY_AGENT, follow_up_since=func.coalesce(conversation.c.follow_up_since, _NOW)
    ),
}
_INSERT_MESSAGE = insert(message)
#: the columns a new message is stored with, besides its seq (``attachments``: only when it has files —
#: left out, it is SQL NULL, where a None parameter would be JSON's ``null``)
_COLUMNS = (
    "id",
    "conversation_id",
    "role",
    "author_name",
    "author_avatar_url",
    "author_remote_id",
    "text",
    "client_msg_id",
    "origin",
    "created_at",
    "deleted",
    "html",
)


def _seq_and_insert(touch: Touch | None, with_files: bool) -> Insert:
    """PostgreSQL: take the seq and store the message in one statement."""
    seq = _NEXT_SEQ_TOUCHING[touch].cte("next_seq")
    names = [*_COLUMNS, "attachments"] if with_files else list(_COLUMNS)
    values = [bindparam(f"m_{name}", type_=message.c[name].type) for name in names]
    rows = select(*values, seq.c.last_seq)
    return insert(message).from_select([*names, "seq"], rows).returning(literal_column("seq"))


_SEQ_AND_INSERT = {(t, files): _seq_and_insert(t, files) for t in _NEXT_SEQ_TOUCHING for files in (False, True)}


async def next_seq(conn: AsyncConnection, cid: str, touch: Touch | None = None, now: datetime | None = None) -> int:
    """Take the next ``seq``: one atomic UPDATE, which also locks the row on PostgreSQL; ``touch``: what
    else the message changes on the conversation (at ``now``), in the same statement."""
    params: dict[str, Any] = {"cid": cid} if touch is None else {"cid": cid, "now": now}
    return int((await conn.execute(_NEXT_SEQ_TOUCHING[touch], params)).scalar_one())


@dataclass(frozen=True)
class Draft:
    """A message about to be stored: all of it but its seq (its id is made here, so what is stored with it
    in the same statement — its deliveries — can name it)."""

    cid: str
    author: Participant
    text: str
    now: datetime
    origin: str
    client_msg_id: str | None = None
    html: str | None = None
    attachments: Sequence[Attachment] = ()
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def row(self) -> dict[str, Any]:
        """Its columns but ``seq`` (``attachments`` only with files: left out, it is SQL NULL, where a None
        parameter would be JSON's ``null``)."""
        row: dict[str, Any] = {
            "id": self.id,
            "conversation_id": self.cid,
            "role": self.author.role.value,
            "author_name": self.author.name,
            "author_avatar_url": self.author.avatar_url,
            "author_remote_id": self.author.remote_id,
            "text": self.text,
            "client_msg_id": self.client_msg_id,
            "origin": self.origin,
            "created_at": self.now,
            "deleted": False,
            "html": self.html,
        }
        if self.attachments:
            row["attachments"] = [a.stored() for a in self.attachments]
        return row

    def params(self) -> dict[str, Any]:
        """The parameters of ``seq_and_insert``."""
        return {f"m_{name}": value for name, value in self.row().items()} | {"cid": self.cid, "now": self.now}

    def stored(self, seq: int) -> Message:
        return Message(
            self.id,
            ConversationId(self.cid),
            seq,
            self.author,
            self.text,
            self.now,
            self.client_msg_id,
            origin=self.origin,
            html=self.html,
            attachments=tuple(self.attachments),
        )


def seq_and_insert(touch: Touch | None, with_files: bool) -> Insert:
    """PostgreSQL: the statement that takes the seq and stores a draft (``Draft.params``), built once."""
    return _SEQ_AND_INSERT[touch, with_files]


async def insert_message(
    conn: AsyncConnection,
    cid: str,
    author: Participant,
    text: str,
    now: datetime,
    *,
    origin: str,
    client_msg_id: str | None = None,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    touch: Touch | None = None,
) -> Message:
    """``touch``: what else the message changes on its conversation (``Touch``)."""
    return await insert_draft(conn, Draft(cid, author, text, now, origin, client_msg_id, html, attachments), touch)


async def insert_draft(conn: AsyncConnection, draft: Draft, touch: Touch | None = None) -> Message:
    """Store ``draft`` with the next seq (``touch``: what else it changes on its conversation)."""
    if conn.dialect.name == "postgresql":
        params = draft.params()
        seq = int((await conn.execute(seq_and_insert(touch, bool(draft.attachments)), params)).scalar_one())
    else:
        seq = await next_seq(conn, draft.cid, touch, draft.now)
        await conn.execute(_INSERT_MESSAGE, {**draft.row(), "seq": seq})
    return draft.stored(seq)
