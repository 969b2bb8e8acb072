"""SQLite through aiosqlite, with the short statements run on the event loop's own thread.

aiosqlite runs every sqlite3 call on a thread of its own, and SQLAlchemy's adapter makes four such
calls for one statement (make a cursor, execute, fetch, close the cursor) plus one for ``BEGIN``, and a
``ROLLBACK`` when a connection goes back to the pool even after its ``COMMIT``. Each hand-off wakes the
thread and then the event loop and has the two threads take turns at the GIL: tens of microseconds of
CPU each, most of it kernel time, and the single writer's lock stays held across every one of them.

Here a statement is one call (execute, fetch what it returned, close), ``BEGIN`` goes along with the
statement that follows it, and a rollback of a connection that is in no transaction is not sent at all.
And a statement runs right on the loop's thread: the ones a chat sends touch a handful of rows through
an index and take microseconds, less than a hand-off. That holds only while nothing makes SQLite wait, so
the connections never wait (``busy_timeout`` 0) and never checkpoint on commit (``wal_autocheckpoint``
0): a statement SQLite refuses as busy — another process writing to the file, ``sitechat forget`` say —
is run again on aiosqlite's thread, which may wait (write transactions begin ``IMMEDIATE``, so the refusal
comes at their start, where waiting helps; mid-transaction it is final, as it is in SQLite itself);
``Checkpoints`` copies the write-ahead log into the
database on a thread of its own; and work that reads or writes many rows (exports, reports, retention)
asks for the thread (``Database.read(bulk=True)``, ``write(bulk=True)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

#: rows taken with the statement itself; a larger result is fetched on demand (a streamed export)
PREFETCH = 256

_Description = tuple[tuple[Any, ...], ...] | None
_T = TypeVar("_T")

#: how long a statement run on the worker thread waits for another writer (the ``busy_timeout`` that the
#: connections had before their statements moved to the loop)
BUSY_WAIT_SECONDS = 10.0


#: a deferred transaction that read before another connection committed can never write: no waiting helps
_BUSY_SNAPSHOT = getattr(sqlite3, "SQLITE_BUSY_SNAPSHOT", 517)


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY and code != _BUSY_SNAPSHOT


def _worth_waiting(exc: sqlite3.OperationalError, fn: Callable[..., Any], args: tuple[Any, ...], was_in: bool) -> bool:
    """Whether waiting for the other writer and running ``fn`` again can succeed: only where SQLite
    itself would have waited — a statement that opens the transaction (``_statement`` rolled back what
    its ``BEGIN`` opened), one outside any transaction, or a commit. In the middle of a transaction a busy
    answer is final (SQLite does not wait there either)."""
    if not _busy(exc):
        return False
    opens = fn is _statement and args[1] is not None
    return opens or not was_in or fn is _commit


class OneCallConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors execute and fetch in one call, on the loop's thread or on
    the worker thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int = 64) -> None:
        super().__init__(connector, iter_chunk_size)
        self._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
        #: ``BEGIN`` asked for and not sent yet: it goes with the next statement
        self._begin_pending = False
        #: transactions take the write lock as they begin (``BEGIN IMMEDIATE``): a write transaction's
        #: (``Database.write``), where waiting for another process's writer is still possible
        self.immediate = False
        #: True when this connection is known to be in no transaction (our own calls keep it up to date)
        self._idle = False
        #: run every statement on aiosqlite's thread (the connection is checked out for work on many rows)
        self.on_thread = False
        #: told of each commit (``Checkpoints.committed``)
        self.on_commit: Callable[[], None] = lambda: None
        #: a ``call`` was cancelled and may still run on aiosqlite's thread: the connection must go
        self.abandoned = False

    def begin_with_next_statement(self) -> None:
        """``BEGIN`` (deferred: it takes no lock by itself), sent together with the next statement."""
        self._begin_pending = True

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # any call besides ours may start or end a transaction: its state is unknown afterwards
        self._idle = False
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the loop's thread; on aiosqlite's when asked to, or to wait for another writer."""
        if not self.on_thread:
            was_in = self._conn.in_transaction
            try:
                return fn(*args)
            except sqlite3.OperationalError as exc:
                if not _worth_waiting(exc, fn, args, was_in):
                    raise
            # another connection holds the write lock: wait for it on the thread, never on the loop
        return await super()._execute(_waiting, self._conn, fn, *args)  # type: ignore[no-untyped-call]

    def cursor(self) -> _Cursor:  # type: ignore[override]  # a cursor of ours, ready at once (no hand-off)
        return _Cursor(self)

    async def run(
        self, sql: str, parameters: Iterable[Any], many: bool = False
    ) -> tuple[list[Any], sqlite3.Cursor | None, _Description, int, int | None]:
        """Execute one statement (after a pending ``BEGIN``) and take up to ``PREFETCH`` of its rows, in one
        call: (rows, the open sqlite3 cursor when more rows may follow, description, rowcount, lastrowid)."""
        begin = ("BEGIN IMMEDIATE" if self.immediate else "BEGIN") if self._begin_pending else None
        self._begin_pending = False
        self._idle = False
        result = await self._call(_statement, self._conn, begin, sql, parameters, many)
        *answer, in_transaction = result
        self._idle = not in_transaction
        rows, cursor, description, rowcount, lastrowid = answer
        return rows, cursor, description, rowcount, lastrowid

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(the sqlite3 connection, *args)`` in one call: statements of the caller's own, in this
        connection's transaction, which the call opens (``BEGIN IMMEDIATE``) when none is open; the caller
        ends it (``commit``, ``rollback``). For a hot path whose statements SQLAlchemy would each execute at
        several times SQLite's own cost (``bridge/store/sqlite_lines.py``). Refused as busy at its opening,
        it waits on aiosqlite's thread and runs again, as a statement does."""
        self._begin_pending = False  # its BEGIN is the call's
        self._idle = False
        try:
            result: _T = await self._call(_in_transaction, self._conn, fn, *args)
        except Exception:
            self._idle = not self._conn.in_transaction
            raise
        except BaseException:
            # cancelled: a call waiting on aiosqlite's thread goes on, and may yet open a transaction there
            self.abandoned = True
            raise
        self._idle = not self._conn.in_transaction
        return result

    async def commit(self) -> None:
        await self._end(_commit)

    async def rollback(self) -> None:
        await self._end(_rollback)

    async def _end(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        if self._begin_pending or self._idle:
            # a BEGIN never sent, or no transaction at all: nothing to commit or roll back
            self._begin_pending = False
            return
        await self._call(fn, self._conn)
        self._idle = True
        if fn is _commit:
            self.on_commit()


def _statement(
    conn: sqlite3.Connection, begin: str | None, sql: str, parameters: Any, many: bool
) -> tuple[list[Any], sqlite3.Cursor | None, _Description, int, int | None, bool]:
    """One statement, after the ``BEGIN`` that is pending, if one is."""
    if begin is not None:
        conn.execute(begin)
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchmany(PREFETCH) if description else []
        more = bool(description) and len(rows) == PREFETCH
    except BaseException as exc:
        cursor.close()
        if begin is not None and isinstance(exc, sqlite3.OperationalError) and _busy(exc):
            conn.rollback()  # what its BEGIN opened: run again, the statement begins anew
        raise
    rowcount, lastrowid = cursor.rowcount, cursor.lastrowid
    if not more:
        cursor.close()
    return rows, cursor if more else None, description, rowcount, lastrowid, conn.in_transaction


@contextlib.asynccontextmanager
async def own_statements(conn: AsyncConnection) -> AsyncIterator[None]:
    """For a block that runs statements of its own on ``conn`` (``OneCallConnection.call``) and commits
    them: what it leaves open is rolled back, its sqlite3 errors come out as SQLAlchemy raises them for its
    own statements (a busy database: the API's 503, not a 500), and after a cancel the connection goes, as
    SQLAlchemy's own do."""
    driver = driver_of(conn)
    try:
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, Exception):
                driver.abandoned = True
            raise
        finally:
            # a call cancelled while it waited for another process's writer on aiosqlite's thread may still
            # open a transaction there, whatever became of the cancel since (a timeout turns it into an error)
            if driver.abandoned:
                await conn.invalidate()
            elif not conn.invalidated:
                await driver.rollback()  # nothing to do once committed
    except sqlite3.Error as exc:
        raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc


