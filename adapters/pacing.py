"""Pacing sends per destination: a token bucket, plus a hard block when the service says "not before".

Destination-neutral (a Slack channel, a Matrix room): team chats limit posts per destination with a
short burst, and answer 429 with Retry-After beyond it. Pacing ourselves keeps us under the limit;
``block`` honours the service when it still says no.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Pacer:
    def __init__(self, per_second: float = 1.0, burst: int = 3, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be above 0 and burst at least 1")
        #: seconds between sends once the burst is spent (settable: a test against a server without limits)
        self.interval = 1.0 / per_second
        self.burst = burst
        self.clock = clock
        # the time at which the destination's bucket is empty again; a send is allowed while it is
        # less than `burst` intervals ahead of now
        self._busy_until: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}
        #: per destination, the line of those waiting for it: only the first waits on a timer
        self._turns: dict[str, asyncio.Lock] = {}

    def _wait_time(self, dest: str) -> float:
        now = self.clock()
        blocked = self._blocked_until.get(dest, 0.0) - now
        busy = self._busy_until.get(dest, now) - now - (self.burst - 1) * self.interval
        return max(0.0, blocked, busy)

    async def ready(self, dest: str) -> None:
        """Wait until a send to ``dest`` would be allowed, without taking it. Those waiting for one
        destination wait in line (first come, first served), and only the first on a timer: with a
        thousand chats queued behind one channel's pace, one wakes per send instead of all of them."""
        turn = self._turns.get(dest)
        if (turn is None or not turn.locked()) and self._wait_time(dest) <= 0:
            return  # nobody in line, and the pace allows it now
        if turn is None:
            turn = self._turns[dest] = asyncio.Lock()
        async with turn:
            # a timer, not a wait for another task: an Event would not fit
            while (wait := self._wait_time(dest)) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)

    async def take(self, dest: str) -> None:
        """Wait for a send to ``dest`` and count it."""
        await self.ready(dest)
        now = self.clock()
        self._busy_until[dest] = max(now, self._busy_until.get(dest, now)) + self.interval

    def block(self, dest: str, seconds: float) -> None:
        """The service said 429: nothing goes to ``dest`` before Retry-After has passed."""
        self._blocked_until[dest] = max(self._blocked_until.get(dest, 0.0), self.clock() + seconds)
