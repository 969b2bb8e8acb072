"""One Matrix session across all instances: only the instance holding the Matrix lock syncs, sends and
opens the encryption store.

Two instances must never use one encryption store at once (each would ratchet its own copy of the
keys, and one of them would send what the other cannot decrypt), nor sync the same rooms (each would
take every reply). So the session runs inside ``StateStore.exclusive("session")`` — a PostgreSQL
advisory lock on a connection of its own; on SQLite there is one instance and the lock is always
granted. The holder looks at its lease every couple of seconds and stops the session at once when
the lock's connection is gone; a new holder waits longer than that before it starts, so the two never
overlap — unless the last holder said it stopped cleanly (a rolling restart, a plain start), when
there is nothing to wait for. An instance without the lock stands by and tries again every few
seconds: when the holder stops (a rolling restart, a crash), one of the others takes over.

Deliveries follow the lock: a lane picked up on an instance that stands by first waits a little for
the lock (``ready``); by then the holder, which sees the same outbox, has usually sent the lane's
deliveries itself, and the lane finds nothing left to do. Only if the lock stays elsewhere does the
delivery fail with ``RetryLater`` — and is sent by the holder (or by this instance, once it holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adapters.matrix.inbound import START_WAIT, SyncLoop
from adapters.matrix.responses import describe
from adapters.matrix.session import MatrixSession
from bridge.endpoint import ExclusiveLease, Inbox, StateStore

log = logging.getLogger(__name__)

LOCK_NAME = "session"
#: how often an instance that stands by tries to take the lock
STANDBY_SECONDS = 5.0
#: how often the holder makes sure it still holds it (shorter than any takeover wait)
CHECK_SECONDS = 2.0
#: in the endpoint's state: whether the last holder stopped cleanly (then nobody waits to take over)
MARKER, HELD, RELEASED = "session_holder", "held", "released"


class SessionHolder:
    def __init__(self, state: StateStore, session: MatrixSession, sync: SyncLoop) -> None:
        self._state = state
        self._session = session
        self._sync = sync
        self._task: asyncio.Task[None] | None = None
        self._holding = asyncio.Event()
        #: set once the first attempt is settled: holding and connected (or failing), or standing by
        self._settled = asyncio.Event()
        self._standing_by = False

    @property
    def holding(self) -> bool:
        return self._holding.is_set()

    async def start(self, inbox: Inbox) -> None:
        """Take the lock if it is free and connect (bounded, so a homeserver that does not answer
        cannot hold up the start); otherwise stand by."""
        self._task = asyncio.create_task(self._run(inbox), name="matrix-session")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_WAIT + 5):
                await self._settled.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_until_holding(self, seconds: float) -> bool:
        """Whether this instance runs the session, waiting up to ``seconds`` for it to take over (not
        at all when it is not started: then nothing would take over)."""
        if not self.holding and self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._holding.wait()
        return self.holding

    async def _run(self, inbox: Inbox) -> None:
        while True:
            try:
                async with self._state.exclusive(LOCK_NAME) as lease:
                    if lease is None:
                        self._stand_by()
                    else:
                        await self._hold(inbox, lease)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: nobody can be sure of the lock now
                log.warning("Matrix: cannot take the Matrix lock (%s); trying again", describe(exc))
                self._settled.set()
            await asyncio.sleep(STANDBY_SECONDS)

    def _stand_by(self) -> None:
        if not self._standing_by:
            log.info("Matrix: another instance runs the Matrix session; this one stands by to take over")
            self._standing_by = True
        self._settled.set()

    async def _hold(self, inbox: Inbox, lease: ExclusiveLease) -> None:
        shared = lease.takeover_seconds > 0  # several instances may be running
        if shared and await self._state.get(MARKER) == HELD:
            # the previous holder did not say it stopped: it may not have noticed yet that its lock
            # is gone (a cut connection), so it gets the time to stop first
            log.info("Matrix: took the Matrix lock; starting the session in %.0f s", lease.takeover_seconds)
            await asyncio.sleep(lease.takeover_seconds)
        if shared:
            await self._state.put(MARKER, HELD)
            if not await lease.still_held():
                return
        self._standing_by = False
        await self._session.close()  # a plain client left by a check (doctor) must not be reused
        self._session.use_encryption = True
        self._holding.set()
        try:
            await self._sync.start(inbox)
            self._settled.set()
            await _until_lost(lease)
            log.error("Matrix: the Matrix lock is lost (its database connection was cut); stopping the session here")
        finally:
            self._holding.clear()
            self._session.use_encryption = False
            await self._sync.stop()
            await self._session.close()
            if shared:
                await self._say_released(lease)

    async def _say_released(self, lease: ExclusiveLease) -> None:
        """A clean stop, said while still holding the lock: the next holder need not wait."""
        with contextlib.suppress(Exception):
            if await lease.still_held():
                await self._state.put(MARKER, RELEASED)


async def _until_lost(lease: ExclusiveLease) -> None:
    """Returns when the lease is gone, looking every ``CHECK_SECONDS``."""
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        if not await lease.still_held():
            return
