"""Live signals to the widget sockets of one conversation.

A signal only says "look again": a socket handler reads the messages after its last ``seq`` from
the store, so nothing is lost or doubled whether a signal comes early, late or twice. Between
instances (PostgreSQL) the same signals travel by LISTEN/NOTIFY; in one process they stay here.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, assert_never

from bridge.model import Message, Participant, Role, Status


@dataclass(frozen=True)
class NewMessage:
    """A message was stored at ``seq``: read the store after the last seq sent. ``message``: the message
    itself, when this process stored it — a socket that has everything before it sends it without reading
    the store (never between instances: NOTIFY carries the seq only)."""

    seq: int
    message: Message | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class MessageChanged:
    """A message the client may have was edited (``removed``: taken back)."""

    id: str
    seq: int
    removed: bool = False


@dataclass(frozen=True)
class StatusChanged:
    status: Status


@dataclass(frozen=True)
class RatingRequested:
    pass


@dataclass(frozen=True)
class Typing:
    """Someone in the team is typing (never stored: a hint for the widget only)."""

    author: Participant


@dataclass(frozen=True)
class Snapshot:
    """What the periodic recheck read of a conversation: what a socket's catch-up compares (the last line,
    the status, how far the team has read, whether it is rated)."""

    last_seq: int
    status: Status
    team_read_seq: int
    rated: bool

    def all_sent(self, *, last_seq: int, status: Status, read_seq: int, rating_asked: bool) -> bool:
        """A socket that sent up to ``last_seq``, showed ``status`` and "Seen" up to ``read_seq`` (and
        asked for the rating, or not) has everything a catch-up would send for this."""
        rating_owed = self.status is Status.CLOSED and not self.rated and not rating_asked
        return (
            self.last_seq <= last_seq and self.status is status and self.team_read_seq <= read_seq and not rating_owed
        )


@dataclass(frozen=True)
class Recheck:
    """Something may have changed unseen (a signal lost between instances): look at the store again.
    ``seen``: what the store held a moment ago, read with the other changed conversations in one query —
    a socket that has all of it need not look (None: look). Busy chats all change between two rechecks,
    and each socket reading the store at once was a burst that delayed every reply behind it."""

    seen: Snapshot | None = None


Signal = NewMessage | MessageChanged | StatusChanged | RatingRequested | Typing | Recheck


def signal_to_json(signal: Signal) -> dict[str, Any]:
    """The signal as NOTIFY carries it between instances."""
    match signal:
        case NewMessage(seq, _):
            return {"k": "message", "seq": seq}
        case MessageChanged(mid, seq, removed):
            return {"k": "changed", "id": mid, "seq": seq, "removed": removed}
        case StatusChanged(status):
            return {"k": "status", "status": status.value}
        case RatingRequested():
            return {"k": "rating_requested"}
        case Typing(author):
            return {"k": "typing", "role": author.role.value, "name": author.name, "avatar_url": author.avatar_url}
        case Recheck():
            return {"k": "recheck"}  # what it saw is this instance's: another looks itself
        case _:
            assert_never(signal)


def signal_from_json(data: Mapping[str, Any]) -> Signal | None:
    """A signal from another instance; None for one this version does not know (it only delays)."""
    try:
        match data.get("k"):
            case "message":
                return NewMessage(int(data["seq"]))
            case "changed":
                return MessageChanged(str(data["id"]), int(data["seq"]), bool(data.get("removed")))
            case "status":
                return StatusChanged(Status(data["status"]))
            case "rating_requested":
                return RatingRequested()
            case "recheck":
                return Recheck()
            case "typing":
                avatar = data.get("avatar_url")
                return Typing(Participant(Role(data["role"]), str(data["name"]), str(avatar) if avatar else None))
    except (KeyError, TypeError, ValueError):
        return None
    return None


class LiveHub:
    def __init__(self, queue_limit: int = 256) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Signal]]] = defaultdict(set)
        self._queue_limit = queue_limit

    @contextmanager
    def subscribe(self, conversation_id: str) -> Iterator[asyncio.Queue[Signal]]:
        queue: asyncio.Queue[Signal] = asyncio.Queue(self._queue_limit)
        self._subscribers[conversation_id].add(queue)
        try:
            yield queue
        finally:
            subs = self._subscribers.get(conversation_id)
            if subs is not None:
                subs.discard(queue)
                if not subs:
                    del self._subscribers[conversation_id]

    def publish(self, conversation_id: str, signal: Signal) -> None:
        for queue in self._subscribers.get(conversation_id, ()):
            if queue.full():
                # a slow reader must not grow memory: drop the oldest; the reader then looks at the
                # store again in full (it sees the queue was full), so only a stale typing hint is lost
                queue.get_nowait()
            queue.put_nowait(signal)

    @property
    def socket_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
