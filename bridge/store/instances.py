"""The instances sharing one database: heartbeats, who holds which lock, what waits in the outbox.

Every instance writes a heartbeat with its own clock and the database's, so ``sitechat doctor`` can
list the instances it sees, their clock skew and whether they hear each other (LISTEN). On
PostgreSQL the lane locks are advisory locks, readable from ``pg_locks`` by ``application_name``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.conversations import utc
from bridge.store.database import Database, connection_lost
from bridge.store.limits import forget_sockets_of, purge_hits
from bridge.store.tables import delivery, instance, open_socket

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10.0
#: an instance silent for this long is taken to be gone
GONE_AFTER = timedelta(seconds=45)


@dataclass(frozen=True)
class InstanceSeen:
    id: str
    host: str
    pid: int
    started_at: datetime
    #: the instance's clock minus the database's, at its last heartbeat
    skew_seconds: float
    #: seconds since its last heartbeat (by the database's clock)
    silent_seconds: float
    listening: bool


class Heartbeat:
    """This instance's row in ``instance``, refreshed until ``run()`` is cancelled, then removed.

    Each beat also tidies the shared limits (``limits.py``): the socket places of instances that are
    gone, and the rate-limit hits older than any window.
    """

    def __init__(self, db: Database, clock: Callable[[], datetime], listening: Callable[[], bool]) -> None:
        self.db = db
        self.clock = clock
        self.listening = listening
        self.started_at = clock()

    async def beat(self) -> None:
        values = {
            "heartbeat_at": self.clock(),
            "seen_at": func.now() if not self.db.is_sqlite else self.clock(),
            "listening": self.listening(),
        }
        async with self.db.write() as conn:
            changed = await conn.execute(update(instance).where(instance.c.id == self.db.instance).values(**values))
            if not changed.rowcount:
                row = {"id": self.db.instance, "host": socket.gethostname()[:200], "pid": os.getpid()}
                await conn.execute(insert(instance).values(**row, started_at=self.started_at, **values))
            await self._forget_gone_sockets(conn)
            await purge_hits(conn, self.clock())

    async def _forget_gone_sockets(self, conn: AsyncConnection) -> None:
        """The socket places held by instances that are gone: killed (no heartbeat for ``GONE_AFTER``,
        by the database's clock) or signed off (no row). SQLite is one instance: every place not ours
        is left over from an earlier run."""
        if self.db.is_sqlite:
            await conn.execute(delete(open_socket).where(open_socket.c.instance_id != self.db.instance))
            return
        alive = select(instance.c.id).where(instance.c.seen_at > func.now() - GONE_AFTER)
        await conn.execute(delete(open_socket).where(open_socket.c.instance_id.not_in(alive)))

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.beat()
                except Exception as exc:  # doctor shows the gap; nothing depends on the heartbeat
                    if not connection_lost(exc):
                        log.exception("heartbeat failed")
                await asyncio.sleep(HEARTBEAT_SECONDS)
        finally:
            await asyncio.shield(self._leave())

    async def _leave(self) -> None:
        try:
            async with self.db.write() as conn:
                await forget_sockets_of(conn, self.db.instance)
                await conn.execute(delete(instance).where(instance.c.id == self.db.instance))
        except Exception as exc:  # gone in a while anyway (GONE_AFTER)
            log.info("heartbeat: could not sign off (%s)", type(exc).__name__)


async def instances_seen(conn: AsyncConnection, is_sqlite: bool) -> list[InstanceSeen]:
    """The instances with a recent heartbeat, oldest first."""
    now = (await conn.execute(select(func.now()))).scalar() if not is_sqlite else None
    rows = (await conn.execute(select(instance).order_by(instance.c.started_at))).all()
    seen = []
    for r in rows:
        seen_at = utc(r.seen_at)
        reference = utc(now) if now is not None else seen_at
        silent = (reference - seen_at).total_seconds() if reference and seen_at else 0.0
        if silent > GONE_AFTER.total_seconds():
            continue
        skew = (utc(r.heartbeat_at) - seen_at).total_seconds()
        seen.append(InstanceSeen(r.id, r.host, r.pid, utc(r.started_at), skew, silent, bool(r.listening)))
    return seen


async def lane_locks_by_instance(conn: AsyncConnection) -> dict[str, int]:
    """PostgreSQL: how many lanes each instance is sending right now (its advisory locks)."""
    rows = await conn.execute(
        text(
            "SELECT a.application_name AS app, count(*) AS n FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'sitechat-%' "
            "GROUP BY a.application_name"
        )
    )
    return {str(r.app).removeprefix("sitechat-"): int(r.n) for r in rows}


async def outbox_backlog(conn: AsyncConnection) -> dict[str, tuple[int, datetime | None]]:
    """Per endpoint: pending deliveries and the oldest one's creation time."""
    rows = await conn.execute(
        select(delivery.c.endpoint, func.count(), func.min(delivery.c.created_at))
        .where(delivery.c.done.is_(False))
        .group_by(delivery.c.endpoint)
    )
    return {str(endpoint): (int(count), utc(oldest)) for endpoint, count, oldest in rows}
