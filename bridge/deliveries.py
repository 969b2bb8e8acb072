"""Delivery workers: drain the outbox to the endpoints, in order, never dropping a delivery.

Each (conversation, endpoint) pair is a lane worked by one task at a time (and, on PostgreSQL, by one
instance at a time through an advisory lock). A lane sends its lowest pending delivery first; while
it waits for a rate limit its queue grows, and the next batch combines what queued up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge import sent_record
from bridge.endpoint import Endpoint, Outgoing, Sent
from bridge.errors import DeliveryError, DestinationUnavailable
from bridge.model import Conversation, Message, RemoteId, ThreadRef
from bridge.observe import NO_OBSERVER, Observer
from bridge.outbound import ABOUT_A_MESSAGE, Deletion, Line, OpenThread, UndecodableDelivery, decode
from bridge.store import conversations as q
from bridge.store import message_links, outbox
from bridge.store.database import Database, LaneLease, LeaseLost, connection_lost
from bridge.store.erasure import lane_conversation
from bridge.store.outbox import Lane, PendingDelivery
from bridge.work import utcnow
from config.settings import SiteConfig

log = logging.getLogger(__name__)

#: what one batch came to: sent (go on), the lane is empty (stop), or it must wait / is not ours (stop,
#: and let the scheduler look again when it is due)
SENT, EMPTY, WAIT = "sent", "empty", "wait"
Links = Mapping[str, tuple[str, ThreadRef | None]]
#: kinds about a message that act on the endpoint's own copy of it (an edit, a deletion, a read mark);
#: a new line has none yet, so it is not looked up
NAMES_ITS_COPY = ABOUT_A_MESSAGE - {Line.KIND}
#: lanes whose destination is remembered between their batches (see ``DeliveryWorker._destinations``)
MAX_REMEMBERED = 10_000


def backoff_seconds(attempts: int, *, base: float = 0.5, cap: float = 300.0) -> float:
    """Exponential with full jitter's upper half: spreads retries without starving any."""
    # the exponent is clamped: a destination down for days must not overflow the float
    high = min(cap, base * 2 ** min(64, max(0, attempts - 1)))
    return random.uniform(high / 2, high)


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        endpoints: Mapping[str, Endpoint],
        sites: Mapping[str, SiteConfig],
        *,
        clock: Callable[[], datetime] = utcnow,
        poll_seconds: float = 2.0,
        max_sending: int = 16,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self.db = db
        self.endpoints = endpoints
        self.sites = sites
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.observer = observer
        self._wake = asyncio.Event()
        self._lanes: dict[str, asyncio.Task[None]] = {}
        #: lanes told of new deliveries while they were being worked: worked again when they finish
        self._again: set[str] = set()
        #: the scheduler runs: lanes started outside it are its to cancel at the end
        self._running = False
        #: shutting down: lanes finish the batch they are sending and take no new one
        self._draining = False
        #: per endpoint, so one that is slow or paced (Slack's 1 post/s per channel) never starves another;
        #: enough for lanes of many conversations to pipeline their sends (a Matrix homeserver takes
        #: ~16 senders at once before it is the limit), each lane still one send after the other
        self._sending = {name: asyncio.Semaphore(max_sending) for name in endpoints}
        #: and all endpoints together, where each lane sending holds a database connection (its lock)
        self._locks = asyncio.Semaphore(db.max_lane_locks) if db.max_lane_locks else None
        #: "endpoint destination" → what is wrong with it (shown by /readyz and doctor)
        self.problems: dict[str, str] = {}
        self.sent_total = 0
        #: lane → the destination its last batch went to: the next batch waits out that one's pace
        #: without reading the links first (the batch reads them afresh, in its own transaction)
        self._destinations: dict[str, str] = {}

    def _remember_destination(self, lane: str, destination: str) -> None:
        if len(self._destinations) >= MAX_REMEMBERED and lane not in self._destinations:
            self._destinations.clear()  # a cache: forgetting costs one read per lane
        self._destinations[lane] = destination

    def wake(self) -> None:
        """Rescan the outbox for ready lanes (a peer's hint, a retry, a restart)."""
        self._wake.set()

    def start_lanes(self, lanes: Collection[tuple[str, str]]) -> None:
        """Work these (conversation, endpoint) lanes now: a commit just filled them, so the outbox need
        not be rescanned to find them (the scheduler's timer still rescans for anything else). A lane
        already being worked is worked once more when it finishes, so nothing committed meanwhile waits."""
        if self._draining or not self._running:
            self.wake()
            return
        for cid, endpoint in lanes:
            if endpoint not in self.endpoints:
                self.wake()
                continue
            self._start(Lane(cid, endpoint))

    def _start(self, lane: Lane) -> None:
        if lane.key in self._lanes:
            self._again.add(lane.key)
        else:
            self._lanes[lane.key] = asyncio.create_task(self._work_lane(lane), name=lane.key)

    async def run(self) -> None:
        names = list(self.endpoints)
        self._running = True
        try:
            while True:
                self._wake.clear()
                timeout = self.poll_seconds
                try:
                    if self._draining:
                        # a rolling restart: start nothing new, and cancel nothing being sent either
                        # (drain() waits for it; the shutdown cancels what is still going after that)
                        await self._wake.wait()
                        continue
                    now = self.clock()
                    async with self.db.read() as conn:
                        lanes = await outbox.ready_lanes(conn, now, names)
                        due = await outbox.next_due_at(conn, names)
                    for lane in lanes:
                        # one being worked may have read its head before this change: it looks again
                        self._start(lane)
                    if due is not None and due > now:
                        timeout = min(timeout, (due - now).total_seconds())
                except Exception as exc:
                    if not connection_lost(exc):
                        log.exception("delivery scheduler: cannot read the outbox; trying again")
                    else:
                        log.warning("delivery scheduler: database connection lost (%s); trying again", _first_line(exc))
                # not wait_for: on Python 3.11 it swallows a cancel() that meets a wake-up, and shutdown hangs
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.01, timeout)):
                        await self._wake.wait()
        finally:
            self._running = False
            for task in self._lanes.values():
                task.cancel()
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)

    async def _work_lane(self, lane: Lane) -> None:
        rescan = True  # unless the lane is known empty, the scheduler looks again once it stops
        try:
            links: Links | None = None
            while not self._draining:
                outcome, links = await self._one_batch(lane, links)
                if outcome != SENT:
                    rescan = outcome != EMPTY
                    break
                # a batch set aside sends nothing and SQLite's statements never yield: let the loop breathe
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except LeaseLost as exc:
            # cut off from the database: another instance takes the lane over once the lease is out
            log.warning("delivery lane %s: lost its database connection (%s); stopped sending", lane.key, exc)
        except Exception as exc:
            if not connection_lost(exc):
                log.exception("delivery lane %s failed; it will be retried", lane.key)
                # not at once: a lane that fails the same way every time would spin; the scheduler's
                # next look (poll_seconds) tries it again
                rescan = False
            else:
                log.warning("delivery lane %s: database connection lost (%s); retried", lane.key, _first_line(exc))
        finally:
            self._lanes.pop(lane.key, None)
            if lane.key in self._again and not self._draining:
                self._again.discard(lane.key)
                self._start(lane)
            elif rescan or self._draining:
                self.wake()

    async def _one_batch(self, lane: Lane, links: Links | None) -> tuple[str, Links | None]:
        """Wait out the destination's pace (holding nothing: the lane's queue grows meanwhile, and the
        batch combines what queued up), then send one batch holding the lane's lock. ``links``: the
        thread links the previous batch read (None: read them); returns the outcome and the links read."""
        endpoint = self.endpoints[lane.endpoint]
        if links is not None:
            destination = links.get(lane.endpoint, ("", None))[0]
        elif (known := self._destinations.get(lane.key)) is not None:
            destination = known  # for the pace only: the batch itself reads the links afresh
        else:
            async with self.db.read() as conn:
                links = await q.thread_links(conn, lane.conversation_id)
            destination = links.get(lane.endpoint, ("", None))[0]
        await endpoint.ready(destination)
        # a bounded number of lanes send at once, per endpoint and (on PostgreSQL, where each holds a
        # pooled connection for its lock meanwhile) in all: the widget API must always find one free
        async with self._sending[lane.endpoint], self._locks or contextlib.nullcontext():
            async with self.db.lane_lock(lane.key) as lease:
                if lease is None:
                    return WAIT, None
                return await self._send_next(lane, lease, endpoint)

    async def _send_next(self, lane: Lane, lease: LaneLease, endpoint: Endpoint) -> tuple[str, Links | None]:
        """Send the lane's next batch; the outcome and the thread links read for it."""
        now = self.clock()
        limit = max(1, endpoint.max_batch)
        # the batch read and marked attempted on the lock's connection: only while this instance still
        # holds the lane, and the lease keeps the batch from any other sender until this one has surely
        # given up on it (crash, cut connection). Committed before the network call; each statement on
        # its own (the lock keeps other senders out; an erasure meanwhile leaves the mark nothing to mark)
        async with lease.statements() as conn:
            head = await outbox.lane_head(conn, lane, limit)
            pending, messages, links = head.pending, head.messages, head.links
            batch = _due_prefix(pending, now)
            if not batch:
                return (EMPTY if not pending else WAIT), None
            # an erasure lane's conversation is gone: its deliveries carry all they need
            conv = head.conversation or lane_conversation(lane.conversation_id, now)
            assert conv is not None
            items: list[Outgoing] = []
            unreadable: tuple[int, str] | None = None
            for d in batch:  # the batch stops before a delivery that cannot be read
                try:
                    items.append(await self._outgoing(conn, d, conv, links, messages))
                except UndecodableDelivery as exc:
                    unreadable = (d.id, str(exc))
                    break
            if unreadable is not None and not items:
                # its message erased, or written by a newer version: it must not hold up the lane forever
                log.error("%s: delivery %s cannot be sent (%s); set aside", lane.key, *unreadable)
                await outbox.set_aside(conn, unreadable[0], self.clock(), unreadable[1])
                return SENT, None
            batch = batch[: len(items)]
            await outbox.mark_attempt(conn, [d.id for d in batch], self.clock() + timedelta(seconds=lease.seconds))
        destination = links.get(lane.endpoint, ("", None))[0]
        self._remember_destination(lane.key, destination)
        try:
            sent = list(await endpoint.deliver(items))
            failure: DeliveryError | None = None
        except DeliveryError as exc:
            sent, failure = exc.sent, exc
        except Exception as exc:  # a bug or an unexpected answer: keep the delivery, look before resending
            log.exception("%s: unexpected error delivering %s", lane.endpoint, [d.id for d in batch])
            sent, failure = [], DeliveryError(f"unexpected error: {exc!r}", maybe_sent=True)

        await self._record(lane, lease, batch, sent, items)
        key = f"{lane.endpoint} {destination}"
        if failure is None:
            if self.problems.pop(key, None) is not None:
                log.info("%s works again: sending what was kept for it", key)
            if len(pending) < limit and len(sent) == len(pending) and not lease.seconds:
                # all there was, sent: the lane is empty (what is committed after our read starts it again)
                return EMPTY, links
            return SENT, links
        rest = [d for d in batch if d.id not in {s.delivery_id for s in sent}]
        await self._postpone(lease, rest, failure)
        if isinstance(failure, DestinationUnavailable):
            if key not in self.problems:
                log.error("%s paused: %s (messages are kept and sent once it is fixed)", key, failure.reason)
            self.problems[key] = failure.reason
        else:
            log.warning("%s: delivery %s postponed: %s", key, rest[0].id if rest else "?", failure.reason)
        return WAIT, None

    async def _outgoing(
        self,
        conn: AsyncConnection,
        d: PendingDelivery,
        conv: Conversation,
        links: Mapping[str, tuple[str, ThreadRef | None]],
        messages: Mapping[str, Message],
    ) -> Outgoing:
        destination, thread = links.get(d.endpoint, ("", None))
        payload = d.payload or {}
        if "destination" in payload:  # addressed: an earlier thread (a transfer's farewell), or no thread
            destination = str(payload["destination"])
            thread = ThreadRef(str(payload["thread"])) if payload.get("thread") else None
        message = messages.get(d.message_id) if d.message_id else None
        copy = (
            await message_links.remote_for_message(conn, d.endpoint, d.message_id)
            if d.message_id and d.kind in NAMES_ITS_COPY
            else None
        )
        more = await outbox.posts_of_message(conn, d.endpoint, d.message_id) if d.kind == Deletion.KIND else []
        site = self.sites.get(conv.site_id)
        topic = site.topics.get(conv.topic) if site and conv.topic else None
        return Outgoing(
            delivery_id=d.id,
            what=decode(d.kind, d.payload, message, copy, [RemoteId(r) for r in more]),
            conversation=conv,
            site_name=site.name if site else conv.site_id,
            topic_label=topic.label if topic else None,
            destination=destination,
            thread=thread,
            maybe_sent=d.in_doubt,
        )

    async def _record(
        self,
        lane: Lane,
        lease: LaneLease,
        batch: Sequence[PendingDelivery],
        sent: Sequence[Sent],
        items: Sequence[Outgoing],
    ) -> None:
        if not sent:
            return
        by_id = {d.id: d for d in batch}
        outgoing = {o.delivery_id: o for o in items}
        now = self.clock()
        batch_sent = sent_record.SentBatch(lane, lease, sent, by_id, outgoing, now)
        await sent_record.record(batch_sent, sqlite=self.db.is_sqlite)
        self.sent_total += len(sent)
        for accepted in (d.created_at for d in map(by_id.get, (s.delivery_id for s in sent)) if d and d.created_at):
            self.observer.delivered(lane.endpoint, (now - accepted).total_seconds())

    async def _postpone(self, lease: LaneLease, rest: Sequence[PendingDelivery], failure: DeliveryError) -> None:
        if not rest:
            return
        attempts = rest[0].attempts + 1
        wait = backoff_seconds(attempts, base=5.0 if isinstance(failure, DestinationUnavailable) else 0.5)
        if failure.retry_after is not None:
            wait = max(wait, failure.retry_after)
        retry_at = self.clock() + timedelta(seconds=wait)
        async with lease.fenced() as conn:
            # a delivery already in doubt stays in doubt until the endpoint has looked and sent it
            in_doubt = failure.maybe_sent or any(d.in_doubt for d in rest)
            await outbox.mark_failed(conn, [d.id for d in rest], retry_at, failure.reason, maybe_sent=in_doubt)

    async def drain(self, seconds: float) -> None:
        """Stop taking new batches; wait (at most ``seconds``) for the ones being sent, so a restart
        leaves nothing in doubt that need not be (and no lease for another instance to wait out)."""
        self._draining = True
        self.wake()
        sending = list(self._lanes.values())
        if sending:
            await asyncio.wait(sending, timeout=seconds)

    async def idle(self) -> bool:
        """True when nothing is pending (tests and shutdown use it)."""
        async with self.db.read() as conn:
            return await outbox.pending_count(conn) == 0 and not self._lanes


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _due_prefix(pending: Sequence[PendingDelivery], now: datetime) -> list[PendingDelivery]:
    """The deliveries due now, up to and including a thread's root: what comes after a root is addressed
    to the thread it opens, which the next batch reads once the root's answer is recorded (sent in the
    same batch, those would find no thread yet and wait out a retry)."""
    batch: list[PendingDelivery] = []
    for d in pending:
        if d.next_attempt_at > now:
            break
        batch.append(d)
        if d.kind == OpenThread.KIND:
            break
    return batch
