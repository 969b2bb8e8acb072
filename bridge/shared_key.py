"""A secret every instance shares: made once, kept in the database, read once per process. Links the bridge
signs (file downloads, follow-up mails, reply addresses) then check on any instance, after any restart."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from bridge.store import sync_state
from bridge.store.database import Database


class SharedKey:
    def __init__(self, db: Database, name: str, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.name = name
        self.clock = clock
        self._key: bytes | None = None

    async def get(self) -> bytes:
        if self._key is None:
            async with self.db.read() as conn:
                stored = await sync_state.get_state(conn, self.name)
            if stored is None:
                # insert only: two instances making it at once end up with the one written first
                with contextlib.suppress(IntegrityError):
                    async with self.db.write() as conn:
                        await sync_state.insert_state(conn, self.name, secrets.token_hex(32), self.clock())
                async with self.db.read() as conn:
                    stored = await sync_state.get_state(conn, self.name)
            assert stored is not None
            self._key = bytes.fromhex(stored)
        return self._key
