"""Signals between instances on one PostgreSQL: LISTEN/NOTIFY.

An instance that commits a change announces it; every other instance hears it and wakes its
delivery workers and the widget sockets it holds for that conversation. The signals are hints —
sockets and workers read the truth from the store — so a lost one only delays, never loses.
With SQLite there is one instance and nothing to send.

A unit of work announces in its own transaction, just before it commits: one ``pg_notify`` statement
whose notifications PostgreSQL sends with the commit (and drops with a rollback). Its signals travel
together, ``{"i": instance, "s": [[conversation, signal], …], "w": true}`` (``w``: wake the delivery
workers), in as few payloads as fit PostgreSQL's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.live import Recheck, Signal, signal_from_json, signal_to_json
from bridge.store.conversations import recently_changed
from bridge.store.database import Database

log = logging.getLogger(__name__)
CHANNEL = "sitechat"
MAX_PAYLOAD = 7900  # PostgreSQL's limit is 8000 bytes
#: instances' clocks differ a little, and a commit lands a little after its timestamp was taken
RECHECK_MARGIN = timedelta(seconds=30)


def utcnow() -> datetime:
    return datetime.now(UTC)


def payloads(instance: str, signals: Sequence[tuple[str, Signal]], wake: bool) -> list[str]:
    """What to NOTIFY for these signals: one payload, or several when they do not fit in one (a signal
    that does not fit even alone is left out: the peers' next recheck covers it)."""
    head, tail = '{"i":' + json.dumps(instance) + ',"s":[', "]" + (',"w":true}' if wake else "}")
    room = MAX_PAYLOAD - len(head) - len(tail)  # ASCII (json.dumps escapes the rest): characters are bytes
    chunks: list[str] = []
    for cid, signal in signals:
        entry = json.dumps([cid, signal_to_json(signal)], separators=(",", ":"))
        if len(entry) > room:
            log.debug("a signal too long to NOTIFY is left out (%d characters)", len(entry))
        elif chunks and len(chunks[-1]) + 1 + len(entry) <= room:
            chunks[-1] += "," + entry
        else:
            chunks.append(entry)
    if wake and not chunks:
        chunks.append("")
    return [head + chunk + tail for chunk in chunks]


def heard(data: Mapping[str, Any]) -> tuple[list[tuple[str, Signal]], bool]:
    """The signals in another instance's payload, and whether it says to wake the delivery workers.
    Also the one-signal payloads an instance of the previous version sends during a rolling update."""
    if "s" in data:
        found = data["s"] if isinstance(data["s"], list) else []
        signals = []
        for entry in found:
            if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict):
                if (signal := signal_from_json(entry[1])) is not None:
                    signals.append((str(entry[0]), signal))
        return signals, data.get("w") is True
    if data.get("k") == "wake":
        return [], True
    if "c" in data and (signal := signal_from_json(data)) is not None:
        return [(str(data["c"]), signal)], False
    return [], False


