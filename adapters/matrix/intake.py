"""The rooms' events (already decrypted where nio could) as the core's events: staff replies, their
edits and redactions, typing, and the encrypted events nobody could read, told to the thread."""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import nio

from adapters.matrix.avatars import Avatars
from adapters.matrix.desk import MatrixDesk, desk_command
from adapters.matrix.files import FileIntake, SharedFile, shared_file
from adapters.matrix.format import PERSON_TYPES, is_staff, localpart, staff_message, thread_ref
from adapters.matrix.mentions import invite_text
from adapters.matrix.responses import describe_response
from adapters.matrix.session import MatrixSession
from adapters.matrix.timeline import Change, change_of, sealed, thread_message
from adapters.matrix.undecryptable import Pending, Undecryptable
from bridge.commands import Reply, interpret
from bridge.endpoint import Inbox
from bridge.events import UNKNOWN_THREAD, InboundEvent, MessageDeleted, MessageEdited, MessageReceived, Rejected
from bridge.model import Attachment, EndpointName, Participant, RemoteId, Role, ThreadRef

log = logging.getLogger(__name__)

SEEN_MAX = 5000
#: replies remembered with their thread and author, so an edit or a redaction finds its conversation
REPLIES_MAX = 10000


class Intake:
    def __init__(
        self,
        session: MatrixSession,
        *,
        name: EndpointName,
        staff: Sequence[str],
        last_in_thread: dict[str, str],
        undecryptable: Undecryptable,
        files: FileIntake | None = None,
        avatars: Avatars | None = None,
        note_prefix: str = "//",
    ) -> None:
        self._session = session
        self._name = name
        self._staff = list(staff)
        #: thread ref → newest event in it; shared with the sender, which keeps only threads it posted in
        self._last_in_thread = last_in_thread
        self.undecryptable = undecryptable
        #: staff members' files and faces, into the bridge's store
        self.files = files
        self.avatars = avatars
        self.note_prefix = note_prefix
        self.inbox: Inbox | None = None
        #: answers ``!sitechat`` outside the threads (set by the endpoint, which has the sender it posts with)
        self.desk: MatrixDesk | None = None
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        #: reply event id → (thread ref, author): where its edits and redactions belong
        self._replies: OrderedDict[str, tuple[str, str]] = OrderedDict()
        #: (room, staff member) → the thread they last answered in: where their typing is shown
        self._answering: dict[tuple[str, str], str] = {}

    async def take(self, client: nio.AsyncClient, room_id: str, source: dict[str, Any]) -> None:
        locked = sealed(source)
        if locked is not None:
            if locked.sender != self._session.user_id and locked.event_id not in self._seen:
                await self.undecryptable.add(client, room_id, source)
            return
        change = change_of(source)
        if change is not None:
            await self._take_change(client, room_id, change)
            return
        message = thread_message(source)
        if message is None:
            await self._take_desk_command(client, room_id, source)
            return
        if message.event_id in self._seen:
            return
        ref = thread_ref(room_id, message.root)
        if ref in self._last_in_thread:  # only threads this process posted in: the map stays small
            self._last_in_thread[ref] = message.event_id
        sender, content = message.sender, message.content
        if sender == self._session.user_id or content.get("msgtype") not in PERSON_TYPES:
            return  # our own echo, or another bot's notice
        self._remember_reply(message.event_id, ref, sender)
        text, html = staff_message(content)
        text = invite_text(text, content)  # a person picked in the composer: their id, not their name
        shared = shared_file(content)  # a file, relayed through the bridge's store (files.py)
        if (not text and shared is None) or self.inbox is None:
            return
        staff = is_staff(sender, self._staff)
        author = await self._participant(client, room_id, sender, face=staff)
        thread, remote_id = ThreadRef(ref), RemoteId(message.event_id)
        if not staff:
            reason = f"{sender} is not on the staff list (MATRIX_STAFF); the visitor did not see that"
            await self.inbox.handle(
                Rejected(endpoint=self._name, thread=thread, remote_id=remote_id, author=author, reason=reason)
            )
            self._remember(message.event_id)
            return
        self._answering[(room_id, sender)] = ref
        files, refused = await self._files_of(shared, text, author.name)
        if refused is not None:  # told to the thread under an id of its own: the caption may still go
            notice = RemoteId(f"{message.event_id}#file")
            await self.inbox.handle(
                Rejected(endpoint=self._name, thread=thread, remote_id=notice, author=author, reason=refused)
            )
        if text or files:
            await self.inbox.handle(
                MessageReceived(
                    endpoint=self._name,
                    thread=thread,
                    remote_id=remote_id,
                    author=author,
                    text=text,
                    html=html,
                    attachments=files,
                )
            )
        self._remember(message.event_id)

    async def _files_of(
        self, shared: SharedFile | None, text: str, who: str
    ) -> tuple[tuple[Attachment, ...], str | None]:
        """A staff member's file in the bridge's store — unless its caption makes it a note or a command,
        which never reach the visitor (so the file is not even read)."""
        if shared is None or self.files is None or not isinstance(interpret(text, self.note_prefix), Reply):
            return (), None
        return await self.files.take(shared, who)

    async def after_batch(self, client: nio.AsyncClient) -> None:
        """After a sync: the encrypted events whose keys came since, and the ones given up on."""
        for room_id, source in await self.undecryptable.readable(client):
            await self.take(client, room_id, source)
        for pending in await self.undecryptable.given_up():
            await self._tell_unreadable(client, pending)

    async def _tell_unreadable(self, client: nio.AsyncClient, pending: Pending) -> None:
        locked = pending.sealed
        if locked.root is None or self.inbox is None:
            log.warning("Matrix: gave up on decrypting %s (it answers no thread)", locked.event_id)
            return
        author = await self._participant(client, pending.room_id, locked.sender, face=False)
        lost = f"A message from {author.name} ({locked.sender}) could not be decrypted, so the visitor did not see it"
        if self._session.can_encrypt:
            reason = (
                f"{lost}: their Matrix client did not share its key with the bridge's device "
                f"{self._session.device_id}. Please send it again; if this keeps happening, let that client send "
                "keys to unverified sessions, or verify the bridge's session."
            )
        else:
            reason = f"{lost}: {self._session.encryption.problem or 'the bridge cannot decrypt yet'}."
        thread = ThreadRef(thread_ref(pending.room_id, locked.root))
        # its own remote id: should the key come after all, the message itself is still taken
        remote_id = RemoteId(f"{locked.event_id}#undecryptable")
        await self.inbox.handle(
            Rejected(endpoint=self._name, thread=thread, remote_id=remote_id, author=author, reason=reason)
        )
        log.warning("Matrix: told the thread that %s from %s could not be decrypted", locked.event_id, locked.sender)

    async def _take_desk_command(self, client: nio.AsyncClient, room_id: str, source: dict[str, Any]) -> None:
        """``!sitechat …`` outside any thread: the desk answers it in the room (``desk.py``)."""
        command = desk_command(source) if self.desk is not None else None
        if command is None or command.sender == self._session.user_id or command.event_id in self._seen:
            return
        assert self.desk is not None
        by = await self._participant(client, room_id, command.sender, face=False)
        await self.desk.take(room_id, command, by)
        self._remember(command.event_id)

    async def _take_change(self, client: nio.AsyncClient, room_id: str, change: Change) -> None:
        """An edit (only its author's counts, as Matrix has it) or a redaction of a staff reply."""
        if change.event_id in self._seen or change.sender == self._session.user_id or self.inbox is None:
            return
        remote_id, original = RemoteId(change.event_id), RemoteId(change.original)
        event: InboundEvent
        if change.content is None:
            # a redaction keeps nothing of the event's relation: the core finds the reply (and so its
            # conversation) by the event id it stored with it, however long ago and restarts since
            event = MessageDeleted(endpoint=self._name, thread=UNKNOWN_THREAD, remote_id=remote_id, original=original)
            await self.inbox.handle(event)
            self._remember(change.event_id)
            return
        known = self._replies.get(change.original) or await self._look_up(client, room_id, change.original)
        if known is None:
            log.info("Matrix: %s changes %s, unknown to the bridge; left alone", change.event_id, change.original)
            return
        ref, author = known
        thread = ThreadRef(ref)
        if change.sender == author:
            text, html = staff_message(change.content)
            event = MessageEdited(
                endpoint=self._name, thread=thread, remote_id=remote_id, original=original, text=text, html=html
            )
        else:
            return
        await self.inbox.handle(event)
        self._remember(change.event_id)

    async def _look_up(self, client: nio.AsyncClient, room_id: str, event_id: str) -> tuple[str, str] | None:
        """The thread and author of a reply older than this process (nio decrypts it on the way)."""
        response = await client.room_get_event(room_id, event_id)
        if not isinstance(response, nio.RoomGetEventResponse):
            log.info("Matrix: cannot read %s (%s)", event_id, describe_response(response))
            return None
        message = thread_message(response.event.source)
        if message is None:
            return None
        known = (thread_ref(room_id, message.root), message.sender)
        self._remember_reply(event_id, *known)
        return known

    async def take_typing(self, client: nio.AsyncClient, room_id: str, users: list[str]) -> None:
        """Matrix says who types in a room, not in which thread: a staff member is taken to be typing
        in the conversation they last answered in this room (where a visitor would expect them)."""
        if self.inbox is None:
            return
        for user in users:
            ref = self._answering.get((room_id, user))
            if ref is not None and user != self._session.user_id and is_staff(user, self._staff):
                await self.inbox.typing(self._name, ThreadRef(ref), await self._participant(client, room_id, user))

    async def take_receipts(self, room_id: str, receipts: Sequence[nio.Receipt]) -> None:
        """Staff who have read the room up to an event: the visitor's messages up to it are "Seen"."""
        if self.inbox is None:
            return
        for receipt in receipts:
            user = receipt.user_id
            if receipt.receipt_type == "m.read" and user != self._session.user_id and is_staff(user, self._staff):
                await self.inbox.read_by_team(self._name, RemoteId(receipt.event_id))

    async def _participant(
        self, client: nio.AsyncClient, room_id: str, sender: str, *, face: bool = True
    ) -> Participant:
        """The person as the core knows them; ``face``: with their photo, for what the visitor sees."""
        room = client.rooms.get(room_id)
        user = room.users.get(sender) if room is not None else None
        # the plain display name: the visitor needs no disambiguating user id
        name = (user.display_name if user is not None else None) or localpart(sender)
        # an mxc:// avatar is of no use to a browser: the bridge's own copy of it (avatars.py)
        mxc = user.avatar_url if user is not None and face else None
        avatar = await self.avatars.avatar_url(sender, mxc) if self.avatars is not None else None
        return Participant(Role.AGENT, name, avatar, f"matrix:{sender}")

    def _remember(self, event_id: str) -> None:
        # bounded: the core dedupes for good; this only spares it the replays of recent batches
        self._seen.add(event_id)
        self._seen_order.append(event_id)
        if len(self._seen_order) > SEEN_MAX:
            self._seen.discard(self._seen_order.popleft())

    def _remember_reply(self, event_id: str, ref: str, author: str) -> None:
        self._replies[event_id] = (ref, author)
        self._replies.move_to_end(event_id)
        if len(self._replies) > REPLIES_MAX:
            self._replies.popitem(last=False)
