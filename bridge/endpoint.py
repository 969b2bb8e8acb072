"""The one interface every team-chat side implements, and what the core hands it."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bridge.desk_answers import DeskAnswer
from bridge.events import InboundEvent
from bridge.model import Attachment, Conversation, EndpointName, Participant, RemoteId, ThreadRef
from bridge.outbound import Outbound


@dataclass(frozen=True)
class Outgoing:
    """One pending delivery, as the endpoint needs it: what to do (``what``), where, and for whom."""

    delivery_id: int
    what: Outbound
    conversation: Conversation
    site_name: str
    #: the label of the conversation's topic, when it has one (shown on the root)
    topic_label: str | None
    destination: str
    thread: ThreadRef | None
    #: an earlier attempt may have landed (crash or timeout in flight): look before posting again
    maybe_sent: bool = False


@dataclass(frozen=True)
class Sent:
    delivery_id: int
    remote_id: RemoteId | None = None
    #: set by OPEN_THREAD: where the conversation now lives on this endpoint
    thread: ThreadRef | None = None
    #: the other posts the delivery became (the earlier parts of a text split over several, a Matrix
    #: edit event): kept with the delivery so that an erasure finds every copy
    more: tuple[RemoteId, ...] = ()


class Inbox(Protocol):
    async def handle(self, event: InboundEvent) -> bool:
        """Store the event; False when its thread is not (yet) a known conversation."""
        ...

    async def typing(self, endpoint: str, thread: ThreadRef, author: Participant) -> None:
        """A person is typing in a conversation's thread (shown to the visitor, never stored)."""
        ...

    async def read_by_team(self, endpoint: str, remote: RemoteId) -> None:
        """Someone in the team has read the thread up to the event ``remote`` (a read receipt): the
        visitor sees "Seen" under their messages up to there."""
        ...


class Desk(Protocol):
    """The team's commands outside any conversation (``/sitechat`` in Slack; CONTRACT §8), as typed answers."""

    async def answer(self, line: str, by: Participant, *, command: str = "/sitechat") -> DeskAnswer:
        """The answer to ``{command} {line}`` typed by ``by`` (``open``, ``stats 7d``, ``away acme``…)."""
        ...


@runtime_checkable
class ServesDesk(Protocol):
    """An endpoint where people use the desk: the composition root hands it the core's (``use_desk``)."""

    def use_desk(self, desk: Desk) -> None: ...


class ExclusiveLease(Protocol):
    """The right, held by this instance alone, to do what ``StateStore.exclusive`` was asked for."""

    #: how long a new holder waits before acting, so that a holder cut off from the database has
    #: noticed (``still_held``) and stopped; 0 when only one instance can run (SQLite)
    takeover_seconds: float

    async def still_held(self) -> bool:
        """False once the lease is gone (its database connection was cut): stop at once."""
        ...


class FileStore(Protocol):
    """The conversations' files, kept by the bridge (CONTRACT §7): an endpoint reads a visitor's file to
    upload it into its thread, and saves a team member's shared file so the widget can offer it."""

    async def save(
        self,
        pieces: AsyncIterable[bytes],
        *,
        name: str | None,
        origin: str,
        conversation_id: str | None = None,
        any_type: bool = False,
        declared_size: int | None = None,
    ) -> Attachment:
        """Keep a file as it streams in (``FileRefused`` when it is too large, or of a type not allowed)."""
        ...

    async def read(self, aid: str) -> bytes:
        """A whole file, at most the size limit (``FileNotFoundError`` when it is gone)."""
        ...


class StateStore(Protocol):
    """Durable key/value state for one endpoint (its own namespace), and the files it sends and receives."""

    @property
    def files(self) -> FileStore: ...

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str) -> None: ...

    def exclusive(self, name: str) -> AbstractAsyncContextManager[ExclusiveLease | None]:
        """Hold ``name`` (in the endpoint's namespace) across every instance on the database while the
        block runs: a lease, or None when another instance holds it. PostgreSQL: a session advisory
        lock on a connection of its own; SQLite: always granted (it means one instance)."""
        ...


@runtime_checkable
class ShowsTyping(Protocol):
    """An endpoint that can show the team that the visitor is typing (Matrix: the bot's typing notice).
    Not durable, never through the outbox: a typing hint that comes late is worse than none."""

    name: EndpointName

    async def typing(self, destination: str, thread: ThreadRef) -> None: ...


class Endpoint(Protocol):
    name: EndpointName
    #: how many pending deliveries of one conversation it may take at once (to combine them)
    max_batch: int

    async def start(self, inbox: Inbox) -> None: ...

    async def stop(self) -> None: ...

    async def ready(self, destination: str) -> None:
        """Wait until the destination may be sent to (rate limits): the queue keeps growing meanwhile."""

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        """Send a prefix of ``batch`` in order; return what was sent, or raise a ``DeliveryError``."""
        ...

    async def check(self, destinations: Sequence[str]) -> list[str]:
        """Problems with the connection or the destinations, in plain words (empty = all well)."""
        ...

    async def describe(self, destinations: Sequence[str]) -> list[str]:
        """Facts worth showing an admin that are no problem (``sitechat doctor`` prints them), e.g.
        the Matrix bot's device and each room's encryption; after ``check``."""
        ...

    def known_problems(self) -> list[str]:
        """What the running endpoint already knows is wrong, without a network call: /readyz is 503."""
        ...

    def warnings(self) -> list[str]:
        """Worth telling an admin, but no reason to take the instance out of rotation (e.g. Slack's
        ``app_rate_limited``): /readyz lists them and stays 200."""
        ...
