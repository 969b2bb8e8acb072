"""The outbox: pending deliveries, one ordered lane per (conversation, endpoint)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, null, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.model import Conversation, Message
from bridge.store.conversations import LINK_COLUMNS, Links, conversation_of, links_of, message_of, utc
from bridge.store.message_links import REMEMBER
from bridge.store.tables import conversation, delivery, message, thread_link


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


#: the statements of every message's way out, built once (building and cache-keying a statement costs
#: more than SQLite takes to run it)
_ENQUEUE = insert(delivery)
#: a lane's first pending deliveries, each with its message's columns (``m_…``; None without one); the
#: first also with its conversation's (``c_…``; None for an erasure lane, whose conversation is gone) and
#: its thread links (``link_…``: a row per link) — only the first: the conversation's row is big (its pages,
#: the client's facts), and a batch of twenty with two links would read it forty times
_HEAD = (
    select(delivery, func.row_number().over(order_by=delivery.c.id).label("nth"))
    .where(
        and_(
            delivery.c.done.is_(False),
            delivery.c.conversation_id == bindparam("lane_cid"),
            delivery.c.endpoint == bindparam("lane_endpoint"),
        )
    )
    .order_by(delivery.c.id)
    .limit(bindparam("lane_limit"))
    .subquery("head")
)
_FIRST = _HEAD.c.nth == 1
_LANE_HEAD = (
    select(
        _HEAD,
        *(c.label(f"m_{c.name}") for c in message.c),
        *(c.label(f"c_{c.name}") for c in conversation.c),
        *LINK_COLUMNS,
    )
    .select_from(
        _HEAD.outerjoin(message, message.c.id == _HEAD.c.message_id)
        .outerjoin(conversation, and_(_FIRST, conversation.c.id == _HEAD.c.conversation_id))
        .outerjoin(thread_link, and_(_FIRST, thread_link.c.conversation_id == _HEAD.c.conversation_id))
    )
    .order_by(_HEAD.c.id)
)
_CONVERSATION_COLUMNS = [(f"c_{c.name}", c.name) for c in conversation.c]
_MESSAGE_COLUMNS = [(f"m_{c.name}", c.name) for c in message.c]
_MARK_ATTEMPT = (
    update(delivery)
    .where(delivery.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        attempts=delivery.c.attempts + 1,
        in_doubt=True,
        next_attempt_at=bindparam("leased_until", type_=delivery.c.next_attempt_at.type),
    )
)
_MARK_DONE = update(delivery).where(delivery.c.id == bindparam("did"))
#: SQL NULL, as ``values(remote_parts=None)`` stores it (a None parameter would be JSON's ``null``)
_MARK_DONE_ONE_POST = _MARK_DONE.values(remote_parts=null())


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
    row: dict[str, Any] = {
        "conversation_id": cid,
        "endpoint": endpoint,
        "kind": kind,
        "message_id": message_id,
        "done": False,
        "attempts": 0,
        "in_doubt": False,
        "next_attempt_at": now,
        "created_at": now,
    }
    if payload is not None:  # left out, it is SQL NULL (a None parameter would be JSON's ``null``)
        row["payload"] = payload
    await conn.execute(_ENQUEUE, row)


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


@dataclass(frozen=True)
class LaneHead:
    """What a lane's next batch is made from, read in one statement."""

    pending: list[PendingDelivery]
    #: the messages the deliveries carry, by id (an erased one is not there)
    messages: dict[str, Message]
    #: None: the lane's conversation is gone (an erasure lane's deliveries carry all they need)
    conversation: Conversation | None
    links: Links


