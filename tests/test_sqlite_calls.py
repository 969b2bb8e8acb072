"""SQLite's one-call-per-statement driver (bridge/store/sqlite_calls.py) behaves as aiosqlite does: rows
past the prefetch, streamed results, RETURNING, primary keys, executemany, savepoints, errors. Its short
statements run on the event loop's thread, yet another process holding the write lock never stalls the
loop, bulk work runs on the worker thread, and the write-ahead log is checkpointed off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store import sqlite_calls
from bridge.store.database import Database

metadata = MetaData()
item = Table("item", metadata, Column("id", Integer, primary_key=True), Column("name", String(20), unique=True))


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    async with database.write() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.close()


async def test_connections_are_one_call_ones(db: Database) -> None:
    async with db.read() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_calls.OneCallConnection)


async def test_rows_past_the_prefetch_and_streamed(db: Database) -> None:
    count = 2 * sqlite_calls.PREFETCH + 7
    async with db.write() as conn:
        await conn.execute(insert(item), [{"name": f"n{i}"} for i in range(count)])  # executemany
    async with db.read() as conn:
        assert len((await conn.execute(select(item))).all()) == count
        assert (await conn.execute(select(item.c.name).where(item.c.id == 3))).scalar_one() == "n2"
        streamed = [row.name async for row in await conn.stream(select(item).order_by(item.c.id))]
        assert streamed == [f"n{i}" for i in range(count)]
        partial = await conn.stream(select(item).order_by(item.c.id))
        assert [r.name for r in await partial.fetchmany(3)] == ["n0", "n1", "n2"]
        await partial.close()  # an unfinished result closes its cursor
        assert (await conn.execute(select(item.c.id).where(item.c.name == "n5"))).scalar_one() == 6


async def test_returning_primary_keys_rowcounts_and_savepoints(db: Database) -> None:
    async with db.write() as conn:
        key = (await conn.execute(insert(item).values(name="a"))).inserted_primary_key
        assert key is not None and key[0] == 1
        renamed = await conn.execute(update(item).where(item.c.id == 1).values(name="b").returning(item.c.name))
        assert renamed.scalar_one() == "b"
        assert (await conn.execute(update(item).where(item.c.id == 99).values(name="c"))).rowcount == 0
        with pytest.raises(IntegrityError):
            async with conn.begin_nested():
                await conn.execute(insert(item).values(name="b"))
        await conn.execute(insert(item).values(name="c"))
    async with db.read() as conn:
        assert (await conn.execute(select(item.c.name).order_by(item.c.id))).scalars().all() == ["b", "c"]


async def test_a_failed_transaction_rolls_back_and_the_connection_goes_on(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(insert(item).values(name="x"))
            await conn.execute(insert(item).values(name="x"))
    async with db.write() as conn:
        await conn.execute(insert(item).values(name="y"))
    async with db.read() as conn:
        assert (await conn.execute(select(item.c.name))).scalars().all() == ["y"]
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_a_transaction_that_ran_nothing_commits(db: Database) -> None:
    async with db.write():
        pass
    async with db.write() as conn:
        await conn.execute(insert(item).values(name="z"))
    async with db.read() as conn:
        assert (await conn.execute(select(item.c.name))).scalars().all() == ["z"]


async def _thread_of_statements(conn: AsyncConnection) -> int:
    """The thread a statement on ``conn`` runs on (SQLite calls a function where the statement runs)."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert isinstance(driver, sqlite_calls.OneCallConnection)
    driver._conn.create_function("thread_id", 0, threading.get_ident)
    return int((await conn.execute(text("SELECT thread_id()"))).scalar_one())


async def test_short_statements_run_on_the_loop_and_bulk_ones_on_the_worker_thread(db: Database) -> None:
    loop_thread = threading.get_ident()
    async with db.read() as conn:
        assert await _thread_of_statements(conn) == loop_thread
    async with db.read(bulk=True) as conn:
        assert await _thread_of_statements(conn) != loop_thread
    async with db.write(bulk=True) as conn:
        assert await _thread_of_statements(conn) != loop_thread
    async with db.read() as conn:  # the connection back in the pool is an ordinary one again
        assert await _thread_of_statements(conn) == loop_thread


