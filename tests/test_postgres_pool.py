"""PostgreSQL's pooled connections (``bridge/store/database.py``, ``pool_checks.py``): checked before use
only after sitting idle, in autocommit outside transactions, and a transaction still a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import text

from bridge.store import pool_checks
from bridge.store.database import Database, LeaseLost
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
    monkeypatch.setattr(pool_checks, "CHECK_AFTER_IDLE_SECONDS", 0.0)  # every pooled connection counts as idle
    before = await _read_pid(db)
    await _terminate(await _backends(db))
    after = await _read_pid(db)  # no error: checked, found dead, replaced
    assert after != before


async def test_connections_killed_a_moment_ago_fail_once_each_at_most(db: Database) -> None:
    """A restart right after a burst: the pooled connections were in use a moment ago (no check is due).
    One the driver has seen close is replaced before use; one it has not seen close yet may fail its first
    use (as one cut during a transaction does: the lane stops and is tried again) — but once, never again:
    a lane's lock attempt on it reaches the driver past SQLAlchemy, and must not return it to the pool."""
    async with db.lane_lock("slack:c1") as lease:
        assert lease is not None
    before = await _read_pid(db)
    pooled = db.engine.sync_engine.pool.checkedin()  # type: ignore[attr-defined]
    await _terminate(await _backends(db))
    failed = 0
    for _ in range(pooled + 2):
        try:
            async with db.lane_lock("slack:c1") as lease:
                assert lease is not None
        except LeaseLost:
            failed += 1
    assert failed <= pooled
    async with db.lane_lock("slack:c1") as lease:  # by now on a live connection
        assert lease is not None
    assert await _read_pid(db) != before


async def test_a_connection_in_use_a_moment_ago_costs_no_check(db: Database) -> None:
    """A busy instance takes connections from the pool several times per message: no check round trip
    for one that was in use a moment ago (the check would be the first statement PostgreSQL sees)."""
    await _read_pid(db)
    seen: list[str] = []
    raw_ping = db.engine.dialect.do_ping

    def ping(dbapi_connection: Any) -> bool:
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
