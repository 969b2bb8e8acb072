"""An agent's plain reply on PostgreSQL in one round trip: ``sitechat_agent_line`` (migration 0012).

The function does what ``TeamSide.handle`` does in a unit of work for a plain reply from someone the
visitor has met already: find the thread's conversation and lock it, skip an event recorded already,
store the line and queue it for the other team chats, record the event, and tell the other instances
(its NOTIFY goes with its commit). Anything else it leaves to the unit of work (``other``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, String, column
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from bridge.store.conversations import root_key
from bridge.store.function_calls import function_call
from bridge.store.new_messages import Draft
from bridge.store.notify import CHANNEL
from bridge.store.tables import TS

#: what the function takes, in its order, and the types of those that are not text
_IN = (
    "ev_endpoint",
    "ev_thread",
    "ev_root",
    "ev_remote_id",
    "expected",
    "line_id",
    "author_name",
    "author_avatar",
    "author_remote",
    "line_text",
    "line_html",
    "at",
    "delivery_kind",
    "notify_channel",
    "notify_as",
)
_IN_TYPES: dict[str, TypeEngine[Any]] = {"at": TS}
_OUT = (
    column("outcome", String()),
    column("line_seq", Integer()),
    column("endpoints", ARRAY(String())),
    column("site", String()),
    column("first_wait", Float()),
)
_CALL = function_call("sitechat_agent_line", _IN, _OUT, _IN_TYPES)


@dataclass(frozen=True)
class ReplyOutcome:
    """What ``store_agent_line`` did: ``outcome`` is ``stored``, ``known`` (the event was recorded
    already) or ``other`` (nothing done: for the unit of work)."""

    outcome: str
    seq: int = 0
    #: the team chats it was queued for
    endpoints: tuple[str, ...] = ()
    site_id: str = ""
    #: the conversation's first response: the seconds the visitor waited for it (None: it is not)
    first_wait: float | None = None


async def store_agent_line(
    conn: AsyncConnection, event: tuple[str, str, str], draft: Draft, delivery_kind: str, notify_as: str | None
) -> ReplyOutcome:
    """Store ``draft`` (an agent's reply in ``draft.cid``, the conversation the caller expects the event's
    thread to be) as the event (endpoint, thread, its remote id; the endpoint is the draft's origin), in
    one call; ``conn`` in autocommit (the call is the transaction). ``notify_as``: this instance, to tell
    the others with the commit."""
    endpoint, thread, remote_id = event
    author = draft.author
    values = (
        *(endpoint, thread, root_key(thread), remote_id, draft.cid, draft.id),
        *(author.name, author.avatar_url, author.remote_id, draft.text, draft.html, draft.now, delivery_kind),
        *(CHANNEL, notify_as),
    )
    row = (await conn.execute(_CALL, dict(zip(_IN, values, strict=True)))).one()
    first_wait = float(row.first_wait) if row.first_wait is not None else None
    return ReplyOutcome(row.outcome, int(row.line_seq or 0), tuple(row.endpoints or ()), row.site or "", first_wait)
