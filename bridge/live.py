"""Live signals to the widget sockets of one conversation.

A signal only says "look again": a socket handler reads the messages after its last ``seq`` from
the store, so nothing is lost or doubled whether a signal comes early, late or twice. Between
instances (PostgreSQL) the same signals travel by LISTEN/NOTIFY; in one process they stay here.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Signal:
    kind: str  # message | status | rating_requested | typing | message_updated | message_deleted
    data: dict[str, Any] = field(default_factory=dict)


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
                # a slow reader must not grow memory: drop the oldest; "message" signals are
                # re-derived from the store, so only a stale typing hint can be lost
                queue.get_nowait()
            queue.put_nowait(signal)

    @property
    def socket_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