@dataclass
class ThreadWaits:
    """What a statement refused as busy does on aiosqlite's thread (``sqlite_calls._waiting``, watched)."""

    #: it met the other process's lock and waits for it on the thread
    met_the_lock: asyncio.Event = field(default_factory=asyncio.Event)
    #: the wait is over (it ran, or gave up)
    over: threading.Event = field(default_factory=threading.Event)


def watch_thread_waits(monkeypatch: pytest.MonkeyPatch) -> ThreadWaits:
    loop, seen, waiting_on_thread = asyncio.get_running_loop(), ThreadWaits(), sqlite_calls._waiting

    def waiting(*args: object) -> object:
        loop.call_soon_threadsafe(seen.met_the_lock.set)
        try:
            return waiting_on_thread(*args)  # type: ignore[arg-type]
        finally:
            seen.over.set()

    monkeypatch.setattr(sqlite_calls, "_waiting", waiting)
    return seen


async def test_another_process_writing_delays_a_write_without_stalling_the_loop(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    met_the_lock = watch_thread_waits(monkeypatch).met_the_lock
    other = sqlite3.connect(tmp_path / "calls.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock, as `sitechat forget` would in its process
    other.execute("INSERT INTO item (name) VALUES ('theirs')")

    async def write() -> None:
        async with db.write() as conn:
            await conn.execute(insert(item).values(name="ours"))

    waiting = asyncio.create_task(write())
    await met_the_lock.wait()  # our INSERT was refused as busy and waits on the worker thread
    # the loop still serves reads while our write waits for the lock (on the worker thread)
    async with db.read() as conn:
        assert (await conn.execute(select(item.c.name))).scalars().all() == []
    assert not waiting.done()
    other.execute("COMMIT")
    other.close()
    await waiting
    async with db.read() as conn:
        assert sorted((await conn.execute(select(item.c.name))).scalars().all()) == ["ours", "theirs"]


def _add(conn: sqlite3.Connection, *names: str) -> int:
    for name in names:
        conn.execute("INSERT INTO item (name) VALUES (?)", (name,))
    return len(names)


async def test_a_call_of_our_own_statements_waits_for_another_writer_and_fails_whole(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OneCallConnection.call`` (``Database.sqlite_writer``): as a statement does, it waits on the worker
    thread while another process writes; what fails in it, or is left uncommitted, leaves nothing."""
    met_the_lock = watch_thread_waits(monkeypatch).met_the_lock
    other = sqlite3.connect(tmp_path / "calls.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO item (name) VALUES ('theirs')")

    async def write() -> None:
        async with db.sqlite_writer() as conn:
            driver = sqlite_calls.driver_of(conn)
            assert await driver.call(_add, "ours") == 1
            assert await driver.call(_add, "ours too") == 1  # in the transaction the first call opened
            await driver.commit()

    writing = asyncio.create_task(write())
    await met_the_lock.wait()
    async with db.read() as conn:  # the loop goes on meanwhile
        assert (await conn.execute(select(item.c.name))).scalars().all() == []
    other.execute("COMMIT")
    other.close()
    await writing
    # out of the writer as SQLAlchemy raises it for its own statements (the API's 503 for a busy database)
    with pytest.raises(IntegrityError):
        async with db.sqlite_writer() as conn:
            await sqlite_calls.driver_of(conn).call(_add, "new", "ours")  # the second name is taken
    async with db.sqlite_writer() as conn:
        await sqlite_calls.driver_of(conn).call(_add, "never committed")
    async with db.write() as conn:  # SQLAlchemy's own transactions on the same connection go on as before
        await conn.execute(insert(item).values(name="through SQLAlchemy"))
    async with db.read() as conn:
        names = (await conn.execute(select(item.c.name).order_by(item.c.id))).scalars().all()
    assert names == ["theirs", "ours", "ours too", "through SQLAlchemy"]


async def test_a_call_abandoned_on_the_thread_takes_its_connection_along_whatever_the_cancel_became(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call cancelled while it waits for another process's writer goes on on aiosqlite's thread, and would
    open a transaction on a connection back in the pool: that connection is closed instead, also when the
    cancel comes out of the block as an error (``asyncio.timeout`` turns it into ``TimeoutError``)."""
    waits, cancelled = watch_thread_waits(monkeypatch), asyncio.Event()
    other = sqlite3.connect(tmp_path / "calls.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with db.sqlite_writer() as conn:
            call = asyncio.ensure_future(sqlite_calls.driver_of(conn).call(_add, "abandoned"))
            await waits.met_the_lock.wait()
            call.cancel()
            cancelled.set()
            try:
                await call
            except asyncio.CancelledError:
                raise TimeoutError from None  # as asyncio.timeout() has it

    writing = asyncio.create_task(write())
    await cancelled.wait()
    other.execute("ROLLBACK")  # the abandoned call gets the lock now
    other.close()
    with pytest.raises(TimeoutError):
        await writing
    assert await asyncio.to_thread(waits.over.wait, 10)
    third = sqlite3.connect(tmp_path / "calls.db", isolation_level=None, timeout=0)
    third.execute("BEGIN IMMEDIATE")  # nobody holds the lock
    third.execute("ROLLBACK")
    third.close()
    async with db.read() as conn:
        assert (await conn.execute(select(item.c.name))).scalars().all() == []


async def test_the_write_ahead_log_is_checkpointed_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    assert database.checkpoints is not None
    database.checkpoints = sqlite_calls.Checkpoints(str(path), every=5)  # before the first connection
    try:
        async with database.write() as conn:
            await conn.run_sync(metadata.create_all)
        for i in range(60):
            async with database.write() as conn:
                await conn.execute(insert(item), [{"name": f"{i:03d}-{j:04d}-{'x' * 11}"} for j in range(200)])
            await database.checkpoints.wait()
        wal, file = path.with_name(path.name + "-wal").stat().st_size, path.stat().st_size
        # SQLite never checkpoints on commit here: without ours every page would still be in the log
        assert wal < file / 3, (wal, file)
    finally:
        await database.close()


def _refused(code: int) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database is locked")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


BUSY, BUSY_SNAPSHOT, LOCKED, IOERR = 5, 517, 6, 10


@pytest.mark.parametrize(
    ("code", "call", "in_transaction", "worth"),
    [
        (BUSY, "begin", False, True),  # the statement that opens the transaction: begin again later
        (BUSY, "outside", False, True),  # no transaction at all (a PRAGMA)
        (BUSY, "commit", True, True),
        (BUSY, "inside", True, False),  # mid-transaction SQLite does not wait either: final
        (BUSY_SNAPSHOT, "begin", False, False),  # read before another commit: can never write
        (LOCKED, "outside", False, False),
        (IOERR, "begin", False, False),
    ],
)
def test_which_refusals_are_worth_waiting_for(code: int, call: str, in_transaction: bool, worth: bool) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    fn, args = {
        "begin": (sqlite_calls._statement, (conn, "BEGIN IMMEDIATE", "SELECT 1", (), False)),
        "outside": (sqlite_calls._statement, (conn, None, "PRAGMA busy_timeout=0", (), False)),
        "commit": (sqlite_calls._commit, (conn,)),
        "inside": (sqlite_calls._statement, (conn, None, "INSERT INTO t VALUES (1)", (), False)),
    }[call]
    assert sqlite_calls._worth_waiting(_refused(code), fn, args, in_transaction) is worth


def test_a_statement_refused_as_busy_leaves_no_transaction_of_its_own_open(tmp_path: Path) -> None:
    """So that it can begin again once the other writer is done (``_worth_waiting``: worth it)."""
    path = tmp_path / "journal.db"  # a rollback journal: there a reader meets another's exclusive lock
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE t (x)")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    ours = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as refused:
        sqlite_calls._statement(ours, "BEGIN", "SELECT x FROM t", (), False)
    assert sqlite_calls._worth_waiting(refused.value, sqlite_calls._statement, (ours, "BEGIN"), False)
    assert not ours.in_transaction
    other.execute("COMMIT")
    assert sqlite_calls._statement(ours, "BEGIN", "SELECT x FROM t", (), False)[0] == []
    for conn in (setup, other, ours):
        conn.close()


async def test_a_bulk_write_is_checkpointed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bulk.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with database.write() as conn:
            await conn.run_sync(metadata.create_all)
        async with database.write(bulk=True) as conn:
            await conn.execute(insert(item), [{"name": f"{i:06d}"} for i in range(20_000)])
        assert database.checkpoints is not None
        await database.checkpoints.wait()
        # the rows are in the database file itself, not only in its write-ahead log
        assert path.stat().st_size > 200_000
    finally:
        await database.close()
