"""A visitor's plain line on SQLite in two calls on the event loop's thread: the twin of PostgreSQL's
``sitechat_visitor_line`` (migration 0011, ``bridge/store/visitor_lines.py``), with its outcomes.

The unit of work (``VisitorSide.post_visitor_message``) runs five statements and a commit for a line,
and SQLAlchemy's execution of each costs the bridge several times what SQLite's costs: a cProfile of
``bench/relay_ceiling.py`` put 46 % of the server's time in storing the line, nearly all of it in
SQLAlchemy's execution rather than in SQLite. Here the same statements
run straight on sqlite3, built once: the checks in the call that opens the transaction, then the line
stored and queued in a second one, and the commit. Between the two the limit is counted in this process
(``admit``: SQLite is one instance, its limits are ``LocalLimits``), so a line refused for what it is —
a resend, a closed chat — costs no place, as in the unit of work.

The timestamps are stored as SQLAlchemy stores them (its own bind processor for the column type), so
what is read back through SQLAlchemy is the same as for a line stored by the unit of work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import ANONYMOUS, Role, Status
from bridge.store.new_messages import Draft
from bridge.store.sqlite_calls import driver_of
from bridge.store.tables import TS
from bridge.store.visitor_lines import LineOutcome

_DIALECT = sqlite.dialect()
_STORED_TIME = TS.dialect_impl(_DIALECT).bind_processor(_DIALECT)


def stored_time(at: datetime) -> object:
    """``at`` as SQLAlchemy writes it into a SQLite ``TS`` column (so that it reads it back the same)."""
    return _STORED_TIME(at) if _STORED_TIME is not None else at


_CONVERSATION = "SELECT status, kind, awaiting_reply_since IS NULL, visitor_name FROM conversation WHERE id = ?"
_RESENT = "SELECT id FROM message WHERE conversation_id = ? AND client_msg_id = ?"
_HAS_SPOKEN = "SELECT 1 FROM message WHERE conversation_id = ? AND role = ? LIMIT 1"
# as ``Touch.VISITOR`` does (``bridge/store/new_messages.py``): the first unanswered line starts the clock
_NEXT_SEQ = (
    "UPDATE conversation SET last_seq = last_seq + 1, last_activity_at = ?,"
    " awaiting_reply_since = coalesce(awaiting_reply_since, ?) WHERE id = ? RETURNING last_seq"
)
_INSERT = (
    "INSERT INTO message (id, conversation_id, seq, role, author_name, text, client_msg_id, origin, created_at,"
    " deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
)
# a delivery for every thread, in the order of the endpoints' names, as ``insert_line`` queues them
_QUEUE = (
    "INSERT INTO delivery (conversation_id, endpoint, kind, message_id, done, attempts, in_doubt, next_attempt_at,"
    " created_at) SELECT conversation_id, endpoint, ?, ?, 0, 0, 0, ?, ? FROM thread_link"
    " WHERE conversation_id = ? ORDER BY endpoint RETURNING endpoint"
)

Admit = Callable[[AsyncConnection], Awaitable[None]]


async def store_visitor_line(
    conn: AsyncConnection, draft: Draft, delivery_kind: str, admit: Admit | None
) -> LineOutcome:
    """Store ``draft`` (the author's name is the conversation's visitor's) and queue it for every thread,
    committed; ``conn``: ``Database.sqlite_writer``'s. ``admit``: counts the line against the limit (in
    this process: it must not use ``conn``) once it is known to be new, and raises to refuse it. The
    outcomes are ``LineOutcome``'s but ``limited`` (``admit`` raises instead); all but ``stored`` leave
    nothing done."""
    driver = driver_of(conn)
    outcome, author = await driver.call(_checked, draft.cid, draft.client_msg_id)
    if outcome is not None:
        await driver.rollback()
        return outcome
    if admit is not None:
        await admit(conn)
    seq, endpoints = await driver.call(_stored, draft, author, stored_time(draft.now), delivery_kind)
    await driver.commit()
    return LineOutcome("stored", seq=seq, author=author, endpoints=endpoints)


def _checked(conn: sqlite3.Connection, cid: str, client_msg_id: str | None) -> tuple[LineOutcome | None, str]:
    """What stops the line, if anything (None: nothing), and the name it is stored under."""
    found = conn.execute(_CONVERSATION, (cid,)).fetchall()
    if not found:
        return LineOutcome("gone"), ANONYMOUS
    status, kind, unanswered, name = found[0]
    author = name or ANONYMOUS
    resent = conn.execute(_RESENT, (cid, client_msg_id)).fetchall()
    if resent:
        return LineOutcome("resent", found_id=resent[0][0]), author
    if status != Status.OPEN.value:
        return LineOutcome("closed"), author
    # the first line of a chat nobody owes an answer yet may tell the visitor their place in line: the
    # unit of work's (``bridge/craft.py``)
    if kind == "chat" and unanswered and not conn.execute(_HAS_SPOKEN, (cid, Role.VISITOR.value)).fetchall():
        return LineOutcome("first"), author
    return None, author


def _stored(
    conn: sqlite3.Connection, draft: Draft, author: str, at: object, delivery_kind: str
) -> tuple[int, tuple[str, ...]]:
    """The line with the next seq and its deliveries: (seq, the endpoints it was queued for)."""
    ((seq,),) = conn.execute(_NEXT_SEQ, (at, at, draft.cid)).fetchall()
    row = (draft.id, draft.cid, seq, Role.VISITOR.value, author, draft.text, draft.client_msg_id, draft.origin, at)
    conn.execute(_INSERT, row).close()
    queued = conn.execute(_QUEUE, (delivery_kind, draft.id, at, at, draft.cid)).fetchall()
    return int(seq), tuple(endpoint for (endpoint,) in queued)
