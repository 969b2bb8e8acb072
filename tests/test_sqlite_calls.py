"""SQLite's one-call-per-statement driver (bridge/store/sqlite_calls.py) behaves as aiosqlite does: rows
past the prefetch, streamed results, RETURNING, primary keys, executemany, savepoints, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError

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
