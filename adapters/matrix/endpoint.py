"""The Matrix endpoint: matrix-nio for both directions, one bot device kept across restarts, end-to-end
encryption where a room has it.

The parts, all sharing one :class:`MatrixSession` (the client, the login, the store, the rooms):

- :class:`SessionHolder` (``holder.py``) runs the session only on the instance holding the Matrix lock;
- :class:`SyncLoop` (``inbound.py``) syncs, and :class:`Intake` (``intake.py``) turns the rooms' events
  into the core's events (with ``undecryptable.py`` for what nobody could decrypt);
- :class:`Sender` (``outbound.py``) turns deliveries into thread events, idempotently, encrypted where
  the room is (``crypto.py`` and ``trust.py`` decide who gets the room keys);
- :class:`MatrixDesk` (``desk.py``) answers ``!sitechat`` outside the threads; ``mentions.py`` invites
  and mentions people (``!invite``, a reminder's ``@room``);
- ``files.py`` carries files both ways (uploads, staff members' files into the bridge's store) and
  ``avatars.py`` keeps staff faces for the widget, both reading media with ``media.py``;
- ``health.py`` says what is wrong and what an admin should know.

This class only wires them together and is what the rest of the code knows as the Matrix endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import nio

from adapters.matrix import health
from adapters.matrix.avatars import Avatars
from adapters.matrix.desk import MatrixDesk
from adapters.matrix.files import FileIntake, FileUploads
from adapters.matrix.holder import SessionHolder
from adapters.matrix.inbound import SyncLoop
from adapters.matrix.intake import Intake
from adapters.matrix.media import MediaReader
from adapters.matrix.outbound import Sender
from adapters.matrix.session import MatrixSession
from adapters.matrix.trust import Trust
from adapters.matrix.undecryptable import Undecryptable
from bridge.endpoint import Desk, Inbox, Outgoing, Sent, StateStore
from bridge.model import EndpointName, ThreadRef


class MatrixEndpoint:
    name = EndpointName("matrix")
    #: one event per delivery, but a lane takes what queued up in one go: one read and one record for
    #: several events, sent one after the other (their order holds); different conversations still go
    #: out in parallel lanes
    max_batch = 10

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
        store_path: str,
        trust: Trust = Trust.MEMBERS,
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
            store_path=store_path,
            trust=trust,
        )
        # thread ref → newest event in it: the sender adds the threads it posts in, the sync loop
        # keeps them current, and every line's reply fallback points at it
        last_in_thread: dict[str, str] = {}
        # media the bot reads (files staff share, their avatars), and the bridge's store they go into
        self.media = MediaReader(self.session.homeserver, self.session.current_token)
        self.intake = Intake(
            self.session,
            name=self.name,
            staff=staff,
            last_in_thread=last_in_thread,
            undecryptable=Undecryptable(state),
            files=FileIntake(self.media, state),
            avatars=Avatars(self.media, state),
            note_prefix=note_prefix,
        )
        self.sync = SyncLoop(self.session, state, self.intake, poll_ms=int(poll_seconds * 1000))
        self.holder = SessionHolder(state, self.session, self.sync)
        self.sender = Sender(
            self.session,
            self.holder,
            note_prefix=note_prefix,
            last_in_thread=last_in_thread,
            files=FileUploads(state),
        )
        self.intake.desk = MatrixDesk(self.name, staff, self.sender.post)

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
        """Rooms seen to be end-to-end encrypted."""
        return self.session.encrypted

    def use_desk(self, desk: Desk) -> None:
        """``!sitechat`` in the rooms (``bridge.endpoint.ServesDesk``)."""
        assert self.intake.desk is not None
        self.intake.desk.use(desk)

    async def start(self, inbox: Inbox) -> None:
        await self.holder.start(inbox)

    async def stop(self) -> None:
        await self.holder.stop()
        await self.media.close()
        await self.session.close()

    async def ready(self, destination: str) -> None:
        await self.sender.ready(destination)

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        return await self.sender.deliver(batch)

    async def typing(self, destination: str, thread: ThreadRef) -> None:
        """The visitor is typing: the bot types in the room (``bridge.endpoint.ShowsTyping``)."""
        await self.sender.typing(thread)

    def warnings(self) -> list[str]:
        return []

    def known_problems(self) -> list[str]:
        return health.known_problems(self.session)

    async def check(self, destinations: Sequence[str]) -> list[str]:
        return await health.check(self.session, destinations)

    async def describe(self, destinations: Sequence[str]) -> list[str]:
        return await health.describe_facts(self.session, destinations)
