"""``sitechat doctor``: what is wrong, in plain words, and how to fix it. Exit 0 only when all is well.

What it prints is the report and nothing else: the log records of the checks (nio, the adapters) are
kept out of it (logging is quiet while the doctor runs), so the report can be read, mailed or parsed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text

from bridge.store.database import Database
from bridge.store.instances import instances_seen, lane_locks_by_instance, outbox_backlog
from bridge.store.state import exclusive_key
from config.loading import ConfigError, load_settings
from config.settings import Settings

#: clocks further apart than this confuse timers and reports across instances
MAX_SKEW_SECONDS = 2.0


def _say(ok: bool, text: str) -> None:
    print(f"  [{'ok' if ok else 'PROBLEM'}] {text}")


def _warn(text: str) -> None:
    """Worth a look, but maybe right as it is (a guess): not counted as a problem."""
    print(f"  [warning] {text}")


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """No log record in the report: the root logger's handlers are set aside while the doctor runs."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = [logging.NullHandler()]
    root.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        root.handlers, root.level = handlers, level


#: the endpoint whose session runs on one instance at a time, and the name of its lock
MATRIX_LOCK = ("matrix", "session")


async def _matrix_lock_holder(db: Database) -> str | None:
    """PostgreSQL: the instance holding the Matrix lock (it runs the Matrix session), if any."""
    key = exclusive_key(*MATRIX_LOCK)
    async with db.read() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                    "AND l.classid::bigint = :high AND l.objid::bigint = :low"
                ),
                {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
            )
        ).first()
    return str(row[0]).removeprefix("sitechat-") if row else None


async def _instances(db: Database, settings: Settings) -> int:
    """The running instances on this database, their locks, the outbox; the number of problems."""
    problems = 0
    async with db.read() as conn:
        seen = await instances_seen(conn, db.is_sqlite)
        locks = {} if db.is_sqlite else await lane_locks_by_instance(conn)
        backlog = await outbox_backlog(conn)
    matrix_holder = await _matrix_lock_holder(db) if settings.matrix is not None and not db.is_sqlite else None
    if not seen:
        _say(True, "instances: none running on this database right now")
    for one in seen:
        where = f"{one.host} pid {one.pid}, up since {one.started_at:%Y-%m-%d %H:%M} UTC"
        lanes = locks.get(one.id, 0) - (1 if one.id == matrix_holder else 0)  # the Matrix lock is no lane
        sending = f"sending {lanes} lane(s)" if not db.is_sqlite else "the only instance (SQLite)"
        if one.id == matrix_holder:
            sending += "; runs the Matrix session"
        _say(True, f"instance {one.id}: {where}; {sending}; last heartbeat {one.silent_seconds:.0f} s ago")
        if abs(one.skew_seconds) > MAX_SKEW_SECONDS:
            problems += 1
            _say(False, f"instance {one.id}: its clock is {one.skew_seconds:+.1f} s off the database's: run NTP")
        if not one.listening:
            problems += 1
            _say(False, f"instance {one.id}: does not hear the other instances (LISTEN); it retries by itself")
    for endpoint, (count, oldest) in sorted(backlog.items()):
        age = f", the oldest since {oldest:%Y-%m-%d %H:%M:%S} UTC" if oldest else ""
        _say(True, f"outbox: {count} delivery(ies) waiting for {endpoint}{age}")
    if not backlog:
        _say(True, "outbox: nothing waiting")
    return problems


def _local_storage(path: Path) -> bool:
    """A guess: the path is on the disk of this machine alone — on the root filesystem, with no mount
    point between it and /. (A shared volume is usually mounted: NFS, a Kubernetes volume, a bind
    mount of a cluster file system.)"""
    here = path.absolute()
    existing = next((p for p in (here, *here.parents) if p.exists()), Path("/"))
    if os.stat(existing).st_dev != os.stat("/").st_dev:
        return False
    return not any(os.path.ismount(p) for p in (existing, *existing.parents) if p != Path("/"))


def _matrix_store(settings: Settings, db: Database) -> None:
    """With several instances possible (PostgreSQL), the Matrix store must be where each can reach it."""
    if settings.matrix is None or db.is_sqlite:
        return
    store = Path(settings.matrix.store_path)
    if _local_storage(store):
        _warn(
            f"MATRIX_STORE_PATH={settings.matrix.store_path} looks like this machine's own disk (same file system "
            "as /, no mount point on the way). With PostgreSQL several instances can run, and whichever holds the "
            "Matrix lock uses the store: put it on storage they all share (an NFS export, a shared volume), or "
            "ignore this if only one instance ever runs Matrix. (A guess from the mounts; it can be wrong.)"
        )


async def run_doctor(env_file: Path | None) -> int:
    with _quiet_logging():
        return await _run_doctor(env_file)


async def _run_doctor(env_file: Path | None) -> int:
    problems = 0
    path = env_file if env_file is not None else Path(".env")
    print("sitechat doctor")
    if path.is_file():
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            problems += 1
            _say(False, f"{path} is readable by other users and holds secrets: run chmod 600 {path}")
    try:
        settings = load_settings(env_file)
    except ConfigError as exc:
        for problem in exc.problems:
            _say(False, problem)
        print(f"{len(exc.problems)} configuration problem(s); nothing else was checked.")
        return 1
    _say(True, f"configuration: {len(settings.sites)} site(s): {', '.join(settings.sites) or 'none'}")
    if not settings.sites:
        problems += 1
        _say(False, "no site is configured: add SITECHAT_SITES__ACME__NAME, __ORIGINS and a destination")

    db = Database(settings.database_url)
    try:
        await db.ping()
        await db.migrate()
        _say(True, f"database reachable ({settings.database_url.split('://')[0]})")
        problems += await _instances(db, settings)
        _matrix_store(settings, db)
    except Exception as exc:
        problems += 1
        _say(False, f"database {settings.database_url.split('@')[-1]} unreachable: {type(exc).__name__}: {exc}")

    from sitechat.runtime import build_plugins

    for endpoint in (plugin.endpoint for plugin in build_plugins(settings, db)):
        name = endpoint.name
        destinations = settings.routes_to(name)
        facts: list[str] = []
        try:
            # check() alone: starting would sync or take events that belong to the running service
            found = await endpoint.check(destinations)
            facts = await endpoint.describe(destinations)
        except Exception as exc:
            found = [f"{name}: cannot connect ({type(exc).__name__}: {exc})"]
        finally:
            await endpoint.stop()
        for problem in found:
            problems += 1
            _say(False, problem)
        if not found:
            _say(True, f"{name}: connected; can post to {', '.join(destinations) or 'no destination'}")
        for fact in facts:
            _say(True, fact)
    await db.close()
    if settings.email is None:
        _say(True, "email: not configured (transcripts by email are off; set SITECHAT_SMTP_URL to turn them on)")
    print("All is well." if not problems else f"{problems} problem(s) found.")
    return 0 if not problems else 1
