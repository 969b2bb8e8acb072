"""The ``sync_state`` rows: small named values kept across restarts and shared by the instances (an
endpoint's sync token, a shared key, that a weekly report was posted)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.tables import sync_state


async def get_state(conn: AsyncConnection, key: str) -> str | None:
    return (await conn.execute(select(sync_state.c.value).where(sync_state.c.key == key))).scalar_one_or_none()


async def put_state(conn: AsyncConnection, key: str, value: str, now: datetime) -> None:
    updated = await conn.execute(update(sync_state).where(sync_state.c.key == key).values(value=value, updated_at=now))
    if not updated.rowcount:
        await conn.execute(insert(sync_state).values(key=key, value=value, updated_at=now))


async def insert_state(conn: AsyncConnection, key: str, value: str, now: datetime) -> None:
    """A ``sync_state`` row that must be made once (IntegrityError when another instance was first)."""
    await conn.execute(insert(sync_state).values(key=key, value=value, updated_at=now))
