"""Timers: close idle conversations, remind the team when a visitor waits, greet a visitor nobody has
answered yet.

Each firing is a conditional UPDATE, so with several instances polling the same database a timer
still fires once: the instance whose UPDATE changed the row does the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bridge import craft
from bridge.conversations import Conversations
from bridge.files import UNSENT_KEPT, Files
from bridge.follow_up import FollowUps
from bridge.reminders import Reminders
from bridge.store import conversations as q
from bridge.store import craft as craft_store
from bridge.work import utcnow

log = logging.getLogger(__name__)

#: a greeting this late after its time is no greeting any more (the service was down meanwhile)
GREETING_LATE = timedelta(minutes=2)
#: how often files never sent are looked for
PURGE_EVERY = timedelta(minutes=10)


class Timers:
    def __init__(
        self,
        conversations: Conversations,
        *,
        inactivity: timedelta,
        first_response: timedelta,
        clock: Callable[[], datetime] = utcnow,
        reminders: Reminders | None = None,
        files: Files | None = None,
        follow_ups: FollowUps | None = None,
    ) -> None:
        self.conversations = conversations
        self.inactivity = inactivity
        self.first_response = first_response
        self.clock = clock
        self.reminders = reminders or Reminders(conversations.core, first=first_response)
        self.files = files
        self._files_purged_at: datetime | None = None
        #: follow-up mail to visitors who left (``bridge/follow_up.py``); None: no email, or turned off
        self.follow_ups = follow_ups
        follow_up = [follow_ups.after] if follow_ups else []
        # fine enough that a 6-second test setting fires within a second, coarse enough to cost nothing
        shortest = min(inactivity, first_response, *follow_up, *self._greetings().values()).total_seconds()
        self.tick = max(0.2, min(5.0, shortest / 10))

    async def run(self) -> None:
        while True:
            try:
                await self.fire_due()
            except Exception:
                log.exception("timers: tick failed; trying again")
            await asyncio.sleep(self.tick)

    async def fire_due(self) -> None:
        now = self.clock()
        db = self.conversations.db
        async with db.read() as conn:
            idle = await q.open_conversations_idle_since(conn, now - self.inactivity)
        minutes = self.inactivity.total_seconds() / 60
        for cid in idle:
            await self.conversations.close(cid, reason=f"after {minutes:g} minutes without messages")
        await self.reminders.fire_due(now)
        await self._greet_due(now)
        if self.follow_ups is not None:
            await self.follow_ups.fire_due(now)
        if self.files is not None and (self._files_purged_at is None or now - self._files_purged_at > PURGE_EVERY):
            self._files_purged_at = now
            await self.files.purge(now - UNSENT_KEPT)

    # -- the automatic greeting (CONTRACT §10) ---------------------------------------------------------

    def _greetings(self) -> dict[str, timedelta]:
        """Site → how long after the visitor's first message it greets, for the sites that do."""
        sites = self.conversations.core.sites
        return {sid: timedelta(seconds=s.auto_greeting_seconds) for sid, s in sites.items() if s.auto_greeting_seconds}

    async def _greet_due(self, now: datetime) -> None:
        """Greet the visitors nobody has answered in their site's time; a greeting that would come more
        than ``GREETING_LATE`` late (the service was down) is left out."""
        greetings = self._greetings()
        if not greetings:
            return
        core = self.conversations.core
        async with core.db.read() as conn:
            waiting = await craft_store.waiting_ungreeted(
                conn, list(greetings), wrote_after=now - max(greetings.values()) - GREETING_LATE
            )
        for cid, site_id, wrote_at in waiting:
            after = greetings[site_id]
            if now - after - GREETING_LATE < wrote_at <= now - after:
                async with core.work() as work:
                    await craft.greet(core, work, cid)
