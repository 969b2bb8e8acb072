"""Limits on what strangers may do (per client address, per conversation, per socket).

Two kinds:

- ``Limits``: the contract's limits (``SITECHAT_RATE_*``: new conversations per address, visitor
  messages per conversation, open sockets per address). With several instances behind a load balancer
  these must hold across all of them, so the runtime hands in the database's
  (``bridge.store.limits.SharedLimits``); ``LocalLimits`` counts them in this process, which is right
  only for a widget server on its own.
- ``SlidingWindow``: in this process only, for what stays cheap to get wrong by a factor (see the
  fields of ``WidgetContext`` for what N instances do to each of them).
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime
from itertools import count
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.limits import CountedUse

#: the buckets of the shared sliding windows
NEW_CONVERSATIONS = "conversations"  # per client address (the offline form counts here too)
NEW_MESSAGES = "messages"  # per conversation


class Limits(Protocol):
    async def hit(
        self, bucket: str, key: str, limit: int, window: float, now: datetime, conn: AsyncConnection | None = None
    ) -> float | None:
        """Count one use; None if allowed, else the seconds to wait (for ``Retry-After``). ``conn``: a
        transaction to count it in (the use then stands or falls with what it is for)."""
        ...

    def counted_use(self, bucket: str, key: str, limit: int, window: float, now: datetime) -> CountedUse | None:
        """The use for the store to count with what it is for (a visitor's line: in the same round trip on
        PostgreSQL); None when it is counted here, with ``hit``."""
        ...

    async def open_socket(self, address: str, limit: int, now: datetime) -> int | None:
        """Take a place for one more socket from ``address``: its id, or None when all are taken."""
        ...

    async def close_socket(self, place: int) -> None:
        """Give the place back (never raises for a store that is away)."""
        ...


class SlidingWindow:
    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> float | None:
        """Count one use; None if allowed, else the seconds to wait (for ``Retry-After``)."""
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1.0, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        if len(self._hits) > 100_000:  # forget idle keys so strangers cannot grow this without bound
            self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - self.window}
        return None


class LocalLimits:
    """``Limits`` counted in this process: one instance's view only."""

    def __init__(self) -> None:
        self._windows: dict[str, SlidingWindow] = {}
        self._sockets: dict[int, str] = {}
        self._per_address: Counter[str] = Counter()
        self._ids = count(1)

    async def hit(
        self, bucket: str, key: str, limit: int, window: float, now: datetime, conn: AsyncConnection | None = None
    ) -> float | None:
        found = self._windows.get(bucket)
        if found is None:
            found = self._windows[bucket] = SlidingWindow(limit, window)
        found.limit, found.window = limit, window
        return found.hit(key)

    def counted_use(self, bucket: str, key: str, limit: int, window: float, now: datetime) -> CountedUse | None:
        return None  # counted here, with ``hit``

    async def open_socket(self, address: str, limit: int, now: datetime) -> int | None:
        if self._per_address[address] >= limit:
            return None
        place = next(self._ids)
        self._sockets[place] = address
        self._per_address[address] += 1
        return place

    async def close_socket(self, place: int) -> None:
        address = self._sockets.pop(place, None)
        if address is not None:
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]