def driver_of(conn: AsyncConnection) -> OneCallConnection:
    """The connection of ours under SQLAlchemy's ``conn`` (checked out)."""
    sync = conn.sync_connection
    driver = sync.connection.driver_connection if sync is not None else None
    assert isinstance(driver, OneCallConnection), driver
    return driver


def _in_transaction(conn: sqlite3.Connection, fn: Callable[..., _T], *args: Any) -> _T:
    """``OneCallConnection.call``: what fails in the transaction it opened is rolled back at once, so that
    a busy refusal can be run again from the start."""
    if conn.in_transaction:
        return fn(conn, *args)
    conn.execute("BEGIN IMMEDIATE")
    try:
        return fn(conn, *args)
    except BaseException:
        conn.rollback()
        raise


def _waiting(conn: sqlite3.Connection, fn: Callable[..., Any], *args: Any) -> Any:
    """On the worker thread: ``fn(*args)`` again while another writer holds the lock and waiting can
    help (``_worth_waiting``), for up to ``BUSY_WAIT_SECONDS`` — what ``busy_timeout`` did."""
    was_in = conn.in_transaction
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    pause = 0.001
    while True:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if time.monotonic() >= deadline or not _worth_waiting(exc, fn, args, was_in):
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _commit(conn: sqlite3.Connection) -> None:
    conn.commit()


