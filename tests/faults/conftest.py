"""Fixtures of the fault tests: real ``sitechat run`` processes, and what talks to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from adapters.slack import plugin as slack_plugin
from adapters.slack.endpoint import SlackEndpoint
from config.settings import Settings
from sitechat.runtime import build_runtime, serve
from tests.fakes.slack_api import FakeSlack
from tests.faults.process import BridgeProcess, new_bridge_process
from tests.harness import SIGNING_SECRET, RunningBridge, acme_settings

ProcessFactory = Callable[..., Awaitable[BridgeProcess]]
TunedFactory = Callable[..., Awaitable[RunningBridge]]


class TunedBridge(RunningBridge):
    """The bridge in this process, with a Slack client timeout of our choosing (there is no setting for it)."""

    def __init__(self, settings: Settings, slack_timeout: float) -> None:
        super().__init__(settings)
        self.slack_timeout = slack_timeout

    async def start(self) -> RunningBridge:
        s = self.settings
        assert s.slack is not None
        slack = SlackEndpoint(
            bot_token=s.slack.bot_token.get_secret_value(),
            api_url=s.slack.api_url,
            signing_secret=SIGNING_SECRET,
            app_token=None,
            timeout=self.slack_timeout,
        )
        self.runtime = build_runtime(s, plugins=[slack_plugin(slack)])
        self._runner = await serve(self.runtime, s.widget.host, s.widget.port)
        return self


@pytest_asyncio.fixture
async def tuned_bridge(sqlite_url: str, fake_slack: FakeSlack) -> AsyncIterator[TunedFactory]:
    """An in-process bridge on the fake Slack; ``slack_timeout`` is the Slack client's timeout in seconds."""
    started: list[RunningBridge] = []

    async def start(slack_timeout: float = 10.0, database_url: str | None = None, **overrides: Any) -> RunningBridge:
        overrides.setdefault("first_response_alert_seconds", 3600)  # no reminders in the threads under test
        bridge = TunedBridge(acme_settings(database_url or sqlite_url, fake_slack, **overrides), slack_timeout)
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
