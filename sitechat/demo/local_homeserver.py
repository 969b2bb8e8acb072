"""A real Synapse homeserver on loopback: the team chat of `sitechat demo`, and the test suite's Matrix.

Synapse runs as a subprocess of its own virtualenv's interpreter:
``{venv}/bin/python -m synapse.app.homeserver -c homeserver.yaml``.

The workdir holds everything the homeserver owns (config, signing key, SQLite database, media store,
log). A workdir that already has a config is reused, so the demo keeps its users and rooms across
runs; a fresh one is written otherwise.

:class:`LocalSynapse` puts three parts together: the config files (``homeserver_config.py``), the
process (``homeserver_process.py``) and the HTTP requests that provision it (``homeserver_api.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from sitechat.demo.homeserver_api import HomeserverAPI, RegisteredUser
from sitechat.demo.homeserver_config import (
    CONFIG_FILE,
    DEFAULT_LOG_FILE,
    MEDIA_DIR,
    choose_port,
    load_config,
    write_config,
)
from sitechat.demo.homeserver_errors import LocalHomeserverError, MatrixHTTPError
from sitechat.demo.homeserver_process import SynapseProcess

__all__ = ["LocalHomeserverError", "LocalSynapse", "MatrixHTTPError", "RegisteredUser"]

log = logging.getLogger(__name__)


class LocalSynapse(HomeserverAPI):
    """Start, stop and provision a Synapse homeserver listening on 127.0.0.1."""

    def __init__(
        self,
        venv: Path,
        workdir: Path,
        *,
        port: int | None = None,
        server_name: str = "localhost",
        log_to: Path | None = None,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        """`extra_config` is merged over a *fresh* config's top level (e.g. strict `rc_message` for a
        rate-limit test); a reused workdir keeps its own config."""
        super().__init__()
        self.venv = Path(venv)
        self.workdir = Path(workdir).resolve()
        self.server_name = server_name
        self.log_path = (Path(log_to) if log_to is not None else self.workdir / DEFAULT_LOG_FILE).resolve()
        self._requested_port = port
        self._extra_config = dict(extra_config or {})
        self._port: int | None = None
        self._shared_secret: str | None = None
        self._process = SynapseProcess(self.workdir, self.log_path)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Seconds the last successful start() took, from spawn to the first 200 on /versions.
        self.last_start_seconds: float | None = None

    # -- properties -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise LocalHomeserverError("the homeserver has not been started yet: no port chosen")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / CONFIG_FILE

    @property
    def running(self) -> bool:
        return self._process.running

    @property
    def pid(self) -> int | None:
        return self._process.pid

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self, timeout: float = 60) -> None:  # noqa: ASYNC109 - a start-up deadline, by design
        """Spawn Synapse and wait (at most `timeout` seconds) until its client API answers."""
        if self.running:
            raise LocalHomeserverError("the homeserver is already running")
        python = self.venv / "bin" / "python"
        if not python.exists():
            raise LocalHomeserverError(
                f"no Synapse virtualenv at {self.venv} ({python} is missing); run `make synapse`"
            )
        self._loop = asyncio.get_running_loop()
        # A port we picked ourselves can be taken by someone else between our probe and Synapse's
        # bind; then pick another. A port the caller asked for (or the one kept across restart())
        # is not ours to change.
        attempts = 3 if self._port is None and self._requested_port is None else 1
        for attempt in range(attempts):
            log_offset = await asyncio.to_thread(self._prepare)
            try:
                await self._spawn_and_wait(python, timeout, log_offset)
                return
            except asyncio.CancelledError:
                self._process.abandon()
                raise
            except LocalHomeserverError as exc:
                if attempt + 1 < attempts and "Address already in use" in str(exc):
                    log.warning("port %s was taken before Synapse bound it; trying another", self._port)
                    self._port = None
                    continue
                raise

    async def stop(self, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds. Keeps the workdir and the port."""
        if self._process.pid is not None:
            self._check_loop()
        await self._process.stop(grace)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def restart(self, timeout: float = 60) -> None:  # noqa: ASYNC109 - as start()
        """Stop and start again on the same port with the same data (users, tokens, rooms survive)."""
        await self.stop()
        await self.start(timeout)

    def pause(self) -> None:
        """Freeze the homeserver (SIGSTOP): connections hang as with a stuck server."""
        if not self.running:
            raise LocalHomeserverError("the homeserver is not running")
        self._process.pause()

    def resume(self) -> None:
        """Undo pause() (SIGCONT)."""
        self._process.resume()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """`with hs.paused(): ...` — resumes even when the body fails, so later tests are unaffected."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    # -- internals --------------------------------------------------------------------------------

    def _prepare(self) -> int:
        """Filesystem work before a spawn (run in a thread): lock the workdir, write or update the
        config, choose the port. Returns the log file's size, so a failure shows only this run's lines."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / MEDIA_DIR).mkdir(exist_ok=True)
        self._process.acquire_lock()
        try:
            config, saved_port = load_config(self.workdir, self.server_name, self._extra_config)
            if self._port is None:
                port = self._requested_port
                self._port = port if port is not None else choose_port(saved_port)
            self._shared_secret = write_config(self.workdir, config, self._port, self.log_path)
            return self._process.mark_log(f"--- sitechat: starting Synapse on port {self._port} at {time.ctime()}\n")
        except BaseException:
            self._process.release_lock()
            raise

    async def _spawn_and_wait(self, python: Path, wait_s: float, log_offset: int) -> None:
        started = time.monotonic()
        await self._process.spawn(python, self.config_path)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        url = f"{self.base_url}/_matrix/client/versions"
        deadline = started + wait_s
        while True:
            if self._process.returncode is not None:
                await self._fail_start(f"Synapse exited with code {self._process.returncode}", log_offset)
            if time.monotonic() > deadline:
                await self._fail_start(f"Synapse did not answer {url} within {wait_s:.0f} s", log_offset)
            try:
                async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        break
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass  # not listening yet
            await asyncio.sleep(0.05)
        self.last_start_seconds = time.monotonic() - started
        log.info("Synapse is up at %s after %.2f s", self.base_url, self.last_start_seconds)

    async def _fail_start(self, reason: str, log_offset: int) -> None:
        await self.stop()
        tail = await asyncio.to_thread(self._process.log_tail, log_offset)
        raise LocalHomeserverError(f"{reason}; last lines of {self.log_path}:\n{tail}")

    def _check_loop(self) -> None:
        # The subprocess transport and the aiohttp session belong to the loop that ran start().
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise LocalHomeserverError(
                "LocalSynapse used from another event loop than the one that started it; under "
                "pytest-asyncio, run the test in the fixture's loop: "
                'pytestmark = pytest.mark.asyncio(loop_scope="session")'
            )

    # -- what the HTTP requests need (HomeserverAPI) ----------------------------------------------

    def _connection(self) -> tuple[aiohttp.ClientSession, str]:
        self._check_loop()
        if self._session is None or not self.running:
            raise LocalHomeserverError("the homeserver is not running")
        return self._session, self.base_url

    def _registration_secret(self) -> str:
        if self._shared_secret is None:
            raise LocalHomeserverError("start() the homeserver before registering users")
        return self._shared_secret
