"""Sliding-window limits for what strangers may do (per client address, per conversation)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


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
