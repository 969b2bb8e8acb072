"""PostgreSQL's pooled connections (``bridge/store/database.py``): checked before use only after sitting idle,
in autocommit outside transactions, and a transaction still a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import text

from bridge.store import database
from bridge.store.database import Database
from tests.conftest import PG_ADMIN


@pytest_asyncio.fixture
async def db(postgres_url: str) -> AsyncIterator[Database]:
    found = Database(postgres_url)
    await found.migrate()
    yield found
    await found.close()


async def _backends(db: Database) -> list[int]:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        rows = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", f"sitechat-{db.instance}"
        )
    finally:
        await admin.close()
    return [r["pid"] for r in rows]


async def _terminate(pids: list[int]) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def _read_pid(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_an_idle_connection_killed_meanwhile_is_replaced_before_it_is_used(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL restart, a proxy's timeout: the pooled connections die while idle. The next read must
    not be the one that finds out (it would fail a visitor's request): the check before use replaces them."""
    monkeypatch.setattr(database, "CHECK_AFTER_IDLE_SECONDS", 0.0)  # every pooled connection counts as idle
    before = await _read_pid(db)
    await _terminate(await _backends(db))
    after = await _read_pid(db)  # no error: checked, found dead, replaced
    assert after != before


async def test_connections_killed_a_moment_ago_are_replaced_before_use(db: Database) -> None:
    """A restart right after a burst: the pooled connections were in use a moment ago (no check is due), but
    the driver has seen them close — neither a read nor a lane's lock may be the one that finds out."""
    before = await _read_pid(db)
    async with db.lane_lock("slack:c1") as lease:
        assert lease is not None
    await _terminate(await _backends(db))
    for _ in range(3):
        async with db.lane_lock("slack:c1") as lease:
            assert lease is not None  # the lock taken on a live connection, every time
    assert await _read_pid(db) != before


async def test_a_connection_in_use_a_moment_ago_costs_no_check(db: Database) -> None:
    """A busy instance takes connections from the pool several times per message: no check round trip
    for one that was in use a moment ago (the check would be the first statement PostgreSQL sees)."""
    await _read_pid(db)
    seen: list[str] = []
    raw_ping = db.engine.dialect.do_ping

    def ping(dbapi_connection: object) -> bool:
        seen.append("ping")
        return bool(raw_ping(dbapi_connection))

    db.engine.dialect.do_ping = ping  # type: ignore[method-assign]
    await _read_pid(db)
    assert seen == []


async def test_reads_run_outside_transactions_and_writes_inside_one(db: Database) -> None:
    """Each statement of a read is a transaction of its own (no BEGIN and ROLLBACK round trips); a write's
    statements are one transaction."""
    xact = text("SELECT txid_current()")
    async with db.read() as conn:
        reads = [(await conn.execute(xact)).scalar_one() for _ in range(2)]
    async with db.write() as conn:
        writes = [(await conn.execute(xact)).scalar_one() for _ in range(2)]
    assert reads[0] != reads[1]
    assert writes[0] == writes[1]
