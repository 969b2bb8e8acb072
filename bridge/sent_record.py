"""What a batch's sends became, recorded on the lane's lock connection: each delivery marked done with
its post's id, a thread's root kept with its conversation, each post remembered as its message's copy
(its echo is never taken for a reply) — and a send that landed after its conversation was erased is
taken back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.endpoint import Outgoing, Sent
from bridge.model import RemoteId
from bridge.outbound import Erase, encode
from bridge.store import conversations as q
from bridge.store import erasure, outbox, sqlite_sends
from bridge.store.database import LaneLease
from bridge.store.outbox import Lane, PendingDelivery


@dataclass(frozen=True)
class SentBatch:
    """One batch's sends, with what they were made from."""

    lane: Lane
    lease: LaneLease
    sent: Sequence[Sent]
    #: the batch's deliveries and what was sent for each, by delivery id
    deliveries: Mapping[int, PendingDelivery]
    outgoing: Mapping[int, Outgoing]
    now: datetime


async def record(batch: SentBatch, *, sqlite: bool) -> None:
    """Sends that opened no thread and made one post each — nearly all — in one call (on PostgreSQL one
    statement, a round trip; on SQLite past SQLAlchemy); the others one by one."""
    if all(s.thread is None and not s.more for s in batch.sent):
        await _record_plain(batch, sqlite)
    else:
        await _record_each(batch)


async def _record_plain(b: SentBatch, sqlite: bool) -> None:
    """Sends that opened no thread and made one post each: one call. A send whose delivery was erased
    meanwhile has its post taken back in a second commit: a crash between the two leaves the post in the
    team chat, as a crash between the send and the first would."""
    sends = [
        outbox.PlainSend(s.delivery_id, s.remote_id, d.message_id if (d := b.deliveries.get(s.delivery_id)) else None)
        for s in b.sent
    ]
    lane = b.lane
    if sqlite:
        async with b.lease.sqlite_writer() as conn:
            done = await sqlite_sends.record_sends(conn, lane.endpoint, lane.conversation_id, sends, b.now)
    else:
        async with b.lease.statements() as conn:
            done = await outbox.record_sends(conn, lane.endpoint, lane.conversation_id, sends, b.now)
    gone = [s for s in b.sent if s.delivery_id not in done]
    if gone:  # erased while on their way (retention, forget): what they became goes too
        async with b.lease.fenced() as conn:
            for s in gone:
                await _erase_late_copies(conn, b.lane.endpoint, b.outgoing[s.delivery_id], s, b.now)


async def _record_each(b: SentBatch) -> None:
    lane, now = b.lane, b.now
    async with b.lease.fenced() as conn:
        copies: list[outbox.Copy] = []
        for s in b.sent:
            if not await outbox.mark_done(conn, s.delivery_id, now, s.remote_id, s.more):
                # erased while on its way (retention, forget): what it became goes too
                await _erase_late_copies(conn, lane.endpoint, b.outgoing[s.delivery_id], s, now)
                continue
            if s.thread is not None:
                await q.set_thread_ref(conn, lane.conversation_id, lane.endpoint, s.thread)
                # kept for good: after a transfer (or a root posted twice) replies under this
                # root still belong to the conversation
                await q.remember_root(conn, lane.endpoint, s.thread, lane.conversation_id, now)
            d = b.deliveries.get(s.delivery_id)
            if s.remote_id and d is not None and d.message_id:
                # our own post, known by its remote id: its echo is never taken for a reply
                copies.append(outbox.Copy(s.remote_id, d.message_id))
        await outbox.remember_copies(conn, lane.endpoint, lane.conversation_id, copies, now)


async def _erase_late_copies(conn: AsyncConnection, endpoint: str, item: Outgoing, sent: Sent, now: datetime) -> None:
    """A send that landed after its conversation was erased: queue the removal of each post it made."""
    lane = erasure.new_lane()
    if sent.thread is not None:  # a root: removing it is removing the thread's root
        await outbox.enqueue(
            conn, lane, endpoint, Erase.KIND, now, payload={"destination": item.destination, "thread": sent.thread}
        )
        return
    if item.thread is None:
        return
    for copy in (c for c in (sent.remote_id, *sent.more) if c):
        payload = {**(encode(Erase(RemoteId(copy))).payload or {}), "destination": item.destination}
        await outbox.enqueue(conn, lane, endpoint, Erase.KIND, now, payload={**payload, "thread": item.thread})
