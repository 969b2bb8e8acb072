"""A visitor's plain line on PostgreSQL in one round trip: ``sitechat_visitor_line`` (migration 0011).

The function does what ``VisitorSide.post_visitor_message`` does in a unit of work for a line with files,
or one that reopens a chat (and what ``bridge/store/sqlite_lines.py`` does on SQLite in two calls): lock,
look for a resend, check the chat is open, count the use against the message limit, store and queue, and
tell the other instances (its NOTIFY goes with its commit). Called on a connection in autocommit, the call
is its own transaction: one round trip where the unit of work takes seven. What a commit tells here — the
sockets, the lanes — the caller tells once it has returned (``Core.statements``). The visitor's first line
in a chat, while nobody owes them an answer, may tell them their place in line in the same transaction
(``bridge/craft.py``): that it leaves to the unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, column
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from bridge.model import ANONYMOUS
from bridge.store.conversations import utc
from bridge.store.function_calls import function_call
from bridge.store.limits import CountedUse
from bridge.store.new_messages import Draft
from bridge.store.notify import CHANNEL
from bridge.store.tables import TS

#: what the function takes, in its order — the line, then the limit it counts against (all None: none) —
#: and the types of those that are not text
_LINE = (
    "line_id",
    "cid",
    "line_text",
    "line_client_msg_id",
    "line_origin",
    "at",
    "delivery_kind",
    "anonymous",
    "notify_channel",
    "notify_as",
)
_RATE = ("rate_lock", "rate_bucket", "rate_key", "rate_most", "rate_since", "rate_at")
_IN = (*_LINE, *_RATE)
_IN_TYPES: dict[str, TypeEngine[Any]] = {
    "at": TS,
    "rate_since": TS,
    "rate_at": TS,
    "rate_lock": BigInteger(),
    "rate_most": Integer(),
}
#: what it answers (its OUT parameters)
_OUT = (
    column("outcome", String()),
    column("found_id", String()),
    column("oldest", TS),
    column("line_seq", Integer()),
    column("author", String()),
    column("endpoints", ARRAY(String())),
)
_CALL = function_call("sitechat_visitor_line", _IN, _OUT, _IN_TYPES)


@dataclass(frozen=True)
class LineOutcome:
    """What ``store_visitor_line`` did: ``outcome`` is ``stored``, ``resent`` (``found_id``: the message
    stored before), ``closed``, ``gone``, ``limited`` (``oldest``: the oldest counted use) or ``first``
    (nothing done: the visitor's first line while nobody owes them an answer yet, for the unit of work that
    may tell them their place in line with it)."""

    outcome: str
    found_id: str | None = None
    oldest: datetime | None = None
    seq: int = 0
    #: the visitor's name as the message was stored with it
    author: str | None = None
    #: the team chats it was queued for
    endpoints: tuple[str, ...] = ()


async def store_visitor_line(
    conn: AsyncConnection, draft: Draft, delivery_kind: str, use: CountedUse | None, notify_as: str | None = None
) -> LineOutcome:
    """Store ``draft`` (the author's name is the conversation's visitor's) and queue it for every thread,
    in one call; ``conn`` in autocommit (the call is the transaction). ``use``: count it against a limit.
    ``notify_as``: this instance, to tell the others of the line with the commit (``bridge/store/notify.py``)."""
    line = (
        *(draft.id, draft.cid, draft.text, draft.client_msg_id, draft.origin, draft.now),
        *(delivery_kind, ANONYMOUS, CHANNEL, notify_as),
    )
    rate: tuple[object, ...] = (None,) * len(_RATE)
    if use is not None:
        rate = (use.lock_key, use.bucket, use.stored_key, use.limit, use.now - use.span, use.now)
    params = dict(zip(_LINE, line, strict=True)) | dict(zip(_RATE, rate, strict=True))
    row = (await conn.execute(_CALL, params)).one()
    return LineOutcome(
        row.outcome,
        row.found_id,
        utc(row.oldest),
        int(row.line_seq or 0),
        row.author,
        tuple(row.endpoints or ()),
    )
