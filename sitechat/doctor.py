"""``sitechat doctor``: what is wrong, in plain words, and how to fix it. Exit 0 only when all is well."""

from __future__ import annotations

import stat
from pathlib import Path

from bridge.store.database import Database
from config.loading import ConfigError, load_settings


def _say(ok: bool, text: str) -> None:
    print(f"  [{'ok' if ok else 'PROBLEM'}] {text}")


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
