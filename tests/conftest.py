"""Shared fixtures: every storage backend, the fake Slack, a running bridge, the real Synapse."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from tests.fakes.slack_api import FakeSlack
from tests.fakes.synapse import synapse, synapse_bot, synapse_staff  # noqa: F401 -- fixtures
from tests.harness import BridgeFactory, RunningBridge, SlackAgent, Visitor, bridge_factory

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test. No PostgreSQL → the test fails (CI must have it)."""
    name = f"sitechat_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is needed at {PG_ADMIN} ({exc}); start it (see README: Testing)")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest_asyncio.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'sitechat.db'}"


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every storage backend: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'sitechat.db'}"
    else:
        async with fresh_postgres() as url:
            yield url


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as slack:
        yield slack


@pytest_asyncio.fixture
async def make_bridge(sqlite_url: str) -> AsyncIterator[BridgeFactory]:
    async with bridge_factory(sqlite_url) as make:
        yield make


@pytest_asyncio.fixture
async def slack_bridge(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> RunningBridge:
    return await make_bridge(fake_slack)


@pytest_asyncio.fixture
async def visitor(slack_bridge: RunningBridge) -> AsyncIterator[Visitor]:
    v = Visitor(slack_bridge.url)
    yield v
    await v.close()


@pytest_asyncio.fixture
async def agent(slack_bridge: RunningBridge, fake_slack: FakeSlack) -> AsyncIterator[SlackAgent]:
    a = SlackAgent(slack_bridge.url, fake_slack)
    yield a
    await a.close()
