"""The outbox: pending deliveries, one ordered lane per (conversation, endpoint)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.conversations import utc
from bridge.store.tables import delivery


@dataclass(frozen=True)
class PendingDelivery:
    id: int
    conversation_id: str
    endpoint: str
    kind: str
    message_id: str | None
    payload: dict[str, Any] | None
    attempts: int
    in_doubt: bool
    next_attempt_at: datetime
    #: when it was accepted (the delivery-lag metric measures from here)
    created_at: datetime | None = None


@dataclass(frozen=True)
class Lane:
    conversation_id: str
    endpoint: str

    @property
    def key(self) -> str:
        return f"{self.endpoint}:{self.conversation_id}"


async def enqueue(
    conn: AsyncConnection,
    cid: str,
    endpoint: str,
    kind: str,
    now: datetime,
    *,
    message_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        insert(delivery).values(
            conversation_id=cid,
            endpoint=endpoint,
            kind=kind,
            message_id=message_id,
            payload=payload,
            done=False,
            attempts=0,
            in_doubt=False,
            next_attempt_at=now,
            created_at=now,
        )
    )


async def ready_lanes(conn: AsyncConnection, now: datetime, endpoints: Sequence[str]) -> list[Lane]:
    """Lanes whose head (lowest pending id) is due. A later delivery never overtakes its head."""
    head = (
        select(delivery.c.conversation_id, delivery.c.endpoint, func.min(delivery.c.id).label("head_id"))
        .where(and_(delivery.c.done.is_(False), delivery.c.endpoint.in_(endpoints)))
        .group_by(delivery.c.conversation_id, delivery.c.endpoint)
        .subquery()
    )
    rows = await conn.execute(
        select(head.c.conversation_id, head.c.endpoint)
        .join(delivery, delivery.c.id == head.c.head_id)
        .where(delivery.c.next_attempt_at <= now)
        .order_by(head.c.head_id)
    )
    return [Lane(r.conversation_id, r.endpoint) for r in rows]


async def next_due_at(conn: AsyncConnection, endpoints: Sequence[str]) -> datetime | None:
    value: datetime | None = (
        await conn.execute(
            select(func.min(delivery.c.next_attempt_at)).where(
                and_(delivery.c.done.is_(False), delivery.c.endpoint.in_(endpoints))
            )
        )
    ).scalar()
    return utc(value)


async def lane_head(conn: AsyncConnection, lane: Lane, limit: int) -> list[PendingDelivery]:
    rows = await conn.execute(
        select(delivery)
        .where(
            and_(
                delivery.c.done.is_(False),
                delivery.c.conversation_id == lane.conversation_id,
                delivery.c.endpoint == lane.endpoint,
            )
        )
        .order_by(delivery.c.id)
        .limit(limit)
    )
    return [
        PendingDelivery(
            r.id,
            r.conversation_id,
            r.endpoint,
            r.kind,
            r.message_id,
            r.payload,
            r.attempts,
            bool(r.in_doubt),
            utc(r.next_attempt_at),
            utc(r.created_at),
        )
        for r in rows
    ]


async def mark_attempt(conn: AsyncConnection, ids: Sequence[int], leased_until: datetime) -> None:
    """Committed before the network call: after a crash, ``in_doubt`` says the send may have landed, and
    nobody else tries before ``leased_until`` (by then this attempt has finished or given up)."""
    await conn.execute(
        update(delivery)
        .where(delivery.c.id.in_(ids))
        .values(attempts=delivery.c.attempts + 1, in_doubt=True, next_attempt_at=leased_until)
    )


async def mark_done(
    conn: AsyncConnection, did: int, now: datetime, remote_id: str | None, more: Sequence[str] = ()
) -> bool:
    """Sent: ``remote_id`` (and ``more``, the other posts it became) are what an erasure removes later.
    False when the delivery is gone: its conversation was erased while the send was on its way."""
    done = await conn.execute(
        update(delivery)
        .where(delivery.c.id == did)
        .values(
            done=True,
            done_at=now,
            remote_id=remote_id,
            remote_parts=list(more) or None,
            in_doubt=False,
            last_error=None,
        )
    )
    return bool(done.rowcount)


async def set_aside(conn: AsyncConnection, did: int, now: datetime, why: str) -> None:
    """Done without sending: a delivery that can never be sent must not hold up its lane."""
    await conn.execute(
        update(delivery).where(delivery.c.id == did).values(done=True, done_at=now, in_doubt=False, last_error=why)
    )


async def mark_failed(
    conn: AsyncConnection, ids: Sequence[int], retry_at: datetime, error: str, *, maybe_sent: bool
) -> None:
    await conn.execute(
        update(delivery)
        .where(delivery.c.id.in_(ids))
        .values(next_attempt_at=retry_at, last_error=error[:1000], in_doubt=maybe_sent)
    )


async def readdress_pending(
    conn: AsyncConnection, cid: str, endpoint: str, destination: str, thread: str | None, now: datetime
) -> None:
    """Before a conversation moves to a new thread: what is still queued for the old one goes there.
    With no old thread yet (its root never got out) there is nowhere to send it; the history that
    opens the new thread carries those lines, so they are settled here rather than left to block."""
    rows = await conn.execute(
        select(delivery.c.id, delivery.c.payload).where(
            and_(delivery.c.conversation_id == cid, delivery.c.endpoint == endpoint, delivery.c.done.is_(False))
        )
    )
    for row in rows.all():
        if thread is None:
            await conn.execute(
                update(delivery)
                .where(delivery.c.id == row.id)
                .values(done=True, done_at=now, last_error="superseded: the conversation moved before its root was out")
            )
        else:
            payload = {**(row.payload or {}), "destination": destination, "thread": thread}
            await conn.execute(update(delivery).where(delivery.c.id == row.id).values(payload=payload))


async def pending_count(conn: AsyncConnection, endpoint: str | None = None) -> int:
    query = select(func.count()).select_from(delivery).where(delivery.c.done.is_(False))
    if endpoint:
        query = query.where(delivery.c.endpoint == endpoint)
    return int((await conn.execute(query)).scalar_one())
