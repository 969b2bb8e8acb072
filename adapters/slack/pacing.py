"""Per-channel pacing: Slack takes about one message a second per channel, with short bursts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class ChannelPacer:
    def __init__(self, per_second: float = 1.0, burst: int = 3, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_second
        self.burst = burst
        self.clock = clock
        # the time at which the channel's bucket is empty again; a send is allowed while it is
        # less than `burst` intervals ahead of now
        self._busy_until: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}

    def _wait_time(self, channel: str) -> float:
        now = self.clock()
        blocked = self._blocked_until.get(channel, 0.0) - now
        busy = self._busy_until.get(channel, now) - now - (self.burst - 1) * self.interval
        return max(0.0, blocked, busy)

    async def ready(self, channel: str) -> None:
        """Wait until a send would be allowed, without taking it."""
        # a timer, not a wait for another task: an Event would not fit
        while (wait := self._wait_time(channel)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    async def take(self, channel: str) -> None:
        await self.ready(channel)
        now = self.clock()
        self._busy_until[channel] = max(now, self._busy_until.get(channel, now)) + self.interval

    def block(self, channel: str, seconds: float) -> None:
        """Slack said 429: nothing goes to the channel before Retry-After has passed."""
        self._blocked_until[channel] = max(self._blocked_until.get(channel, 0.0), self.clock() + seconds)
