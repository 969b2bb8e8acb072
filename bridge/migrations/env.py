"""Alembic environment: runs on a connection the caller hands over (see ``bridge.store.database``)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.store.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_from_url() -> None:
    """`alembic upgrade head` from the command line: open our own async engine."""

    async def go() -> None:
        engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(go())


connection = config.attributes.get("connection")
if connection is None:
    _run_from_url()
else:
    _run(connection)
