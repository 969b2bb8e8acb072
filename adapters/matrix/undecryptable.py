"""Events the bot could not decrypt: asked for again, tried again, and — if still unreadable after a
while — told to the thread instead of dropped.

A room key usually comes with (or just after) the first message of a session, as a to-device message;
one that comes a sync late is the common case, so every pending event is tried again after each sync.
The key is also requested (``m.room_key_request`` to the bot's own devices, as nio does it). If it
never comes — the sender's client withheld it, e.g. because it sends keys only to verified sessions —
the thread gets a plain notice after ``wait_seconds``, so staff know the visitor did not see it.

The pending events are kept in the endpoint's state (a few, small), so a restart neither forgets to
tell the thread nor tells it twice: the sync token moves past an event only after it is recorded here.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import nio

from adapters.matrix.responses import describe_response
from adapters.matrix.timeline import Sealed, sealed
from bridge.endpoint import StateStore

log = logging.getLogger(__name__)

#: how long an event may stay unreadable before the thread is told
KEY_WAIT_SECONDS = 60.0
#: at most this many are kept waiting (the oldest is given up first)
PENDING_MAX = 200
STATE_KEY = "undecryptable"


@dataclass
class Pending:
    room_id: str
    source: dict[str, Any]
    #: wall-clock seconds when it was first seen
    seen_at: float

    @property
    def sealed(self) -> Sealed:
        found = sealed(self.source)
        assert found is not None
        return found


class Undecryptable:
    def __init__(self, state: StateStore, *, wait_seconds: float = KEY_WAIT_SECONDS) -> None:
        self._state = state
        self.wait_seconds = wait_seconds
        self._pending: dict[str, Pending] = {}
        self._loaded = False

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._pending

    async def load(self) -> None:
        if self._loaded:
            return
        raw = await self._state.get(STATE_KEY)
        for item in json.loads(raw) if raw else []:
            pending = Pending(str(item["room_id"]), dict(item["source"]), float(item["seen_at"]))
            if sealed(pending.source) is not None:
                self._pending[pending.sealed.event_id] = pending
        self._loaded = True

    async def _save(self) -> None:
        items = [{"room_id": p.room_id, "source": p.source, "seen_at": p.seen_at} for p in self._pending.values()]
        await self._state.put(STATE_KEY, json.dumps(items))

    async def add(self, client: nio.AsyncClient, room_id: str, source: dict[str, Any]) -> None:
        """An event nio could not decrypt: keep it, and ask for its key."""
        found = sealed(source)
        if found is None or found.event_id in self._pending:
            return
        self._pending[found.event_id] = Pending(room_id, source, time.time())
        while len(self._pending) > PENDING_MAX:
            oldest = next(iter(self._pending))
            log.warning("Matrix: too many unreadable events; no longer waiting for the key of %s", oldest)
            del self._pending[oldest]
        await self._save()
        log.warning("Matrix: cannot decrypt %s from %s yet; asking for its key", found.event_id, found.sender)
        event = _megolm(room_id, source)
        if event is None or client.olm is None:
            return
        try:
            response = await client.request_room_key(event)
        except nio.LocalProtocolError:
            return  # already asked for this session's key
        if not isinstance(response, nio.RoomKeyRequestResponse):
            log.warning("Matrix: the key request for %s was refused (%s)", found.event_id, describe_response(response))

    async def readable(self, client: nio.AsyncClient) -> list[tuple[str, dict[str, Any]]]:
        """(room, decrypted source) of the pending events whose key has come since."""
        if client.olm is None or not self._pending:
            return []
        found: list[tuple[str, dict[str, Any]]] = []
        for event_id, pending in list(self._pending.items()):
            event = _megolm(pending.room_id, pending.source)
            if event is None or not client.olm.inbound_group_store.get(
                pending.room_id, event.sender_key, event.session_id
            ):
                continue  # its key has not come yet (trying would only log the same failure again)
            try:
                decrypted = client.decrypt_event(event)
            except nio.EncryptionError:
                continue
            if decrypted is None or isinstance(decrypted, nio.MegolmEvent):
                continue
            del self._pending[event_id]
            found.append((pending.room_id, decrypted.source))
            log.info("Matrix: %s is readable now (its key came)", event_id)
        if found:
            await self._save()
        return found

    def seconds_to_next_give_up(self) -> float | None:
        """How long until the oldest pending event is given up (the sync loop wakes up for it)."""
        if not self._pending:
            return None
        oldest = min(p.seen_at for p in self._pending.values())
        return max(0.0, oldest + self.wait_seconds - time.time())

    async def given_up(self) -> list[Pending]:
        """The pending events still unreadable after ``wait_seconds``: no longer waited for."""
        deadline = time.time() - self.wait_seconds
        late = [p for p in self._pending.values() if p.seen_at <= deadline]
        for pending in late:
            del self._pending[pending.sealed.event_id]
        if late:
            await self._save()
        return late


def _megolm(room_id: str, source: dict[str, Any]) -> nio.MegolmEvent | None:
    event = nio.MegolmEvent.from_dict(source)
    if not isinstance(event, nio.MegolmEvent):
        return None  # not a Megolm event nio can read (another algorithm, malformed)
    event.room_id = room_id
    return event
