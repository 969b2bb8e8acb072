"""What ``report`` and ``export`` share: the period, the site, and plain words when the database is not ready."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bridge.store.database import Database
from config.settings import Settings
from sitechat.insight.period import since

T = TypeVar("T")


class Refused(Exception):
    """A request the command cannot carry out; its message says why, in plain words."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    site: str | None


def period_of(settings: Settings, since_text: str, site: str | None, now: datetime | None = None) -> Period:
    end = now or datetime.now(UTC)
    try:
        start = since(since_text, end)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    if start >= end:
        raise Refused(f"--since {since_text!r} is not in the past")
    if site is not None:
        site = site.lower()
        if site not in settings.sites:
            known = ", ".join(sorted(settings.sites)) or "none configured"
            raise Refused(f"--site {site!r}: no such site (sites: {known})")
    return Period(start, end, site)


async def with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on the configured database; a database that cannot be read is said plainly."""
    db = Database(settings.database_url)
    try:
        return await work(db)
    except BrokenPipeError:
        raise  # the reader of our output went away: not the database's doing
    except (SQLAlchemyError, OSError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        hint = " (run `sitechat migrate` first?)" if "no such table" in first or "does not exist" in first else ""
        raise Refused(f"cannot read the database {settings.database_url.split('@')[-1]}: {first}{hint}", 1) from None
    finally:
        await db.close()


def refuse(exc: Refused) -> int:
    print(f"sitechat: {exc}", file=sys.stderr)
    return exc.code
