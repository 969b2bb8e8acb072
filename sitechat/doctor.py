"""``sitechat doctor``: what is wrong, in plain words, and how to fix it. Exit 0 only when all is well."""

from __future__ import annotations

import stat
from pathlib import Path

from bridge.store.database import Database
from bridge.store.instances import instances_seen, lane_locks_by_instance, outbox_backlog
from config.loading import ConfigError, load_settings

#: clocks further apart than this confuse timers and reports across instances
MAX_SKEW_SECONDS = 2.0


def _say(ok: bool, text: str) -> None:
    print(f"  [{'ok' if ok else 'PROBLEM'}] {text}")


async def _instances(db: Database) -> int:
    """The running instances on this database, their locks, the outbox; the number of problems."""
    problems = 0
    async with db.read() as conn:
        seen = await instances_seen(conn, db.is_sqlite)
        locks = {} if db.is_sqlite else await lane_locks_by_instance(conn)
        backlog = await outbox_backlog(conn)
    if not seen:
        _say(True, "instances: none running on this database right now")
    for one in seen:
        where = f"{one.host} pid {one.pid}, up since {one.started_at:%Y-%m-%d %H:%M} UTC"
        sending = f"sending {locks.get(one.id, 0)} lane(s)" if not db.is_sqlite else "the only instance (SQLite)"
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


async def run_doctor(env_file: Path | None) -> int:
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
        problems += await _instances(db)
    except Exception as exc:
        problems += 1
        _say(False, f"database {settings.database_url.split('@')[-1]} unreachable: {type(exc).__name__}: {exc}")

    from sitechat.runtime import build_plugins

    for endpoint in (plugin.endpoint for plugin in build_plugins(settings, db)):
        name = endpoint.name
        destinations = settings.routes_to(name)
        try:
            # check() alone: starting would sync or take events that belong to the running service
            found = await endpoint.check(destinations)
        except Exception as exc:
            found = [f"{name}: cannot connect ({type(exc).__name__}: {exc})"]
        finally:
            await endpoint.stop()
        for problem in found:
            problems += 1
            _say(False, problem)
        if not found:
            _say(True, f"{name}: connected; can post to {', '.join(destinations) or 'no destination'}")
    await db.close()
    if settings.email is None:
        _say(True, "email: not configured (transcripts by email are off; set SITECHAT_SMTP_URL to turn them on)")
    print("All is well." if not problems else f"{problems} problem(s) found.")
    return 0 if not problems else 1
