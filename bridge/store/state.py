"""Small durable state an endpoint keeps across restarts (Matrix sync token, device, access token), and
the instance-wide locks an endpoint may need (the Matrix session runs on one instance at a time)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.files import FileRules, Files
from bridge.store import sync_state
from bridge.store.database import Database

log = logging.getLogger(__name__)

#: how often a holder must look at its lock (``still_held``) at the least: a new holder waits longer
#: than that before it acts, so the two never overlap
LOCK_CHECK_SECONDS = 2.0
TAKEOVER_SECONDS = 3 * LOCK_CHECK_SECONDS
#: a lock connection that does not answer this fast is taken for gone
CHECK_TIMEOUT = 1.5


def exclusive_key(prefix: str, name: str) -> int:
    """The 64-bit advisory lock of one endpoint's exclusive ``name`` (apart from the lanes' by its text)."""
    digest = hashlib.blake2b(f"exclusive:{prefix}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SingleInstanceLease:
    """SQLite: one instance, so the lease is simply held."""

    takeover_seconds = 0.0

    async def still_held(self) -> bool:
        return True


class AdvisoryLease:
    """PostgreSQL: held as long as the session advisory lock's own connection lives."""

    takeover_seconds = TAKEOVER_SECONDS

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._lost = False

    async def still_held(self) -> bool:
        if self._lost:
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self._conn.execute(text("SELECT 1"))
                await self._conn.commit()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            # a session lock lives exactly as long as its connection: gone with it, or unknowable
            log.warning("exclusive lock: its connection failed (%s); taken for lost", type(exc).__name__)
            self._lost = True
        return not self._lost


class KeyValueState:
    def __init__(self, db: Database, prefix: str, clock: Callable[[], datetime], files: Files | None = None) -> None:
        self.db = db
        self.prefix = prefix
        self.clock = clock
        self.files = files or Files(db, clock, FileRules(max_bytes=10 * 1024 * 1024))

    async def get(self, key: str) -> str | None:
        async with self.db.read() as conn:
            return await sync_state.get_state(conn, f"{self.prefix}:{key}")

    async def put(self, key: str, value: str) -> None:
        async with self.db.write() as conn:
            await sync_state.put_state(conn, f"{self.prefix}:{key}", value, self.clock())

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[SingleInstanceLease | AdvisoryLease | None]:
        """Hold ``name`` across the instances while the block runs (None: another instance holds it).

        SQLite is one instance (a second refuses to start on the same file). On PostgreSQL a session
        advisory lock is taken with ``pg_try_advisory_lock`` on a connection of its own and held until
        the block ends; the lease's ``still_held`` tells when that connection (and so the lock) is gone.
        """
        if self.db.is_sqlite:
            yield SingleInstanceLease()
            return
        key = exclusive_key(self.prefix, name)
        async with self.db.engine.connect() as conn:
            got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar())
            await conn.commit()
            if not got:
                yield None
                return
            lease = AdvisoryLease(conn)
            try:
                yield lease
            finally:
                await _unlock(conn, key, lost=lease._lost)


async def _unlock(conn: AsyncConnection, key: int, *, lost: bool) -> None:
    """Give the lock back; a connection that cannot (cut, or in a failed transaction) is dropped
    rather than returned to the pool still holding it — a cut one took the lock with it anyway."""
    if not lost:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()
            return
        except (SQLAlchemyError, OSError, TimeoutError):
            pass
    with contextlib.suppress(SQLAlchemyError, OSError):
        await conn.rollback()
    with contextlib.suppress(SQLAlchemyError, OSError):
        await conn.invalidate()