class Notifier:
    """NOTIFY what this instance commits; LISTEN for the others — and never trust the doorbell alone.

    The LISTEN connection is watched: a cut one (a PostgreSQL restart, ``pg_terminate_backend``, a
    network blip) is re-established with back-off, and after the gap every conversation changed
    meanwhile is rechecked from the store. A slow periodic recheck of recently changed conversations
    covers a NOTIFY that never came (one sent on its own connection that failed, a signal too long to
    send): that costs seconds, never a message.
    """

    def __init__(self, db: Database, *, watch_seconds: float = 2.0, recheck_seconds: float = 10.0) -> None:
        self.db = db
        self.instance = db.instance
        self.watch_seconds = watch_seconds
        self.recheck_seconds = recheck_seconds
        self._listener: Any = None
        self._conn: AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_signal: Callable[[str, Signal], None] = lambda _cid, _signal: None
        self._on_wake: Callable[[], None] = lambda: None
        #: what is wrong with the LISTEN connection right now (shown by /readyz and doctor)
        self.problem: str | None = None
        self.reconnects = 0

    @property
    def enabled(self) -> bool:
        return not self.db.is_sqlite

    @property
    def listening(self) -> bool:
        """Hears the other instances (always true with SQLite: there are none)."""
        return not self.enabled or (self._listener is not None and not self._listener.is_closed())

    async def announce(
        self, signals: Sequence[tuple[str, Signal]], wake: bool, conn: AsyncConnection | None = None
    ) -> None:
        """Tell the other instances. ``conn``: a unit of work's transaction, about to commit — they hear it
        when it commits, and never if it rolls back (a failure here fails the transaction, like any of its
        statements); None: at once, on a connection of its own (what no unit of work stores: typing)."""
        if not self.enabled or not (signals or wake):
            return
        sent = payloads(self.instance, signals, wake)
        if not sent:
            return
        # one statement, however many payloads
        notify = select(*(func.pg_notify(CHANNEL, payload) for payload in sent))
        if conn is not None:
            await conn.execute(notify)
            return
        try:
            async with self.db.engine.connect() as own:
                await own.execute(notify)
                await own.commit()
        except Exception as exc:  # the change is committed; peers catch up on their next recheck
            log.warning("could not signal other instances: %s", exc)

    async def listen(self, on_signal: Callable[[str, Signal], None], on_wake: Callable[[], None]) -> None:
        """Hear the other instances until ``stop()``; our own announcements are skipped."""
        if not self.enabled:
            return
        self._on_signal, self._on_wake = on_signal, on_wake
        try:
            await self._connect()
        except Exception as exc:  # the watcher keeps trying; meanwhile rechecks and polls carry on
            self.problem = f"cannot LISTEN for other instances ({type(exc).__name__}); retrying"
            log.warning("%s", self.problem)
        self._task = asyncio.create_task(self._watch(), name="notify-watch")

    def _receive(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("i") == self.instance:
            return
        signals, wake = heard(data)
        for cid, signal in signals:
            self._on_signal(cid, signal)
        if wake:
            self._on_wake()

    async def _connect(self) -> None:
        conn = await self.db.engine.connect()
        try:
            raw = await conn.get_raw_connection()
            listener = raw.driver_connection
            assert listener is not None
            await listener.add_listener(CHANNEL, self._receive)
        except BaseException:
            await conn.close()
            raise
        self._conn, self._listener = conn, listener
        self.problem = None

    async def _alive(self) -> bool:
        listener = self._listener
        if listener is None or listener.is_closed():
            return False
        try:
            async with asyncio.timeout(5):
                await listener.execute("SELECT 1")
        except Exception:
            return False
        return True

    async def _drop(self) -> None:
        conn, self._conn, self._listener = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        checked = utcnow()
        rechecked = loop.time()
        failures = 0
        while True:
            await asyncio.sleep(self.watch_seconds if not failures else min(30.0, 0.5 * 2**failures))
            try:
                gap = not await self._alive()
                if gap:
                    if failures == 0:
                        log.warning("LISTEN connection lost; reconnecting (the store is rechecked after the gap)")
                    await self._drop()
                    await self._connect()
                    self.reconnects += 1
                    log.info("LISTEN connection re-established")
                if gap or loop.time() >= rechecked + self.recheck_seconds:
                    now = utcnow()
                    await self._recheck(since=checked - RECHECK_MARGIN)
                    checked, rechecked = now, loop.time()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.problem = f"cannot LISTEN for other instances ({type(exc).__name__}); retrying"
                if failures == 1:
                    log.warning("%s: %s", self.problem, exc)

    async def _recheck(self, *, since: datetime) -> None:
        """Every conversation changed since ``since`` looks at the store again (sockets held here do)."""
        async with self.db.read() as conn:
            changed = await recently_changed(conn, since)
        for cid, seen in changed:
            self._on_signal(cid, Recheck(seen))
        self._on_wake()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn, self._listener = None, None
