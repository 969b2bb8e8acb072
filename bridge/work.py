"""The unit of work every use case runs in: one write transaction that stores a change together with
the deliveries it causes (the outbox) and what it tells the other instances (sent by the database with
the commit), and, only once it is committed, the announcements here — widget sockets signalled,
delivery workers woken.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.live import LiveHub, Signal
from bridge.observe import NO_OBSERVER, Observation, Observer, tell
from bridge.outbound import Notice, Outbound, encode
from bridge.store import conversations as q
from bridge.store import outbox
from bridge.store.database import Database
from config.settings import SiteConfig

#: how many threads ``Core.threads`` remembers
THREADS_KEPT = 10_000


class Announce(Protocol):
    """Tells the other instances what changed (PostgreSQL NOTIFY), and whether to wake their delivery
    workers. ``conn``: a unit of work's transaction, about to commit — they hear it only if it commits;
    None: at once, on a connection of its own (what is not part of a unit of work)."""

    async def __call__(
        self, signals: Sequence[tuple[str, Signal]], wake: bool, conn: AsyncConnection | None = None
    ) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Core:
    """What every use case shares: the store, the sites, the endpoints that run, and how to announce."""

    db: Database
    sites: Mapping[str, SiteConfig]
    endpoints: frozenset[str]
    live: LiveHub
    wake_deliveries: Callable[[], None] = lambda: None
    #: starts the given (conversation, endpoint) lanes at once, without a rescan of the outbox (the
    #: delivery worker's ``start_lanes``); without it every commit with deliveries wakes the worker
    start_lanes: Callable[[Collection[tuple[str, str]]], None] | None = None
    note_prefix: str = "//"
    snippets: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow
    #: None with one instance (SQLite): nobody else to tell
    announce: Announce | None = None
    #: told what happened once each unit of work commits (metrics)
    observer: Observer = NO_OBSERVER
    #: (endpoint, thread ref) → the conversation events found in it: a guess that saves a unit of work
    #: (``TeamSide``; the database checks it), never an answer (a thread's conversation never changes)
    threads: dict[tuple[str, str], str] = field(default_factory=dict)

    def thread_seen(self, endpoint: str, ref: str, cid: str) -> None:
        self.threads[endpoint, ref] = cid
        if len(self.threads) > THREADS_KEPT:  # the oldest go first
            del self.threads[next(iter(self.threads))]

    def site_name(self, site_id: str) -> str:
        site = self.sites.get(site_id)
        return site.name if site else site_id

    def reachable_destinations(self, site: SiteConfig, topic: str | None) -> dict[str, str]:
        """Endpoint → channel or room for a conversation on ``topic``, among the endpoints that run."""
        return {e: d for e, d in site.destinations(topic).items() if e in self.endpoints}

    @asynccontextmanager
    async def work(self) -> AsyncIterator[Work]:
        """One write transaction; announced with its commit (other instances) and after it (here), not at
        all if it fails."""
        async with self.db.write() as conn:
            work = Work(conn, self.clock())
            yield work
            wake = work.deliveries > 0
            if self.announce is not None and (work.signals or wake):
                await self.announce(work.signals, wake, conn)
        self._committed(work, wake)

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[Work]:
        """A unit of work in a call or two that commit it themselves: on PostgreSQL, in autocommit, a
        database function (``bridge/store/visitor_lines.py``, ``bridge/store/agent_lines.py``), which tells
        the other instances itself, with its commit (``notify_as``); on SQLite, statements of our own on its
        one writer's connection (``bridge/store/sqlite_lines.py``). What a commit tells here — the
        observer, the sockets, the lanes — is told after the block, unless the block raises."""
        async with self.db.sqlite_writer() if self.db.is_sqlite else self.db.read() as conn:
            work = Work(conn, self.clock())
            yield work
            self._committed(work, work.deliveries > 0)  # nothing awaited since the call: not even cancelled

    @property
    def notify_as(self) -> str | None:
        """This instance, as a database function's own NOTIFY names it (None: nobody else to tell)."""
        return self.db.instance if self.announce is not None else None

    def _committed(self, work: Work, wake: bool) -> None:
        """What a unit of work tells once it is committed: the observer, the sockets and lanes here."""
        tell(self.observer, work.observations)
        self._publish_here(work.signals, wake=wake, lanes=work.lanes)

    async def publish(self, signals: Sequence[tuple[str, Signal]], *, wake: bool) -> None:
        """Signals that are not part of a unit of work (a typing hint): here, and to the other instances."""
        self._publish_here(signals, wake=wake)
        if self.announce is not None:
            await self.announce(signals, wake)

    def _publish_here(
        self, signals: Sequence[tuple[str, Signal]], *, wake: bool, lanes: Collection[tuple[str, str]] = ()
    ) -> None:
        for cid, signal in signals:
            self.live.publish(cid, signal)
        if wake:
            if lanes and self.start_lanes is not None:
                self.start_lanes(lanes)  # the lanes just filled: no need to look for them
            else:
                self.wake_deliveries()


@dataclass
class Work:
    """One transaction, and what to announce once it is committed."""

    conn: AsyncConnection
    now: datetime
    signals: list[tuple[str, Signal]] = field(default_factory=list)
    deliveries: int = 0
    #: (conversation, endpoint) of each delivery enqueued here: the lanes to start once committed
    lanes: set[tuple[str, str]] = field(default_factory=set)
    observations: list[Observation] = field(default_factory=list)

    def signal(self, cid: str, signal: Signal) -> None:
        self.signals.append((cid, signal))

    def observe(self, observation: Observation) -> None:
        """Tell the observer once the transaction has committed (never, if it rolls back)."""
        self.observations.append(observation)

    async def enqueue(
        self, cid: str, endpoint: str, what: Outbound, *, address: tuple[str, str | None] | None = None
    ) -> None:
        """One delivery to one endpoint; ``address`` (destination, thread) pins it to a thread other than
        the conversation's current one (a transfer's farewell goes to the old thread), or to a channel or
        room itself (thread None: a report's picture)."""
        row = encode(what)
        payload = row.payload
        if address is not None:
            payload = {**(payload or {}), "destination": address[0]} | ({"thread": address[1]} if address[1] else {})
        await outbox.enqueue(self.conn, cid, endpoint, row.kind, self.now, message_id=row.message_id, payload=payload)
        self.deliveries += 1
        self.lanes.add((cid, endpoint))

    def queued(self, cid: str, endpoints: Collection[str]) -> None:
        """Deliveries the caller inserted itself (a line stored and queued in one statement,
        ``bridge/store/lines.py``): announced and started like ``enqueue``'s."""
        self.deliveries += len(endpoints)
        self.lanes.update((cid, endpoint) for endpoint in endpoints)

    async def enqueue_all(self, cid: str, what: Outbound, *, skip: str | None = None) -> None:
        """The same delivery to every endpoint the conversation has a thread on (but ``skip``, its origin)."""
        for endpoint in await q.thread_links(self.conn, cid):
            if endpoint != skip:
                await self.enqueue(cid, endpoint, what)

    async def notice(self, cid: str, endpoint: str, text: str) -> None:
        """A line from the bridge in one endpoint's thread only (help, errors)."""
        await self.enqueue(cid, endpoint, Notice(text))
