"""A real ``sitechat run`` in a subprocess: started from an env file, killed with SIGKILL, restarted.

The fault tests use it where only a real process death will do: nothing is flushed, no ``finally``
runs, no shutdown hook sends what was pending. What the process wrote to stdout and stderr is kept
(``output``) for assertions and for failure messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import aiosqlite

from tests.fakes.slack_api import FakeSlack
from tests.harness import ORIGIN, SIGNING_SECRET, clean_environment, free_port


def bridge_env(db_path: Path, slack: FakeSlack, port: int, **extra: str) -> dict[str, str]:
    """The env file of one site, ``acme``: C0SUPPORT by default, topic ``sales`` in C0SALES."""
    values = {
        "SITECHAT_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "SITECHAT_HOST": "127.0.0.1",
        "SITECHAT_PORT": str(port),
        # no reminder posts in the threads while a test waits for Slack
        "SITECHAT_FIRST_RESPONSE_ALERT_SECONDS": "3600",
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "SITECHAT_SITES__ACME__NAME": "Acme",
        "SITECHAT_SITES__ACME__ORIGINS": ORIGIN,
        "SITECHAT_SITES__ACME__AUTO_GREETING_SECONDS": "0",  # no greeting among the lines under test
        "SITECHAT_SITES__ACME__SLACK_CHANNEL": "C0SUPPORT",
        "SITECHAT_SITES__ACME__TOPICS__SALES__LABEL": "Sales",
        "SITECHAT_SITES__ACME__TOPICS__SALES__SLACK_CHANNEL": "C0SALES",
    }
    values.update(extra)
    return values


def write_env(path: Path, values: Mapping[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    path.chmod(0o600)
    return path


class BridgeProcess:
    """``python -m sitechat run --env-file ENV`` (the same as ``sitechat run``), as a child process."""

    def __init__(self, env_file: Path, port: int, cwd: Path, db_path: Path) -> None:
        self.env_file = env_file
        self.port = port
        self.cwd = cwd
        self.db_path = db_path
        self.url = f"http://127.0.0.1:{port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def output(self) -> str:
        """Everything every run of the process wrote (stdout and stderr, interleaved)."""
        return "".join(self._lines)

    async def spawn(self, *args: str) -> asyncio.subprocess.Process:
        """Start the process without waiting for it to be healthy."""
        self.starts += 1
        self._lines.append(f"--- start {self.starts} ---\n")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sitechat",
            *(args or ("run",)),
            "--env-file",
            str(self.env_file),
            cwd=self.cwd,
            env=clean_environment(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read(self.proc))
        return self.proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self._lines.append(line.decode(errors="replace"))

    async def start(self, timeout: float = 30.0) -> BridgeProcess:
        """Start and wait until ``/healthz`` answers (the server listens only after migrations and start-up)."""
        proc = await self.spawn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if proc.returncode is not None:
                    await self._drain()
                    raise AssertionError(f"sitechat run exited with {proc.returncode}:\n{self.output}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status == 200:
                            return self
                if loop.time() > deadline:
                    raise AssertionError(f"sitechat run not healthy after {timeout} s:\n{self.output}")
                await asyncio.sleep(0.05)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
        await self._drain()
        return code

    async def kill(self) -> None:
        """``kill -9``: the process gets no chance to finish anything."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        await self._drain()

    async def stop(self) -> None:
        """SIGTERM (a clean stop), then SIGKILL if it takes too long."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                await self.kill()
        await self._drain()

    async def restart(self) -> BridgeProcess:
        """``kill -9``, then start again on the same database, env file and port."""
        await self.kill()
        return await self.start()

    async def _drain(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._reader


async def pending_deliveries(db_path: Path) -> int:
    """Deliveries not yet done, read straight from the bridge's SQLite file."""
    async with aiosqlite.connect(db_path) as db, db.execute("SELECT count(*) FROM delivery WHERE NOT done") as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def wait_drained(bridge: BridgeProcess, slack: FakeSlack, timeout: float = 30.0) -> None:
    """Until the bridge's outbox is empty; on timeout, say what the fake saw and what the bridge logged."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await pending_deliveries(bridge.db_path):
        if loop.time() > deadline:
            tail = "".join(bridge.output.splitlines(keepends=True)[-30:])
            raise AssertionError(
                f"the outbox did not drain within {timeout:g} s\n{slack.describe()}\n--- bridge output ---\n{tail}"
            )
        await asyncio.sleep(0.05)


def new_bridge_process(workdir: Path, slack: FakeSlack, **extra: str) -> BridgeProcess:
    """A bridge process (not started yet) with its own SQLite file, env file and free port in ``workdir``."""
    port = free_port()
    db_path = workdir / "sitechat.db"
    env_file = write_env(workdir / "sitechat.env", bridge_env(db_path, slack, port, **extra))
    return BridgeProcess(env_file, port, workdir, db_path)
