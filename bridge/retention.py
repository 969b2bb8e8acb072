"""Forgetting conversations: after ``SITECHAT_RETENTION_DAYS`` (a timer), or one person's now
(``sitechat forget --email``).

Erasing a conversation is one transaction: every post the bridge made for it in team chat gets an
``Erase`` delivery (on a lane of its own, so it outlives the conversation and an outage only delays
it), and every row of it goes from every table. The transcript mails already sent are the only copies
left.

With several instances each erasure happens once: retention takes its batch with ``FOR UPDATE SKIP
LOCKED`` (another instance's timer takes other rows, or none), and a conversation is locked before
its copies are collected, so two erasures of the same one never both queue its copies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bridge.model import RemoteId
from bridge.outbound import Erase
from bridge.store import erasure
from bridge.store.database import Database, connection_lost
from bridge.work import Work, utcnow

log = logging.getLogger(__name__)

#: conversations erased per transaction: a long backlog goes in bounded steps, never one huge write
BATCH = 100


async def erase(work: Work, cids: Sequence[str]) -> int:
    """Queue the removal of every copy the conversations have in team chat and delete all their rows;
    how many were erased (one already gone is not counted)."""
    present = await erasure.lock(work.conn, cids) if cids else []
    for cid in present:
        lane = erasure.new_lane()
        for copy in await erasure.copies_of(work.conn, cid):
            what = Erase(RemoteId(copy.remote_id) if copy.remote_id else None)
            await work.enqueue(lane, copy.endpoint, what, address=(copy.destination, copy.thread))
    return await erasure.delete_conversations(work.conn, present)


async def forget(db: Database, email: str, *, clock: Callable[[], datetime] = utcnow) -> int:
    """Erase every conversation of the person with this address, now; how many."""
    async with db.write(bulk=True) as conn:
        work = Work(conn, clock())
        return await erase(work, await erasure.conversations_of(conn, email))


class Retention:
    """Erase conversations closed more than ``days`` ago, checking every tenth of that (at most every
    ten minutes)."""

    def __init__(
        self,
        db: Database,
        days: float,
        *,
        clock: Callable[[], datetime] = utcnow,
        wake_deliveries: Callable[[], None] = lambda: None,
        batch: int = BATCH,
    ) -> None:
        self.db = db
        self.keep = timedelta(days=days)
        self.clock = clock
        self.wake_deliveries = wake_deliveries
        self.batch = batch
        self.tick = max(0.2, min(600.0, self.keep.total_seconds() / 10))

    async def run(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception as exc:
                if connection_lost(exc):
                    log.warning("retention: database connection lost; trying again")
                else:
                    log.exception("retention: failed; trying again")
            await asyncio.sleep(self.tick)

    async def purge(self) -> int:
        """Erase what is due, a batch per transaction; how many conversations."""
        total = 0
        while True:
            now = self.clock()
            cutoff = now - self.keep
            async with self.db.write(bulk=True) as conn:
                work = Work(conn, now)
                due = await erasure.closed_before(conn, cutoff, self.batch, skip_locked=not self.db.is_sqlite)
                total += await erase(work, due)
                if len(due) < self.batch:
                    # the erasures sent long ago: nothing is left to remember about them
                    await erasure.purge_erasure_lanes(conn, cutoff)
            if work.deliveries:
                self.wake_deliveries()
            if len(due) < self.batch:
                break
        if total:
            log.info("retention: erased %d conversation(s) closed before %s", total, f"{cutoff:%Y-%m-%d %H:%M} UTC")
        return total
