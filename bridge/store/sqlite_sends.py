"""A lane's plain sends recorded on SQLite in one call past SQLAlchemy: the twin of PostgreSQL's
``record_sends`` (``bridge/store/outbox.py``) — each delivery marked done with its post, and each post
remembered as its message's copy unless the delivery is gone, erased while on its way. Of deliveries
combined into one post, the first in the batch is its copy, as ``_record_each`` has it (PostgreSQL's takes
the lowest delivery id: the same, as the adapters report a batch's sends in their order).

The unit of work ran a statement per delivery and one for the copies, and SQLAlchemy's execution of each
cost the bridge several times what SQLite's did (``bench/relay_ceiling.py``): here both are one
``executemany`` each, built once, and the commit. The timestamps are written as SQLAlchemy writes them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.outbox import PlainSend
from bridge.store.sqlite_calls import driver_of
from bridge.store.sqlite_lines import stored_time

# as ``mark_done`` does for a send that made one post
_DONE = (
    "UPDATE delivery SET done = 1, done_at = ?, remote_id = ?, in_doubt = 0, last_error = NULL,"
    " remote_parts = NULL WHERE id = ?"
)
_REMEMBER = (
    "INSERT INTO message_link (endpoint, remote_id, message_id, conversation_id, created_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


async def record_sends(
    conn: AsyncConnection, endpoint: str, cid: str, sends: Sequence[PlainSend], now: datetime
) -> set[int]:
    """``outbox.record_sends`` on SQLite, committed; ``conn``: ``Database.sqlite_writer``'s. The ids marked
    done; the others are gone."""
    driver = driver_of(conn)
    done = await driver.call(_recorded, endpoint, cid, sends, stored_time(now))
    await driver.commit()
    return done


def _recorded(conn: sqlite3.Connection, endpoint: str, cid: str, sends: Sequence[PlainSend], at: object) -> set[int]:
    ids = [s.delivery_id for s in sends]
    marked = conn.executemany(_DONE, [(at, s.remote_id, s.delivery_id) for s in sends]).rowcount
    done = set(ids)
    if marked != len(ids):  # some were erased on their way: which ones are still there
        found = conn.execute(f"SELECT id FROM delivery WHERE id IN ({', '.join('?' * len(ids))})", ids).fetchall()
        done = {i for (i,) in found}
    copies: dict[str, tuple[object, ...]] = {}
    for s in sends:
        if s.delivery_id in done and s.remote_id and s.message_id and s.remote_id not in copies:
            copies[s.remote_id] = (endpoint, s.remote_id, s.message_id, cid, at)
    if copies:
        conn.executemany(_REMEMBER, list(copies.values())).close()
    return done
