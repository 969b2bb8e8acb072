"""A real Synapse homeserver on loopback: the team chat of `sitechat demo`, and the test suite's Matrix.

Synapse lives in its own virtualenv (it pins Twisted and ~40 packages of its own), so it runs as a
subprocess of that venv's interpreter: ``{venv}/bin/python -m synapse.app.homeserver -c homeserver.yaml``.

The workdir holds everything the homeserver owns (config, signing key, SQLite database, media store,
log). A workdir that already has a config is reused, so the demo keeps its users and rooms across
runs; a fresh one is written otherwise. The config is written by hand rather than with
``--generate-config`` (which is slow), as JSON: JSON is valid YAML, so Synapse reads it, and this
module can read it back without a YAML library (the project venv has none).

Only the client API is served, on 127.0.0.1; federation is off. Rate limits are generous because
the clients here are tests and a demo, not strangers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)

CONFIG_FILE = "homeserver.yaml"
LOG_CONFIG_FILE = "log_config.yaml"
SIGNING_KEY_FILE = "signing.key"
DATABASE_FILE = "homeserver.db"
MEDIA_DIR = "media_store"
DEFAULT_LOG_FILE = "homeserver.log"
LOCK_FILE = "homeserver.lock"

_CONFIG_HEADER = (
    "# Written by sitechat (sitechat/demo/local_homeserver.py) for a loopback Synapse.\n"
    "# It is JSON, which is valid YAML. Edits are kept across runs as long as it stays JSON;\n"
    "# the listener port and public_baseurl are rewritten at each start.\n"
)

# Generous enough that neither a test suite nor a demo ever meets them; per second / burst.
_GENEROUS = {"per_second": 1000, "burst_count": 10000}

# Every `rc_*` option Synapse 1.163 reads (synapse/config/ratelimiting.py) that can bite a client of
# the client API. rc_admin_redaction is set too so admin redactions are equally unhampered.
_RATE_LIMITS: dict[str, Any] = {
    "rc_message": _GENEROUS,
    "rc_registration": _GENEROUS,
    "rc_registration_token_validity": _GENEROUS,
    "rc_login": {"address": _GENEROUS, "account": _GENEROUS, "failed_attempts": _GENEROUS},
    "rc_admin_redaction": _GENEROUS,
    "rc_joins": {"local": _GENEROUS, "remote": _GENEROUS},
    "rc_joins_per_room": _GENEROUS,
    "rc_3pid_validation": _GENEROUS,
    "rc_invites": {"per_room": _GENEROUS, "per_user": _GENEROUS, "per_issuer": _GENEROUS},
    "rc_third_party_invite": _GENEROUS,
    "rc_media_create": _GENEROUS,
    "rc_presence": {"per_user": _GENEROUS},
    "rc_delayed_event_mgmt": _GENEROUS,
    "rc_room_creation": _GENEROUS,
    "rc_reports": _GENEROUS,
    "rc_user_directory": _GENEROUS,
    "rc_profile": _GENEROUS,
}

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


class LocalHomeserverError(RuntimeError):
    """The local homeserver could not be set up, started or stopped."""


class MatrixHTTPError(RuntimeError):
    """A request to the homeserver got a non-200 answer."""

    def __init__(self, method: str, path: str, status: int, body: Mapping[str, Any]) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.errcode: str | None = body.get("errcode") if isinstance(body.get("errcode"), str) else None
        self.error: str = str(body.get("error", ""))
        self.body = dict(body)
        super().__init__(f"{method} {path} -> {status} {self.errcode or ''} {self.error}".strip())


@dataclass(frozen=True)
class RegisteredUser:
    user_id: str
    access_token: str = field(repr=False)
    device_id: str
    password: str = field(repr=False)


def _unpadded_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR as Twisted sets it: only a live listener makes the port busy, not the TIME_WAIT
    # leftovers of the previous run's connections.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _read_config(path: Path) -> dict[str, Any]:
    text = "".join(line for line in path.read_text("utf-8").splitlines(True) if not line.startswith("#"))
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocalHomeserverError(
            f"{path} is not the JSON-shaped YAML this tool writes ({exc}); "
            "restore it, or delete the workdir to start a fresh homeserver"
        ) from exc
    if not isinstance(config, dict):
        raise LocalHomeserverError(f"{path} does not hold a mapping")
    return config


def _write_json(path: Path, data: Mapping[str, Any], header: str = "") -> None:
    # Write-then-rename: a crash mid-write must not leave a half config that blocks the next demo.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(header + json.dumps(data, indent=2) + "\n", "utf-8")
    os.chmod(tmp, 0o600)  # it holds the registration secret
    tmp.replace(path)


class LocalSynapse:
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
        self.venv = Path(venv)
        self.workdir = Path(workdir).resolve()
        self.server_name = server_name
        self.log_path = (Path(log_to) if log_to is not None else self.workdir / DEFAULT_LOG_FILE).resolve()
        self._requested_port = port
        self._extra_config = dict(extra_config or {})
        self._port: int | None = None
        self._shared_secret: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None
        self._paused = False
        self._whoami_cache: dict[str, str] = {}
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
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

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
                self._abandon()
                raise
            except LocalHomeserverError as exc:
                if attempt + 1 < attempts and "Address already in use" in str(exc):
                    log.warning("port %s was taken before Synapse bound it; trying another", self._port)
                    self._port = None
                    continue
                raise

    async def stop(self, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds. Keeps the workdir and the port."""
        proc = self._proc
        if proc is not None:
            self._check_loop()
            if proc.returncode is None:
                self._signal(signal.SIGTERM)
                if self._paused:
                    # A stopped process only acts on the pending SIGTERM once continued.
                    self._signal(signal.SIGCONT)
                try:
                    await asyncio.wait_for(proc.wait(), grace)
                except asyncio.CancelledError:
                    self._abandon()
                    raise
                except TimeoutError:
                    log.warning("Synapse (pid %s) ignored SIGTERM for %.0f s; killing it", proc.pid, grace)
                    self._signal(signal.SIGKILL)
                    await proc.wait()
            self._proc = None
        self._paused = False
        self._release_lock()
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
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Undo pause() (SIGCONT)."""
        if self.running:
            self._signal(signal.SIGCONT)
        self._paused = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """`with hs.paused(): ...` — resumes even when the body fails, so later tests are unaffected."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    # -- client helpers ---------------------------------------------------------------------------

    async def register(
        self, localpart: str, password: str, *, admin: bool = False, displayname: str | None = None
    ) -> RegisteredUser:
        """Create a user with the shared-secret admin API; log in instead if it already exists."""
        secret = self._shared_secret
        if secret is None:
            raise LocalHomeserverError("start() the homeserver before registering users")
        nonce = str((await self._request("GET", "/_synapse/admin/v1/register"))["nonce"])
        mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
        mac.update(nonce.encode("utf-8"))
        mac.update(b"\x00")
        mac.update(localpart.encode("utf-8"))
        mac.update(b"\x00")
        mac.update(password.encode("utf-8"))
        mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        body: dict[str, Any] = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        if displayname is not None:
            body["displayname"] = displayname
        try:
            data = await self._request("POST", "/_synapse/admin/v1/register", json_body=body)
        except MatrixHTTPError as exc:
            if exc.errcode == "M_USER_IN_USE":
                # A re-run of the demo: the user is already there; a wrong password still fails.
                return await self.login(localpart, password)
            raise
        return RegisteredUser(
            user_id=str(data["user_id"]),
            access_token=str(data["access_token"]),
            device_id=str(data["device_id"]),
            password=password,
        )

    async def login(self, user: str, password: str, *, device_id: str | None = None) -> RegisteredUser:
        """Password login (`user` is a localpart or a full user id). Each call without `device_id`
        makes a new device."""
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
        }
        if device_id is not None:
            body["device_id"] = device_id
        data = await self._request("POST", "/_matrix/client/v3/login", json_body=body)
        return RegisteredUser(
            user_id=str(data["user_id"]),
            access_token=str(data["access_token"]),
            device_id=str(data["device_id"]),
            password=password,
        )

    async def whoami(self, token: str) -> str:
        if token not in self._whoami_cache:
            data = await self._request("GET", "/_matrix/client/v3/account/whoami", token=token)
            self._whoami_cache[token] = str(data["user_id"])
        return self._whoami_cache[token]

    async def lift_ratelimit(self, admin_token: str, user_id: str) -> None:
        """Exempt `user_id` from every rate limit (zeros mean "no limit" to Synapse)."""
        await self._request(
            "POST",
            f"/_synapse/admin/v1/users/{quote(user_id, safe='')}/override_ratelimit",
            token=admin_token,
            json_body={"messages_per_second": 0, "burst_count": 0},
        )

    async def create_room(
        self,
        token: str,
        *,
        name: str,
        invite: Iterable[str] = (),
        topic: str | None = None,
        power_users: Mapping[str, int] | None = None,
        preset: Literal["private_chat", "public_chat"] = "private_chat",
    ) -> str:
        """Create an unencrypted room (the bridge's nio client cannot encrypt); returns its id."""
        body: dict[str, Any] = {"name": name, "preset": preset, "invite": list(invite)}
        if topic is not None:
            body["topic"] = topic
        if power_users:
            users = dict(power_users)
            # Room version 12 (Synapse's default) gives creators unbounded power and refuses a
            # `users` override that names them; leave the creator out instead of failing.
            users.pop(await self.whoami(token), None)
            if users:
                body["power_level_content_override"] = {"users": users}
        data = await self._request("POST", "/_matrix/client/v3/createRoom", token=token, json_body=body)
        return str(data["room_id"])

    async def join(self, token: str, room_id: str) -> str:
        data = await self._request(
            "POST", f"/_matrix/client/v3/join/{quote(room_id, safe='')}", token=token, json_body={}
        )
        return str(data["room_id"])

    async def send_text(
        self,
        token: str,
        room_id: str,
        body: str,
        *,
        thread_root: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        """Send a plain `m.text` as a person would; with `thread_root`, as an `m.thread` reply (the
        fallback reply points at `reply_to`, default the root). Returns the event id."""
        content: dict[str, Any] = {"msgtype": "m.text", "body": body, "m.mentions": {}}
        if thread_root is not None:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread_root,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": reply_to or thread_root},
            }
        txn = secrets.token_hex(12)
        data = await self._request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn}",
            token=token,
            json_body=content,
        )
        return str(data["event_id"])

    # -- internals --------------------------------------------------------------------------------

    def _prepare(self) -> int:
        """Filesystem work before a spawn (run in a thread): lock the workdir, write or update the
        config, choose the port. Returns the log file's size, so a failure shows only this run's lines."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / MEDIA_DIR).mkdir(exist_ok=True)
        self._acquire_lock()
        try:
            if self.config_path.exists():
                config = _read_config(self.config_path)
                saved_name = config.get("server_name")
                if saved_name != self.server_name:
                    # The database is bound to its server name: Synapse would refuse to start.
                    raise LocalHomeserverError(
                        f"{self.workdir} holds a homeserver for server_name {saved_name!r}, "
                        f"not {self.server_name!r}; use another workdir"
                    )
                saved_port = next((ln.get("port") for ln in config.get("listeners", []) if isinstance(ln, dict)), None)
            else:
                config = self._fresh_config()
                saved_port = None
            if self._port is None:
                if self._requested_port is not None:
                    self._port = self._requested_port
                elif isinstance(saved_port, int) and _port_is_free(saved_port):
                    # Same URL as last time: the demo's staff need not change their client's server.
                    self._port = saved_port
                else:
                    self._port = _pick_free_port()
            config["listeners"] = [self._listener(self._port)]
            config["public_baseurl"] = f"http://127.0.0.1:{self._port}/"
            secret = config.get("registration_shared_secret")
            if not isinstance(secret, str) or not secret:
                raise LocalHomeserverError(f"{self.config_path} has no registration_shared_secret")
            self._shared_secret = secret
            if not Path(str(config.get("signing_key_path", ""))).exists():
                raise LocalHomeserverError(f"{self.config_path}: the signing key file is missing")
            _write_json(self.config_path, config, _CONFIG_HEADER)
            _write_json(Path(str(config["log_config"])), self._log_config())
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as fh:
                fh.write(f"--- sitechat: starting Synapse on port {self._port} at {time.ctime()}\n".encode())
                return fh.tell()
        except BaseException:
            self._release_lock()
            raise

    def _fresh_config(self) -> dict[str, Any]:
        key_path = self.workdir / SIGNING_KEY_FILE
        if not key_path.exists():
            key_path.write_text(f"ed25519 a_key {_unpadded_b64(secrets.token_bytes(32))}\n", "ascii")
            os.chmod(key_path, 0o600)
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "report_stats": False,
            "database": {"name": "sqlite3", "args": {"database": str(self.workdir / DATABASE_FILE)}},
            "media_store_path": str(self.workdir / MEDIA_DIR),
            "signing_key_path": str(key_path),
            "log_config": str(self.workdir / LOG_CONFIG_FILE),
            "registration_shared_secret": secrets.token_urlsafe(32),
            "macaroon_secret_key": secrets.token_urlsafe(32),
            "form_secret": secrets.token_urlsafe(32),
            "enable_registration": False,
            # Hashing cost only protects stolen databases; 4 rounds make register/login ~15x faster.
            "bcrypt_rounds": 4,
            # No federation at all: no key servers, no remote domains.
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "user_directory": {"enabled": False},
            # Otherwise identical /sync requests get a cached answer for 2 minutes.
            "caches": {"sync_response_cache_duration": 0},
            "enable_metrics": False,
            **_RATE_LIMITS,
        }
        config.update(self._extra_config)
        return config

    @staticmethod
    def _listener(port: int) -> dict[str, Any]:
        return {
            "port": port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": False,
            "x_forwarded": False,
            "resources": [{"names": ["client"], "compress": False}],
        }

    def _log_config(self) -> dict[str, Any]:
        return {
            "version": 1,
            "formatters": {
                "precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"}
            },
            # Supplies %(request)s; Synapse's own records expect it.
            "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter", "request": ""}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "filters": ["context"],
                    "encoding": "utf8",
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }

    async def _spawn_and_wait(self, python: Path, wait_s: float, log_offset: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
        env["PYTHONUNBUFFERED"] = "1"
        assert self._lock_fd is not None
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        started = time.monotonic()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                str(python),
                "-c",
                _LAUNCHER,
                str(os.getpid()),
                "-c",
                str(self.config_path),
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
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        url = f"{self.base_url}/_matrix/client/versions"
        deadline = started + wait_s
        while True:
            if self._proc.returncode is not None:
                await self._fail_start(f"Synapse exited with code {self._proc.returncode}", log_offset)
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
        tail = await asyncio.to_thread(self._log_tail, log_offset)
        raise LocalHomeserverError(f"{reason}; last lines of {self.log_path}:\n{tail}")

    def _log_tail(self, offset: int, lines: int = 40) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(offset)
                text = fh.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(log unreadable: {exc})"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def _abandon(self) -> None:
        """Our caller gave up (cancelled) mid start/stop: kill Synapse rather than leave it running
        unowned. The aiohttp session is left for a later stop() to close."""
        self._signal(signal.SIGKILL)
        self._proc = None
        self._paused = False
        self._release_lock()

    def _acquire_lock(self) -> None:
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

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def _check_loop(self) -> None:
        # The subprocess transport and the aiohttp session belong to the loop that ran start().
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise LocalHomeserverError(
                "LocalSynapse used from another event loop than the one that started it; under "
                "pytest-asyncio, run the test in the fixture's loop: "
                'pytestmark = pytest.mark.asyncio(loop_scope="session")'
            )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        self._check_loop()
        if self._session is None or not self.running:
            raise LocalHomeserverError("the homeserver is not running")
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        for _ in range(5):
            async with self._session.request(method, self.base_url + path, json=json_body, headers=headers) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    data = {"error": f"non-JSON answer ({resp.content_type})"}
                if resp.status == 200:
                    return data
                if resp.status == 429:
                    # Only with a caller's strict extra_config; honour the server's hint briefly.
                    retry_ms = data.get("retry_after_ms", 500)
                    await asyncio.sleep(min(float(retry_ms) / 1000 if isinstance(retry_ms, int) else 0.5, 5))
                    continue
                raise MatrixHTTPError(method, path, resp.status, data)
        raise MatrixHTTPError(method, path, 429, data)
