"""Small durable state an endpoint keeps across restarts (Matrix sync token, device, access token)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bridge.store import conversations as q
from bridge.store.database import Database


class KeyValueState:
    def __init__(self, db: Database, prefix: str, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.prefix = prefix
        self.clock = clock

    async def get(self, key: str) -> str | None:
        async with self.db.read() as conn:
            return await q.get_state(conn, f"{self.prefix}:{key}")

    async def put(self, key: str, value: str) -> None:
        async with self.db.write() as conn:
            await q.put_state(conn, f"{self.prefix}:{key}", value, self.clock())
