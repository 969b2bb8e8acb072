"""Signals between instances on one PostgreSQL: LISTEN/NOTIFY.

An instance that commits a change announces it; every other instance hears it and wakes its
delivery workers and the widget sockets it holds for that conversation. The signals are hints —
sockets and workers read the truth from the store — so a lost one only delays, never loses.
With SQLite there is one instance and nothing to send.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select

from bridge.live import Signal, signal_from_json, signal_to_json
from bridge.store.database import Database

log = logging.getLogger(__name__)
CHANNEL = "sitechat"
MAX_PAYLOAD = 7900  # PostgreSQL's limit is 8000 bytes


class Notifier:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.instance = secrets.token_hex(6)
        self._listener: Any = None
        self._conn: Any = None

    @property
    def enabled(self) -> bool:
        return not self.db.is_sqlite

    async def announce(self, signals: Sequence[tuple[str, Signal]], wake: bool) -> None:
        if not self.enabled or not (signals or wake):
            return
        payloads = [json.dumps({"i": self.instance, "c": cid, **signal_to_json(s)}) for cid, s in signals]
        if wake:
            payloads.append(json.dumps({"i": self.instance, "k": "wake"}))
        try:
            async with self.db.engine.connect() as conn:
                for payload in payloads:
                    if len(payload) <= MAX_PAYLOAD:
                        await conn.execute(select(func.pg_notify(CHANNEL, payload)))
                await conn.commit()
        except Exception as exc:  # the change is committed; peers catch up on their next poll
            log.warning("could not signal other instances: %s", exc)

    async def listen(self, on_signal: Callable[[str, Signal], None], on_wake: Callable[[], None]) -> None:
        """Hear the other instances until ``stop()``; our own announcements are skipped."""
        if not self.enabled:
            return

        def receive(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            try:
                data = json.loads(payload)
            except ValueError:
                return
            if data.get("i") == self.instance:
                return
            if data.get("k") == "wake":
                on_wake()
            elif "c" in data and (signal := signal_from_json(data)) is not None:
                on_signal(str(data["c"]), signal)

        self._conn = await self.db.engine.connect()
        raw = await self._conn.get_raw_connection()
        self._listener = raw.driver_connection
        await self._listener.add_listener(CHANNEL, receive)

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
