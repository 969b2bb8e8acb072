"""PostgreSQL's pooled connections, checked before use only when they sat idle a while."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.exc import InvalidatePoolError

#: a pooled PostgreSQL connection idle for longer is checked (one round trip) before it is used
CHECK_AFTER_IDLE_SECONDS = 1.0


def idle_from_now(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def check_if_idle(dialect: Any, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's ``pool_pre_ping``, but only for a connection that sat idle a while: a busy instance
    takes a connection back from the pool several times per message, and a check each time was a round
    trip per use. A connection used a moment ago that has died meanwhile (a restart, a cut) fails its first
    statement instead — like one that dies during a transaction — and that failure invalidates the pool."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        # the driver saw it close (a restart, a terminated backend): no need to ask
        raise InvalidatePoolError()  # connect afresh; the others older than now are replaced when next taken
    since = record.info.get("idle_since")
    if since is None or time.monotonic() - since < CHECK_AFTER_IDLE_SECONDS:
        return  # fresh, or in use a moment ago
    try:
        dialect.do_ping(dbapi_connection)
    except (OSError, TimeoutError) as exc:  # not translated by the driver: a dead connection all the same
        raise InvalidatePoolError() from exc
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, dbapi_connection, None):
            raise InvalidatePoolError() from exc
        raise
