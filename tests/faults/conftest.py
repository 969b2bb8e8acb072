"""Fixtures of the fault tests: real ``sitechat run`` processes, and what talks to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.fakes.slack_api import FakeSlack
from tests.faults.process import BridgeProcess, new_bridge_process
from tests.harness import RunningBridge, TunedSlackBridge, acme_settings

ProcessFactory = Callable[..., Awaitable[BridgeProcess]]
TunedFactory = Callable[..., Awaitable[RunningBridge]]


@pytest_asyncio.fixture
async def tuned_bridge(sqlite_url: str, fake_slack: FakeSlack) -> AsyncIterator[TunedFactory]:
    """An in-process bridge on the fake Slack; ``slack_timeout`` is the Slack client's timeout in seconds."""
    started: list[RunningBridge] = []

    async def start(slack_timeout: float = 10.0, database_url: str | None = None, **overrides: Any) -> RunningBridge:
        overrides.setdefault("first_response_alert_seconds", 3600)  # no reminders in the threads under test
        settings = acme_settings(database_url or sqlite_url, fake_slack, **overrides)
        bridge = TunedSlackBridge(settings, timeout=slack_timeout)
        started.append(bridge)
        await bridge.start()
        return bridge

    yield start
    for bridge in reversed(started):
        await bridge.stop()


@pytest_asyncio.fixture
async def bridge_process(tmp_path: Path, fake_slack: FakeSlack) -> AsyncIterator[ProcessFactory]:
    """Start ``sitechat run`` on a fresh SQLite file, talking to the fake Slack; killed at the end."""
    started: list[BridgeProcess] = []

    async def start(**extra: str) -> BridgeProcess:
        proc = new_bridge_process(tmp_path, fake_slack, **extra)
        started.append(proc)
        return await proc.start()

    yield start
    for proc in started:
        await proc.kill()