async def lane_head(conn: AsyncConnection, lane: Lane, limit: int) -> LaneHead:
    """A lane's first ``limit`` pending deliveries, oldest first, with the messages they carry and the
    conversation and its thread links, in one statement (nothing else when the lane is empty)."""
    rows = (
        await conn.execute(
            _LANE_HEAD, {"lane_cid": lane.conversation_id, "lane_endpoint": lane.endpoint, "lane_limit": limit}
        )
    ).all()
    pending: dict[int, PendingDelivery] = {}
    messages: dict[str, Message] = {}
    for r in rows:
        if r.id in pending:
            continue  # the first delivery again, with the conversation's next thread link
        pending[r.id] = PendingDelivery(
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
        if r.m_id is not None and r.m_id not in messages:
            m = r._mapping
            messages[r.m_id] = message_of({name: m[label] for label, name in _MESSAGE_COLUMNS})
    first = rows[0] if rows else None
    conv = None
    if first is not None and first.c_id is not None:
        conv = conversation_of({name: first._mapping[label] for label, name in _CONVERSATION_COLUMNS})
    links = links_of([r for r in rows if r.id == first.id]) if first is not None else {}
    return LaneHead(list(pending.values()), messages, conv, links)


async def mark_attempt(conn: AsyncConnection, ids: Sequence[int], leased_until: datetime) -> None:
    """Committed before the network call: after a crash, ``in_doubt`` says the send may have landed, and
    nobody else tries before ``leased_until`` (by then this attempt has finished or given up)."""
    await conn.execute(_MARK_ATTEMPT, {"ids": list(ids), "leased_until": leased_until})


async def mark_done(
    conn: AsyncConnection, did: int, now: datetime, remote_id: str | None, more: Sequence[str] = ()
) -> bool:
    """Sent: ``remote_id`` (and ``more``, the other posts it became) are what an erasure removes later.
    False when the delivery is gone: its conversation was erased while the send was on its way."""
    values = {"did": did, "done": True, "done_at": now, "remote_id": remote_id, "in_doubt": False, "last_error": None}
    if more:
        done = await conn.execute(_MARK_DONE, {**values, "remote_parts": list(more)})
    else:
        done = await conn.execute(_MARK_DONE_ONE_POST, values)
    return bool(done.rowcount)


@dataclass(frozen=True)
class Copy:
    """A post the endpoint made of a message (its remote id): its echo is never taken for a reply."""

    remote_id: str
    message_id: str


async def remember_copies(
    conn: AsyncConnection, endpoint: str, cid: str, copies: Sequence[Copy], now: datetime
) -> None:
    """The posts one batch became, in one statement; a remote id recorded already (several lines combined
    into one post, a replayed echo) keeps what it had."""
    rows = list(
        {
            c.remote_id: {
                "endpoint": endpoint,
                "remote_id": c.remote_id,
                "message_id": c.message_id,
                "conversation_id": cid,
                "created_at": now,
            }
            for c in reversed(copies)  # the first copy of a remote id wins, as it would one by one
        }.values()
    )
    if not rows:
        return
    # the statement built once and given the rows as parameters: a multi-row VALUES would be compiled
    # anew for every batch (SQLAlchemy cannot cache it)
    await conn.execute(REMEMBER[conn.dialect.name == "postgresql"], rows)


#: PostgreSQL: a batch's plain sends recorded in one statement (no thread opened, one post each) — each
#: delivery marked done, and its post remembered as its message's copy (the first delivery's wins) unless
#: the delivery is gone (erased while on its way); the ids marked done come back
_RECORD_SENDS = text(
    """
    WITH sent (id, remote_id, message_id) AS (
        SELECT * FROM unnest(CAST(:ids AS BIGINT[]), CAST(:remote_ids AS VARCHAR[]), CAST(:message_ids AS VARCHAR[]))
    ), done AS (
        UPDATE delivery SET done = true, done_at = :now, remote_id = sent.remote_id, in_doubt = false,
            last_error = NULL, remote_parts = NULL
        FROM sent WHERE delivery.id = sent.id
        RETURNING delivery.id
    ), copies AS (
        INSERT INTO message_link (endpoint, remote_id, message_id, conversation_id, created_at)
        SELECT DISTINCT ON (sent.remote_id) :endpoint, sent.remote_id, sent.message_id, :cid, :now
        FROM sent JOIN done ON done.id = sent.id
        WHERE NULLIF(sent.remote_id, '') IS NOT NULL AND NULLIF(sent.message_id, '') IS NOT NULL
        ORDER BY sent.remote_id, sent.id
        ON CONFLICT DO NOTHING
    )
    SELECT id FROM done
    """
).bindparams(bindparam("now", type_=delivery.c.done_at.type))


@dataclass(frozen=True)
class PlainSend:
    """A delivery sent as one post (``remote_id``; None: the endpoint has no id for it), opening no thread."""

    delivery_id: int
    remote_id: str | None
    message_id: str | None


async def record_sends(
    conn: AsyncConnection, endpoint: str, cid: str, sends: Sequence[PlainSend], now: datetime
) -> set[int]:
    """PostgreSQL: ``mark_done`` and ``remember_copies`` for plain sends, in one statement (one round
    trip, whole in itself: run in autocommit it needs no BEGIN and COMMIT). The ids marked done; the others
    are gone."""
    params = {
        "ids": [s.delivery_id for s in sends],
        "remote_ids": [s.remote_id for s in sends],
        "message_ids": [s.message_id for s in sends],
        "endpoint": endpoint,
        "cid": cid,
        "now": now,
    }
    return {int(r.id) for r in await conn.execute(_RECORD_SENDS, params)}


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


async def posts_of_message(conn: AsyncConnection, endpoint: str, message_id: str | None) -> list[str]:
    """Every post a message became on ``endpoint``: each sent delivery's ``remote_id`` and ``remote_parts``
    (a long text's parts, the files sent with it), in the order they were made."""
    if message_id is None:
        return []
    rows = await conn.execute(
        select(delivery.c.remote_id, delivery.c.remote_parts)
        .where(
            and_(
                delivery.c.endpoint == endpoint,
                delivery.c.message_id == message_id,
                delivery.c.kind == "message",
                delivery.c.done.is_(True),
            )
        )
        .order_by(delivery.c.id)
    )
    found: list[str] = []
    for remote, parts in rows:
        for post in [*(parts or ()), remote]:
            if post and post not in found:
                found.append(str(post))
    return found
