"""One row per conversation (CONTRACT §9): what ``sitechat export`` writes and what a webhook carries.

``row_of`` defines every column once. Rows are streamed: the conversations through a server-side
cursor, their messages fetched a chunk of conversations at a time on a second connection, so memory
holds one chunk however long the period. The first response is the statistics' own definition
(``bridge.store.stats``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Conversation, Message, Role
from bridge.store import conversations as q
from bridge.store.conversations import utc
from bridge.store.database import Database
from bridge.store.stats import FIRST_AGENT_AT, FIRST_VISITOR_AT, in_period, stream_rows
from bridge.store.tables import conversation, message
from bridge.transcript import render_transcript

COLUMNS = (
    "id",
    "site",
    "topic",
    "visitor_name",
    "visitor_email",
    "started_at",
    "closed_at",
    "first_response_seconds",
    "agents",
    "messages",
    "rating",
    "rating_comment",
    "pages",
    "transcript",
)
#: conversations whose messages are read together
CHUNK = 500


def iso(value: datetime) -> str:
    """ISO 8601 in UTC, as the widget API writes times."""
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ExportRow:
    id: str
    site: str
    topic: str | None
    visitor_name: str | None
    visitor_email: str | None
    started_at: datetime
    closed_at: datetime | None
    #: from the visitor's first message to the first agent reply (None: not answered)
    first_response_seconds: float | None
    #: the team members whose messages the visitor has, in the order they first wrote
    agents: tuple[str, ...]
    #: the messages the transcript shows (deleted ones are not)
    messages: int
    rating: int | None
    rating_comment: str | None
    #: the page addresses the visitor went through, in order
    pages: tuple[str, ...]
    #: the transcript the team's thread gets on close (``bridge.transcript``)
    transcript: str

    def as_json(self) -> dict[str, Any]:
        """The row as JSON values (times ISO 8601 UTC, lists as arrays): JSON lines, and the webhook's."""
        return {
            "id": self.id,
            "site": self.site,
            "topic": self.topic,
            "visitor_name": self.visitor_name,
            "visitor_email": self.visitor_email,
            "started_at": iso(self.started_at),
            "closed_at": iso(self.closed_at) if self.closed_at else None,
            "first_response_seconds": self.first_response_seconds,
            "agents": list(self.agents),
            "messages": self.messages,
            "rating": self.rating,
            "rating_comment": self.rating_comment,
            "pages": list(self.pages),
            "transcript": self.transcript,
        }


def row_of(conv: Conversation, messages: Sequence[Message], first_response: float | None, site_name: str) -> ExportRow:
    """A conversation's row from what the store holds (pure): the one definition of every column."""
    shown = [m for m in messages if not m.deleted]
    agents = dict.fromkeys(m.author.name for m in shown if m.author.role is Role.AGENT)
    closed = f"at {conv.closed_at:%Y-%m-%d %H:%M} UTC" if conv.closed_at else "not yet"
    return ExportRow(
        id=conv.id,
        site=conv.site_id,
        topic=conv.topic,
        visitor_name=conv.visitor.name,
        visitor_email=conv.visitor.email,
        started_at=conv.created_at,
        closed_at=conv.closed_at,
        first_response_seconds=None if first_response is None else round(max(0.0, first_response), 3),
        agents=tuple(agents),
        messages=len(shown),
        rating=conv.rating_score,
        rating_comment=conv.rating_comment,
        pages=tuple(page.url for page in conv.pages),
        transcript=render_transcript(conv, messages, site_name, closed),
    )


def _query() -> Select[Any]:
    return select(conversation, FIRST_VISITOR_AT, FIRST_AGENT_AT)


async def export_rows(
    db: Database,
    start: datetime,
    end: datetime,
    *,
    site: str | None = None,
    site_names: Mapping[str, str] | None = None,
) -> AsyncIterator[ExportRow]:
    """The chats started in ``[start, end)`` (offline messages are no chats), oldest first; ``site_names``
    head the transcripts (a site's id when it has none)."""
    names = site_names or {}
    query = _query().where(and_(in_period(start, end, site), conversation.c.kind == "chat"))
    query = query.order_by(conversation.c.created_at, conversation.c.id)
    async with db.read(bulk=True) as conn, db.read(bulk=True) as side:
        chunk: list[Row[Any]] = []
        async for row in stream_rows(conn, query):
            chunk.append(row)
            if len(chunk) >= CHUNK:
                for done in await _with_messages(side, chunk, names):
                    yield done
                chunk = []
        for done in await _with_messages(side, chunk, names):
            yield done


async def _with_messages(conn: AsyncConnection, rows: Sequence[Row[Any]], names: Mapping[str, str]) -> list[ExportRow]:
    if not rows:
        return []
    # the store's own row readers, so a row reads as every other part of the bridge reads it
    said: dict[str, list[Message]] = {}
    query = select(message).where(message.c.conversation_id.in_([r.id for r in rows]))
    for m in await conn.execute(query.order_by(message.c.conversation_id, message.c.seq)):
        said.setdefault(m.conversation_id, []).append(q._message(m))
    rows_out = []
    for r in rows:
        conv = q._conversation(r)
        first_visitor, first_agent = utc(r.first_visitor_at), utc(r.first_agent_at)
        wait = (first_agent - first_visitor).total_seconds() if first_visitor and first_agent else None
        rows_out.append(row_of(conv, said.get(r.id, []), wait, names.get(conv.site_id, conv.site_id)))
    return rows_out
