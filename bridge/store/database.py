"""The engine, transactions, migrations and the locks that keep several instances (or one) honest."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from bridge.store import sqlite_calls
from bridge.store.pool_checks import check_if_idle, idle_from_now

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseInUse(Exception):
    """A second instance on the same SQLite file (SQLite means one instance)."""


#: how long a lane's deliveries stay reserved for the instance that is sending them (PostgreSQL): longer
#: than any endpoint's request timeout, so an instance cut off from the database mid-send has given up
#: before another instance may take the lane over
SEND_LEASE_SECONDS = 15.0


def connection_lost(exc: BaseException) -> bool:
    """A database connection that was cut (restart, failover, ``pg_terminate_backend``), as opposed to a
    bug: worth one warning line, not a traceback — what used it is tried again on a new connection."""
    if isinstance(exc, OSError | InterfaceError | LeaseLost):
        return True
    if isinstance(exc, DBAPIError):
        # asyncpg reports a connection killed mid-rollback as "another operation is in progress"
        return exc.connection_invalidated or "another operation" in str(exc) or "closed" in str(exc)
    return False


class LeaseLost(Exception):
    """The connection that held a lane's lock is gone: another instance may be sending; stop."""


class LaneLease:
    """The right to send one lane's deliveries (a session advisory lock on PostgreSQL).

    ``fenced()`` runs a write on the very connection that holds the lock: if that connection was
    cut (a PostgreSQL restart, ``pg_terminate_backend``, a network blip), the lock is gone with it
    and the write fails, so the sender stops before it sends what another instance now owns.
    """

    def __init__(self, db: Database, conn: AsyncConnection | None) -> None:
        self._db = db
        self._conn = conn

    @property
    def seconds(self) -> float:
        """How long a marked attempt keeps its deliveries from other senders (0: nobody else sends)."""
        return 0.0 if self._conn is None else SEND_LEASE_SECONDS

    @asynccontextmanager
    async def fenced(self) -> AsyncIterator[AsyncConnection]:
        """A write, committed on the lock's own connection (SQLite: an ordinary write)."""
        if self._conn is None:
            async with self._db.write() as conn:
                yield conn
            return
        async with self._on_lock_connection() as conn:
            yield conn

    def sqlite_writer(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """SQLite (one instance: no lock is held): ``Database.sqlite_writer``, for statements of our own."""
        assert self._conn is None, "PostgreSQL: use statements()"
        return self._db.sqlite_writer()

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[AsyncConnection]:
        """Statements on the lock's own connection as ``fenced()``, but each committed on its own (on
        PostgreSQL in autocommit: no BEGIN and COMMIT, two round trips that cost the bridge more than a
        lane's short statements cost the server). For work whose statements are each whole: the lock
        keeps other senders out, and READ COMMITTED would give each statement a snapshot of its own
        anyway. SQLite: an ordinary write."""
        if self._conn is None:
            async with self._db.write() as conn:
                yield conn
            return
        held = self._held()  # first: SQLAlchemy would connect again to apply the option below
        await held.execution_options(isolation_level="AUTOCOMMIT")
        try:
            async with self._on_lock_connection() as conn:
                yield conn
        except BaseException:
            # back to transactions, unless the connection is gone; nothing here replaces the error
            with contextlib.suppress(SQLAlchemyError, OSError):
                if not held.invalidated:
                    await held.execution_options(isolation_level=TRANSACTIONS)
            raise
        await held.execution_options(isolation_level=TRANSACTIONS)

    def _held(self) -> AsyncConnection:
        """The lock's connection, while it is the one that holds the lock."""
        assert self._conn is not None
        if self._conn.invalidated:
            # SQLAlchemy would quietly connect again: a new session, which does not hold the lock
            raise LeaseLost("the lane's lock connection was dropped")
        return self._conn

    @asynccontextmanager
    async def _on_lock_connection(self) -> AsyncIterator[AsyncConnection]:
        conn = self._held()
        try:
            yield conn
            await conn.commit()
        except (DBAPIError, OSError) as exc:
            # whatever went wrong, the lock connection must not stay inside a failed transaction
            with contextlib.suppress(DBAPIError, OSError):
                await conn.rollback()
            if isinstance(exc, OSError | InterfaceError) or exc.connection_invalidated or conn.invalidated:
                raise LeaseLost(str(exc)) from exc
            raise
        except BaseException:
            with contextlib.suppress(DBAPIError, OSError):
                await conn.rollback()
            raise


#: PostgreSQL's isolation level for transactions (its connections are in autocommit otherwise)
TRANSACTIONS = "READ COMMITTED"
#: PostgreSQL's pool per instance (two instances stay well under PostgreSQL's default 100 connections),
#: of which lanes sending may hold all but the reserve
POOL_SIZE, POOL_OVERFLOW, POOL_RESERVED = 10, 20, 10


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        #: lanes that may hold their lock at once: on PostgreSQL each holds a pooled connection while it
        #: sends, and the widget API must always find one free; SQLite's locks are in-process (no limit)
        self.max_lane_locks: int | None = None if self.is_sqlite else POOL_SIZE + POOL_OVERFLOW - POOL_RESERVED
        #: this process among the instances on one database (PostgreSQL's application_name, NOTIFY)
        self.instance = secrets.token_hex(6)
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            # a partitioned database must fail fast (readiness, Slack's 3 s), not after asyncpg's 60 s
            connect_args = {"timeout": 5, "server_settings": {"application_name": f"sitechat-{self.instance}"}}
            # reads in autocommit: a READ COMMITTED transaction gives each statement a snapshot of its own
            # anyway, and BEGIN and ROLLBACK are two round trips, each costing the bridge more CPU than a
            # short read costs the server (the pool's check of a connection, too, is one round trip then,
            # where SQLAlchemy wraps it in BEGIN … ROLLBACK outside autocommit)
            kwargs.update(
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                # the connection used last is taken first: the busy ones stay busy (no check needed), the
                # rest sit idle and are checked when next taken (``pool_checks.check_if_idle``)
                pool_use_lifo=True,
                connect_args=connect_args,
                isolation_level="AUTOCOMMIT",
            )
        #: on PostgreSQL in autocommit: ``engine.begin()`` is no transaction there (``write()`` is)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if not self.is_sqlite:
            event.listen(self.engine.sync_engine.pool, "checkin", idle_from_now)
            event.listen(self.engine.sync_engine.pool, "checkout", partial(check_if_idle, self.engine.dialect))
        #: the same pool, in transactions (PostgreSQL): writes, a lane's lock connection, bulk reads
        #: (streamed through a cursor, which lives in a transaction)
        self.transactions = (
            self.engine if self.is_sqlite else self.engine.execution_options(isolation_level=TRANSACTIONS)
        )
        # SQLite has one writer: queue our writers here instead of meeting "database is locked".
        self._write_lock = asyncio.Lock()
        self._file_lock: int | None = None
        #: copies SQLite's write-ahead log into the file off the loop (its statements run on the loop)
        self.checkpoints: sqlite_calls.Checkpoints | None = None
        if self.is_sqlite:
            path = self.sqlite_path
            if path is not None:
                self.checkpoints = sqlite_calls.Checkpoints(str(path))
            # statements on the loop's thread, or one hand-off to aiosqlite's thread each (sqlite_calls.py)
            event.listen(self.engine.sync_engine, "do_connect", self._sqlite_connect)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            # pysqlite opens transactions lazily; let SQLAlchemy emit BEGIN so reads are consistent.
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        db = make_url(self.url).database
        return None if not db or db == ":memory:" else Path(db).resolve()

    def claim_single_instance(self) -> None:
        """Refuse a second ``sitechat run`` on the same SQLite file (lock held until the process ends)."""
        path = self.sqlite_path
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseInUse(
                f"another sitechat instance is already using {path}. SQLite allows one instance; "
                "stop the other one, or use PostgreSQL (SITECHAT_DATABASE_URL=postgresql+asyncpg://…) "
                "to run several"
            ) from None
        self._file_lock = fd

    async def migrate(self) -> None:
        cfg = Config(str(MIGRATIONS / "alembic.ini"))
        cfg.set_main_option("script_location", str(MIGRATIONS))

        def upgrade(sync_conn: Connection) -> None:
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, "head")

        async with self.write(bulk=True) as conn:
            if not self.is_sqlite:
                # several instances may start at once: one migrates, the others wait for it
                await conn.execute(text("SELECT pg_advisory_xact_lock(7265812)"))
            await conn.run_sync(upgrade)

    @asynccontextmanager
    async def write(self, *, bulk: bool = False) -> AsyncIterator[AsyncConnection]:
        """One write transaction, committed on success. Never await the network inside it. ``bulk``: it
        writes many rows (SQLite runs it off the event loop's thread)."""
        if not self.is_sqlite:
            async with self.transactions.begin() as conn:
                yield conn
            return
        async with self._write_lock, self._checked_out(self.engine) as conn:
            # the write lock taken at BEGIN, where waiting for another process's writer can succeed
            with _sqlite_mode(conn, immediate=True, on_thread=bulk):
                async with conn.begin():
                    yield conn
        if bulk and self.checkpoints is not None:
            self.checkpoints.committed(bulk=True)

    @asynccontextmanager
    async def sqlite_writer(self) -> AsyncIterator[AsyncConnection]:
        """SQLite: the one writer's connection, for statements of the caller's own in one call each
        (``sqlite_calls.driver_of(conn).call``) where SQLAlchemy's execution of each would cost more than
        SQLite's; the caller commits, and what it leaves open is rolled back."""
        assert self.is_sqlite, "PostgreSQL: use write()"
        async with self._write_lock, self._checked_out(self.engine) as conn, sqlite_calls.own_statements(conn):
            yield conn

    @asynccontextmanager
    async def read(self, *, bulk: bool = False) -> AsyncIterator[AsyncConnection]:
        """``bulk``: it reads many rows (SQLite runs it off the event loop's thread; PostgreSQL reads it in
        one transaction, else each statement runs on its own, in autocommit)."""
        async with self._checked_out(self.transactions if bulk else self.engine) as conn:
            with _sqlite_mode(conn, immediate=False, on_thread=bulk):
                yield conn

    @asynccontextmanager
    async def _checked_out(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for the block. SQLite's goes back in place: SQLAlchemy's ``async with``
        closes it in a task of its own, a loop pass later (so that a cancel cannot cut the close short),
        and until then it stays out of the pool — a burst of requests in one pass each took another, past
        the pool's 5, made and dropped again (for one socket opened in ten: a fifth of the server's CPU,
        ``bench/idle_sockets.py``), and a write held SQLite's one writer for that pass too. Going back to
        the pool has nothing to wait for on SQLite (its statements run on the loop's thread), so nothing
        for a cancel to cut short. PostgreSQL's close may be a round trip: there SQLAlchemy's task keeps
        it whole, as it does for a SQLite connection the pool will close instead of keeping."""
        if not self.is_sqlite:
            async with engine.connect() as conn:
                yield conn
            return
        conn = await engine.connect()
        try:
            yield conn
        finally:
            pool = engine.sync_engine.pool
            if isinstance(pool, QueuePool) and pool.checkedin() >= pool.size():
                # the pool is full, so this one is closed, on aiosqlite's thread: SQLAlchemy's task then,
                # or a cancel meeting the close would be logged as a failure to close it
                await conn.__aexit__(None, None, None)
            else:
                await conn.close()

    @asynccontextmanager
    async def lane_lock(self, lane: str) -> AsyncIterator[LaneLease | None]:
        """Hold the right to send for one (conversation, endpoint) lane: one sender, so order holds.
        None when another instance holds it.

        SQLite is one instance, so the caller's in-process bookkeeping is enough. On PostgreSQL a
        session advisory lock is held on a dedicated connection while the lane is worked.
        """
        if self.is_sqlite:
            yield LaneLease(self, None)
            return
        key = int.from_bytes(hashlib.blake2b(lane.encode(), digest_size=8).digest(), "big", signed=True)
        async with self.transactions.connect() as conn:
            # the lock and the unlock straight to the driver, outside any transaction: one round trip
            # each, where SQLAlchemy would send BEGIN and COMMIT around them (a batch's work is enough)
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            try:
                got = bool(await driver.fetchval("SELECT pg_try_advisory_lock($1)", key))
            except Exception as exc:  # the driver's own errors: the connection is gone, or going
                # SQLAlchemy never saw the error: the connection must not go back to the pool as good
                with contextlib.suppress(DBAPIError, OSError):
                    await conn.invalidate()
                raise LeaseLost(f"cannot ask for the lane's lock ({type(exc).__name__}: {exc})") from exc
            try:
                yield LaneLease(self, conn) if got else None
            finally:
                if got:
                    try:
                        await driver.fetchval("SELECT pg_advisory_unlock($1)", key)
                    except Exception:
                        # a connection that cannot say "unlock" must not go back to the pool still
                        # holding the lock: drop it (a cut one took the lock with it anyway)
                        log.info("lane %s: its lock connection is gone; dropping it", lane)
                        with contextlib.suppress(DBAPIError, OSError):
                            await conn.invalidate()

    def _sqlite_connect(self, dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        on_commit = self.checkpoints.committed if self.checkpoints is not None else None
        return dialect.dbapi.connect(
            *cargs, async_creator_fn=partial(sqlite_calls.connect, on_commit=on_commit), **cparams
        )

    async def ping(self) -> None:
        async with self._checked_out(self.engine) as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self.checkpoints is not None:
            await self.checkpoints.wait()
        await self.engine.dispose()
        if self._file_lock is not None:
            os.close(self._file_lock)
            self._file_lock = None


@contextlib.contextmanager
def _sqlite_mode(conn: AsyncConnection, *, immediate: bool, on_thread: bool) -> Iterator[None]:
    """How the SQLite driver connection under ``conn`` begins and where it runs, while it is checked out
    (reached without I/O; nothing to do on PostgreSQL, or when both are the defaults)."""
    sync = conn.sync_connection
    driver = sync.connection.driver_connection if sync is not None and (immediate or on_thread) else None
    if not isinstance(driver, sqlite_calls.OneCallConnection):
        yield
        return
    driver.immediate, driver.on_thread = immediate, on_thread
    try:
        yield
    finally:
        driver.immediate = driver.on_thread = False


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    # never wait, never checkpoint on the loop's thread (sqlite_calls.py): first, before anything can wait
    cur.execute("PRAGMA busy_timeout=0")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    driver = conn.connection.driver_connection
    if isinstance(driver, sqlite_calls.OneCallConnection):
        driver.begin_with_next_statement()  # the same BEGIN, sent along with the first statement
    else:
        conn.exec_driver_sql("BEGIN")