def _rollback(conn: sqlite3.Connection) -> None:
    conn.rollback()


def _fetch(cursor: sqlite3.Cursor, size: int | None) -> list[Any]:
    return cursor.fetchall() if size is None else cursor.fetchmany(size)


def _fetch_rest(cursor: sqlite3.Cursor, size: int | None) -> list[Any]:
    """Rows after the prefetched ones; the cursor is closed once they run out."""
    rows = _fetch(cursor, size)
    if size is None or len(rows) < size:
        cursor.close()
    return rows


class _Cursor:
    """What SQLAlchemy's aiosqlite adapter needs of a cursor; the rows of a statement come with it."""

    def __init__(self, conn: OneCallConnection) -> None:
        self._conn = conn
        self._rows: list[Any] = []
        self._open: sqlite3.Cursor | None = None
        self.description: _Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def __await__(self) -> Generator[Any, None, _Cursor]:
        return self.__aenter__().__await__()

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> _Cursor:
        await self.close()
        self._rows, self._open, self.description, self.rowcount, self.lastrowid = await self._conn.run(
            sql, () if parameters is None else parameters
        )
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> _Cursor:
        await self.close()
        self._rows, self._open, self.description, self.rowcount, self.lastrowid = await self._conn.run(
            sql, parameters, many=True
        )
        return self

    async def fetchone(self) -> Any:
        rows = await self.fetchmany(1)
        return rows[0] if rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        size = self.arraysize if size is None else size
        if len(self._rows) < size and self._open is not None:
            self._rows += await self._more(size - len(self._rows))
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchall(self) -> Sequence[Any]:
        if self._open is not None:
            self._rows += await self._more(None)
        rows, self._rows = self._rows, []
        return rows

    async def _more(self, size: int | None) -> list[Any]:
        assert self._open is not None
        cursor = self._open
        rows: list[Any] = await self._conn._call(partial(_fetch_rest, cursor, size))
        if size is None or len(rows) < size:
            self._open = None
        return rows

    async def __aiter__(self) -> AsyncIterator[Any]:
        while rows := await self.fetchmany(self._conn._iter_chunk_size):
            for row in rows:
                yield row

    async def close(self) -> None:
        self._rows = []
        if self._open is not None:
            cursor, self._open = self._open, None
            await self._conn._call(cursor.close)


def connect(*args: Any, on_commit: Callable[[], None] | None = None, **kwargs: Any) -> OneCallConnection:
    """Like ``aiosqlite.connect`` (the arguments of ``sqlite3.connect``), not yet awaited. The connection
    is made on aiosqlite's thread and used from the loop's too (never from both at once)."""
    conn = OneCallConnection(partial(sqlite3.connect, *args, **{**kwargs, "check_same_thread": False}))
    if on_commit is not None:
        conn.on_commit = on_commit
    return conn


class Checkpoints:
    """Copies the write-ahead log back into the database file on a thread, every ``every`` commits.

    SQLite does it by itself on the commit that finds the log past 1,000 pages, on the committing thread
    — the loop's, here — and a checkpoint writes and syncs the file: milliseconds to hundreds of them
    with every chat waiting. A ``PASSIVE`` checkpoint takes no lock that writers or readers wait for.
    """

    def __init__(self, path: str, every: int = 200) -> None:
        self._path = path
        self._every = every
        self._commits = 0
        self._running: asyncio.Future[None] | None = None

    def committed(self, *, bulk: bool = False) -> None:
        """A commit; ``bulk``: one that wrote many pages, checkpointed at once."""
        self._commits += 1
        if (self._commits < self._every and not bulk) or (self._running is not None and not self._running.done()):
            return
        self._commits = 0
        with contextlib.suppress(RuntimeError):  # no running loop: the next commit tries again
            self._running = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            # mode=rw: a file that is gone is not made anew (and the path is taken as a path, not a URI)
            uri = f"{Path(self._path).as_uri()}?mode=rw"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=BUSY_WAIT_SECONDS)) as conn:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass  # the log stays a little longer; the next one copies it

    async def wait(self) -> None:
        """The checkpoint under way, if any, has finished (before the engine closes)."""
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running
