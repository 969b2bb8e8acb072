"""The Synapse subprocess: spawned from its own virtualenv, tied to our life, signalled, its log read.

Synapse lives in its own virtualenv (it pins Twisted and ~40 packages of its own), so it runs as a
subprocess of that venv's interpreter. One homeserver per workdir: a lock file, held by us and
inherited by Synapse, refuses a second one on the same SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from pathlib import Path

from sitechat.demo.homeserver_errors import LocalHomeserverError

log = logging.getLogger(__name__)

LOCK_FILE = "homeserver.lock"

# Runs in Synapse's venv before Synapse itself: asks Linux to kill the homeserver when the process
# that started it dies (a crashed demo or a killed pytest must not leave an orphan holding the port
# and the SQLite file), then execs Synapse so the pid we hold *is* the homeserver. The death signal
# is tied to the thread that forked, i.e. the event loop's thread, and survives execve. Elsewhere
# (no prctl) it just execs; the workdir lock still refuses a second homeserver on the same data.
_LAUNCHER = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(70)  # the parent died before prctl took effect
os.execv(sys.executable, [sys.executable, "-m", "synapse.app.homeserver", *sys.argv[2:]])
"""

# Environment variables of the *project* venv that would make Synapse's interpreter import the
# wrong packages.
_ENV_DROP = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


class SynapseProcess:
    """One Synapse process for one workdir, at most; its output goes to `log_path`."""

    def __init__(self, workdir: Path, log_path: Path) -> None:
        self.workdir = workdir
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._lock_fd: int | None = None
        self.paused = False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def pid(self) -> int | None:
        """The process we hold, running or exited but not yet reaped by stop()."""
        return self._proc.pid if self._proc is not None else None

    def acquire_lock(self) -> None:
        if self._lock_fd is not None:
            return
        fd = os.open(self.workdir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LocalHomeserverError(
                f"another homeserver is running on {self.workdir} (its lock is held); stop it first"
            ) from None
        self._lock_fd = fd

    def release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def mark_log(self, line: str) -> int:
        """Append a line to the log; returns the log's size, so a failure shows only this run's lines."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as fh:
            fh.write(line.encode())
            return fh.tell()

    def log_tail(self, offset: int, lines: int = 40) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(offset)
                text = fh.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(log unreadable: {exc})"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    async def spawn(self, python: Path, config_path: Path) -> None:
        """Start Synapse (not yet answering: the caller waits for that). The lock must be held."""
        env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
        env["PYTHONUNBUFFERED"] = "1"
        assert self._lock_fd is not None
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                str(python),
                "-c",
                _LAUNCHER,
                str(os.getpid()),
                "-c",
                str(config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                cwd=self.workdir,
                env=env,
                # Own process group: signals from a terminal's Ctrl-C go to the demo, which then
                # stops Synapse itself; and pause()/stop() can signal the whole group.
                start_new_session=True,
                # The child holds the workdir lock too, so it stays locked while Synapse lives.
                pass_fds=(self._lock_fd,),
            )
        finally:
            os.close(log_fd)

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; then let go of the workdir."""
        proc = self._proc
        if proc is not None:
            if proc.returncode is None:
                self.signal(signal.SIGTERM)
                if self.paused:
                    # A stopped process only acts on the pending SIGTERM once continued.
                    self.signal(signal.SIGCONT)
                try:
                    await asyncio.wait_for(proc.wait(), grace)
                except asyncio.CancelledError:
                    self.abandon()
                    raise
                except TimeoutError:
                    log.warning("Synapse (pid %s) ignored SIGTERM for %.0f s; killing it", proc.pid, grace)
                    self.signal(signal.SIGKILL)
                    await proc.wait()
            self._proc = None
        self.paused = False
        self.release_lock()

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.running:
            self.signal(signal.SIGCONT)
        self.paused = False

    def abandon(self) -> None:
        """Our caller gave up (cancelled) mid start/stop: kill Synapse rather than leave it running unowned."""
        self.signal(signal.SIGKILL)
        self._proc = None
        self.paused = False
        self.release_lock()

    def signal(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)
