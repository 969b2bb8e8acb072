"""Abuse limits that hold across every instance on one database (CONTRACT §2 and §3).

Counted in each process, a limit behind a load balancer would be N times its setting with N
instances. These are counted in the database instead, each use in one short write transaction:

- ``hit``: a sliding window per (bucket, key) — new conversations per client address, visitor
  messages per conversation. A row per counted use; a refused use is not counted.
- ``open_socket`` / ``close_socket``: a row per open widget socket, inserted only while fewer than
  the limit are open for its address, on any instance.

On PostgreSQL each transaction first takes a transaction advisory lock for its (bucket, key), so two
instances cannot both take the last place: under READ COMMITTED every statement after the lock sees
what the previous holder committed. A hit is one round trip there, the database function
``sitechat_rate_hit`` (migration 0010: lock, remove, count, insert — each after the lock, with a snapshot
of its own). SQLite has one writer, and one instance, already.

What removes rows: a key's expired hits go when it is hit again (bounded work per hit), every hit
older than ``MAX_WINDOW`` goes with each heartbeat (``purge_hits``); a socket's row goes when it
closes, an instance's rows when it stops, and the rows of an instance that is gone with the other
instances' heartbeat (``instances.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, delete, func, insert, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.conversations import utc
from bridge.store.database import Database
from bridge.store.tables import TS, open_socket, rate_hit

log = logging.getLogger(__name__)

#: the longest window a limit may have: hits older than this are purged whatever their bucket
MAX_WINDOW = timedelta(hours=1)
#: the bucket of the open-socket places (its lock key only; the rows are in ``open_socket``)
SOCKETS = "sockets"
#: keys stored as given: addresses (IPv4, IPv6 with a zone) and our ids, within the column's length
_PLAIN_KEY = re.compile(r"[A-Za-z0-9.:%_\[\]-]{1,100}")


def stored_key(key: str) -> str:
    """The key as given when it is a plain address or id; anything else (too long, odd characters: an
    ``X-Forwarded-For`` hop can hold anything) as its digest, which fits the column and every database."""
    if _PLAIN_KEY.fullmatch(key):
        return key
    return "#" + hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def lock_key(bucket: str, key: str) -> int:
    """The 64-bit advisory lock of one (bucket, key); apart from the lanes' locks by its prefix."""
    digest = hashlib.blake2b(f"limit\0{bucket}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class CountedUse:
    """One use to count against a limit in the transaction of what it is for (a visitor's line):
    ``limit`` uses of ``key`` in ``bucket`` per ``window`` seconds, this one at ``now``."""

    bucket: str
    key: str
    limit: int
    window: float
    now: datetime

    def __post_init__(self) -> None:
        if self.limit < 1 or not timedelta(0) < self.span <= MAX_WINDOW:
            raise ValueError(
                f"a limit of {self.limit} per {self.window} s: at least 1 use, and a window up to {MAX_WINDOW}"
            )

    @property
    def span(self) -> timedelta:
        return timedelta(seconds=self.window)

    @property
    def stored_key(self) -> str:
        return stored_key(self.key)

    @property
    def lock_key(self) -> int:
        return lock_key(self.bucket, self.stored_key)


def seconds_to_wait(oldest_counted: datetime, window: timedelta, now: datetime) -> float:
    """Until ``oldest_counted`` leaves the window and frees a place: whole seconds, at least 1 (``Retry-After``)."""
    # another instance may have counted a hit a moment "after" our now (its clock read later, or a little
    # ahead): the wait is never more than the window itself
    wait = math.ceil((oldest_counted + window - now).total_seconds())
    return float(min(max(1, wait), max(1, math.ceil(window.total_seconds()))))


class SharedLimits:
    """The limits of every instance on ``db``: this instance's view (its sockets carry its id)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: sockets closed while the database was away: their rows go with this instance's next socket
        #: opened or closed (or when it stops, or by the others' heartbeat once it is gone)
        self._unreleased: set[int] = set()

    async def hit(
        self, bucket: str, key: str, limit: int, window: float, now: datetime, conn: AsyncConnection | None = None
    ) -> float | None:
        """Count one use of ``key`` in ``bucket``: None if it is within ``limit`` uses per ``window``
        seconds, else the seconds to wait until a place frees up (the use is then not counted).
        ``conn``: the caller's transaction to count it in (a message's: no second connection while it
        holds one, and a message that is not stored costs no place); else a transaction of its own."""
        return await self.count(CountedUse(bucket, key, limit, window, now), conn)

    def counted_use(self, bucket: str, key: str, limit: int, window: float, now: datetime) -> CountedUse:
        """The use for the store to count with what it is for (``count``, or the database function that
        stores a visitor's line)."""
        return CountedUse(bucket, key, limit, window, now)

    async def count(self, use: CountedUse, conn: AsyncConnection | None = None) -> float | None:
        """``hit`` for ``use``; ``conn``: the transaction of what it is for (else one of its own)."""
        stored, since = use.stored_key, use.now - use.span
        async with contextlib.nullcontext(conn) if conn is not None else self.db.write() as tx:
            if self.db.is_sqlite:
                oldest = await self._hit_here(tx, use.bucket, stored, use.limit, since, use.now)
            else:
                key_lock = literal(use.lock_key, BigInteger())
                call = func.sitechat_rate_hit(key_lock, use.bucket, stored, use.limit, since, use.now, type_=TS)
                oldest = (await tx.execute(select(call))).scalar_one()
        # refused: a place frees up when the limit-th newest use leaves the window
        return None if oldest is None else seconds_to_wait(utc(oldest), use.span, use.now)

    @staticmethod
    async def _hit_here(
        conn: AsyncConnection, bucket: str, stored: str, limit: int, since: datetime, now: datetime
    ) -> datetime | None:
        """``sitechat_rate_hit`` (PostgreSQL's, migration 0010) as statements, for SQLite: its one writer
        needs no lock. None when the use is counted, else the limit-th newest use."""
        mine = (rate_hit.c.bucket == bucket) & (rate_hit.c.key == stored)
        await conn.execute(delete(rate_hit).where(mine, rate_hit.c.at <= since))
        newest = select(rate_hit.c.at).where(mine).order_by(rate_hit.c.at.desc()).limit(limit)
        counted: Sequence[datetime] = (await conn.execute(newest)).scalars().all()
        if len(counted) >= limit:
            return counted[-1]
        await conn.execute(insert(rate_hit).values(bucket=bucket, key=stored, at=now))
        return None

    async def open_socket(self, address: str, limit: int, now: datetime) -> int | None:
        """Take one of the address's ``limit`` places for a socket on this instance: the place's id, or
        None when all of them are taken (on whichever instances)."""
        stored = stored_key(address)
        unreleased = self._take_unreleased()
        try:
            async with self.db.write() as conn:
                await self._delete_sockets(conn, unreleased)
                await self._serialise(conn, SOCKETS, stored)
                count = select(func.count()).select_from(open_socket).where(open_socket.c.address == stored)
                if (await conn.execute(count)).scalar_one() >= limit:
                    place = None
                else:
                    values = {"instance_id": self.db.instance, "address": stored, "opened_at": now}
                    inserted = await conn.execute(insert(open_socket).values(**values))
                    key = inserted.inserted_primary_key
                    assert key is not None
                    place = int(key[0])
        except BaseException:
            self._unreleased |= unreleased
            raise
        return place

    async def close_socket(self, place: int) -> None:
        """Give a socket's place back. Never raises for a database that is away: the row is then
        removed later (see ``_unreleased``), and until then the place stays taken."""
        ids = self._take_unreleased() | {place}
        try:
            async with self.db.write() as conn:
                await self._delete_sockets(conn, ids)
        except Exception as exc:
            self._unreleased |= ids
            log.warning("could not give back %d socket place(s) yet (%s)", len(ids), type(exc).__name__)
        except BaseException:
            self._unreleased |= ids
            raise

    def _take_unreleased(self) -> set[int]:
        # taken, not shared: two transactions never delete the same rows (no lock order to get wrong)
        ids, self._unreleased = self._unreleased, set()
        return ids

    @staticmethod
    async def _delete_sockets(conn: AsyncConnection, ids: set[int]) -> None:
        if ids:
            await conn.execute(delete(open_socket).where(open_socket.c.id.in_(sorted(ids))))

    async def _serialise(self, conn: AsyncConnection, bucket: str, stored: str) -> None:
        """PostgreSQL: one transaction at a time per (bucket, key), across instances, until commit."""
        if not self.db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(bucket, stored)})


async def purge_hits(conn: AsyncConnection, now: datetime) -> None:
    """Hits older than the longest window, of keys not hit since (cheap: the index on ``at``)."""
    await conn.execute(delete(rate_hit).where(rate_hit.c.at <= now - MAX_WINDOW))


async def forget_sockets_of(conn: AsyncConnection, instance_id: str) -> None:
    """An instance's socket places (it stops, or it is gone)."""
    await conn.execute(delete(open_socket).where(open_socket.c.instance_id == instance_id))
