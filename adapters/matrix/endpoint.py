"""The Matrix endpoint: matrix-nio for both directions, one bot device kept across restarts.

Three parts share one :class:`MatrixSession` (the client, the login, the rooms):

- :class:`SyncLoop` (``inbound.py``) turns the rooms' events into the core's events;
- :class:`Sender` (``outbound.py``) turns deliveries into thread events, idempotently;
- the session itself (``session.py``) logs in, keeps the device, and knows what is wrong.

This class only wires them together and is what the rest of the code knows as the Matrix endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import nio

from adapters.matrix.inbound import SyncLoop
from adapters.matrix.outbound import Sender
from adapters.matrix.session import MatrixSession
from bridge.endpoint import Inbox, Outgoing, Sent, StateStore
from bridge.model import EndpointName


class MatrixEndpoint:
    name = EndpointName("matrix")
    #: one event per delivery; different conversations still go out in parallel lanes
    max_batch = 1

    def __init__(
        self,
        *,
        homeserver: str,
        user_id: str,
        password: str | None,
        access_token: str | None,
        device_id: str | None,
        staff: Sequence[str],
        rooms: Sequence[str],
        state: StateStore,
        note_prefix: str = "//",
        poll_seconds: float = 30.0,
    ) -> None:
        self.session = MatrixSession(
            homeserver=homeserver,
            user_id=user_id,
            password=password,
            access_token=access_token,
            device_id=device_id,
            rooms=rooms,
            state=state,
        )
        # thread ref → newest event in it: the sender adds the threads it posts in, the sync loop
        # keeps them current, and every line's reply fallback points at it
        last_in_thread: dict[str, str] = {}
        self.sync = SyncLoop(
            self.session,
            state,
            name=self.name,
            staff=staff,
            poll_ms=int(poll_seconds * 1000),
            last_in_thread=last_in_thread,
        )
        self.sender = Sender(self.session, note_prefix=note_prefix, last_in_thread=last_in_thread)

    @property
    def homeserver(self) -> str:
        return self.session.homeserver

    @property
    def user_id(self) -> str:
        return self.session.user_id

    @property
    def device_id(self) -> str | None:
        """The bot's device: kept across restarts, so a resent txn id finds its first event."""
        return self.session.device_id

    @property
    def client(self) -> nio.AsyncClient | None:
        return self.session.client

    @property
    def encrypted_rooms(self) -> frozenset[str]:
        """Rooms seen to be end-to-end encrypted: the bridge posts nothing there."""
        return self.session.encrypted

    async def start(self, inbox: Inbox) -> None:
        await self.sync.start(inbox)

    async def stop(self) -> None:
        await self.sync.stop()
        await self.session.close()

    async def ready(self, destination: str) -> None:
        await self.sender.ready(destination)

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        return await self.sender.deliver(batch)

    def warnings(self) -> list[str]:
        return []

    def known_problems(self) -> list[str]:
        return self.session.known_problems()

    async def check(self, destinations: Sequence[str]) -> list[str]:
        return await self.session.check(destinations)
