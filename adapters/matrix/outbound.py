"""From the core to Matrix: each delivery as events in the conversation's ``m.thread``.

Every send carries a transaction id derived from the delivery id, so a resend after a crash or a
timeout is a no-op on the homeserver (same device, same txn id → the first event back). A refused
send becomes the ``DeliveryError`` the delivery workers act on (wait, retry, or pause the room).

In an encrypted room nio encrypts every event (root, lines, transcript, notices, edits) and keeps
the ``m.relates_to`` outside the ciphertext, where Element reads threads and edits; the room's
members and the trust in their devices are settled first (``crypto.py``). Nothing is ever sent
into an encrypted room that the client does not know to be encrypted: that would be plaintext.
Only the instance holding the Matrix lock sends (``holder.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, assert_never

import aiohttp
import nio

from adapters.matrix.files import FileUploads, UploadRefused
from adapters.matrix.format import (
    MESSAGE_CHUNK,
    edit_content,
    notice_contents,
    root_content,
    split_ref,
    thread_ref,
    thread_relation,
    visitor_content,
    visitor_contents,
)
from adapters.matrix.holder import SessionHolder
from adapters.matrix.mentions import InviteRefused, Mentions, reminder_mentions_room, with_room_mention
from adapters.matrix.responses import Refusal, classify_refusal, describe, refusal_error
from adapters.matrix.session import MatrixSession
from bridge.endpoint import Outgoing, Sent
from bridge.errors import DeliveryError, DestinationUnavailable, RetryLater
from bridge.model import RemoteId, ThreadRef
from bridge.outbound import (
    Deletion,
    Edit,
    Erase,
    FilePost,
    FollowUpMail,
    Invite,
    Line,
    Notice,
    OpenThread,
    Reminder,
    RootState,
    Seen,
    Transcript,
    WebhookEvent,
)

#: how long the bot's typing notice lasts: the widget tells again every 3 s while the visitor types
TYPING_MS = 5000
#: how long a lane picked up where the session does not run waits for the lock (see holder.py)
HANDOVER_WAIT = 5.0
#: what nio raises when it cannot encrypt yet (members or devices not known, a key not shared)
ENCRYPTION_ERRORS = (
    nio.OlmUnverifiedDeviceError,
    nio.EncryptionError,
    nio.GroupEncryptionError,
    nio.MembersSyncError,
    nio.LocalProtocolError,
    nio.SendRetryError,
)


def txn_id(salt: str, delivery_id: int, part: int | str) -> str:
    """The same delivery part always gets the same txn id: a resend returns the first event."""
    return f"sitechat-{salt}-{delivery_id}-{part}"


class Sender:
    def __init__(
        self,
        session: MatrixSession,
        holder: SessionHolder,
        *,
        note_prefix: str,
        last_in_thread: dict[str, str],
        files: FileUploads | None = None,
    ) -> None:
        self._session = session
        #: a line's files, uploaded and posted after its text (``files.py``)
        self._files = files
        self._holder = holder
        self._note_prefix = note_prefix
        #: thread ref → newest event in it, for the reply fallback of clients without threads
        self._last_in_thread = last_in_thread
        #: thread ref → root body last shown, so a state refresh that changes nothing posts no edit
        self._root_body: dict[str, str] = {}
        #: room → loop time before which the homeserver asked us not to post there
        self._blocked_until: dict[str, float] = {}
        self._mentions = Mentions(session.user_id)

    async def ready(self, destination: str) -> None:
        # standing by: let the holder send it (it usually has, when this returns), or take over
        await self._holder.wait_until_holding(HANDOVER_WAIT)
        loop = asyncio.get_running_loop()
        wait = self._blocked_until.get(destination, 0.0) - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)

    async def typing(self, thread: ThreadRef) -> None:
        """The bot types in the thread's room for a few seconds (Matrix shows typing per room, not per
        thread); a hint only, so nothing is waited for or retried, and only where the session runs."""
        client = self._session.client
        if not self._holder.holding or client is None or not self._session.logged_in:
            return
        room, _ = split_ref(thread)
        if room in self._session.joined:
            await client.room_typing(room, True, timeout=TYPING_MS)

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        sent: list[Sent] = []
        for item in batch:
            try:
                sent.append(await self._deliver_one(item))
            except DeliveryError as exc:
                exc.sent = sent + exc.sent
                raise
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                # with a txn id a resend is harmless, but say it may have landed all the same
                raise RetryLater(f"Matrix did not answer ({describe(exc)})", maybe_sent=True, sent=sent) from exc
        return sent

    async def _deliver_one(self, item: Outgoing) -> Sent:
        session = self._session
        client = session.client
        if not self._holder.holding:
            raise RetryLater("another instance runs the Matrix session (it holds the Matrix lock) and sends this")
        if session.login_problem is not None:
            raise DestinationUnavailable(session.login_problem)  # shown by /readyz until fixed
        if client is None or not session.logged_in:
            raise RetryLater(f"not logged in to Matrix ({session.homeserver}) yet")
        if isinstance(item.what, OpenThread | FilePost):
            room, root = item.destination, ""  # a root, or a post in the room itself
        else:
            if item.thread is None:
                raise RetryLater("the thread's root is not posted yet")
            room, root = split_ref(item.thread)
        await self._usable_room(client, room)
        ref = thread_ref(room, root)

        match item.what:
            case OpenThread():
                content = self._root_content(item)
                event_id = await self._send(client, room, content, item, 0)
                ref = thread_ref(room, event_id)
                self._last_in_thread[ref] = event_id
                self._root_body[ref] = content["body"]
                return Sent(item.delivery_id, RemoteId(event_id), ThreadRef(ref))
            case RootState():
                # Matrix has no buttons to update: the root is edited to show the state as people read it
                content = self._root_content(item)
                if self._root_body.get(ref) == content["body"]:
                    return Sent(item.delivery_id)
                event_id = await self._send(client, room, edit_content(root, content), item, 0)
                self._root_body[ref] = content["body"]
                return Sent(item.delivery_id, RemoteId(event_id))
            case Line(message):
                if message.deleted:
                    return Sent(item.delivery_id)  # taken back before it was posted: nothing to post
                # a file sent alone goes without an empty "Ann: " line before it
                alone = not message.text and bool(message.attachments)
                contents = [] if alone else visitor_contents(message.author.name, message.text, message.html)
            case Transcript(text) | Notice(text):
                # the bridge speaking, long ones over several events
                contents = notice_contents(text)
            case Reminder(text, mention):
                # the one line that may call the whole room: @room where the bot's power level allows it
                contents = notice_contents(text)
                if reminder_mentions_room(mention) and await self._mentions.may_mention_room(client, room):
                    contents[0] = with_room_mention(contents[0])
            case Invite(who, by):
                # invited to the room unless they are in it, then mentioned in the thread (mentions.py)
                try:
                    contents = await self._mentions.invitation(client, room, who, by)
                except InviteRefused as exc:
                    raise self.refused(room, exc.response, what=f"cannot invite to room {room}") from exc
            case Edit(message, copy):
                # a file sent alone has its file's event as the copy: no text edit replaces a file
                if copy is not None and (message.text or not message.attachments):
                    # a copy is one event: a line that took several keeps only its first one current
                    fits = len(message.text) <= MESSAGE_CHUNK
                    html_text = message.html if fits else None
                    new = visitor_content(message.author.name, message.text[:MESSAGE_CHUNK], html_text=html_text)
                    edit = await self._send(client, room, edit_content(copy, new), item, 0)
                    return Sent(item.delivery_id, more=(RemoteId(edit),))  # holds the text too: erased with it
                return Sent(item.delivery_id)
            case Deletion(_, copy, more):
                # every event the message became: its text, the files sent with it
                for n, target in enumerate(c for c in (copy, *more) if c is not None):
                    await self._redact(client, room, target, item, part=n)
                return Sent(item.delivery_id)
            case Seen(_, copy):
                # the visitor has seen the staff member's reply: the bot's read receipt on it, once
                if copy is not None:
                    await self._receipt(client, room, copy, root)
                return Sent(item.delivery_id)
            case Erase(copy):
                # the conversation was erased: our event goes (``copy`` None: the thread's root)
                await self._redact(client, room, copy or root, item)
                return Sent(item.delivery_id)
            case FilePost(_, text):
                # the room's own post (the report's picture): its text, then the file, in no thread
                contents = notice_contents(text) if text else []
            case WebhookEvent() | FollowUpMail():
                return Sent(item.delivery_id)  # not for a team chat
            case _:
                assert_never(item.what)
        events: list[RemoteId] = []
        parts: list[tuple[int | str, dict[str, Any]]] = [*enumerate(contents)]
        parts += await self._file_parts(client, room, item)
        for part, content in parts:
            if root:
                content["m.relates_to"] = thread_relation(root, self._last_in_thread.get(ref, root))
            event_id = await self._send(client, room, content, item, part)
            if root:
                self._last_in_thread[ref] = event_id
            events.append(RemoteId(event_id))
        # the first event is the copy (edits go to it); the others are kept for an erasure
        return Sent(item.delivery_id, events[0] if events else None, more=tuple(events[1:]))

    async def _file_parts(self, client: nio.AsyncClient, room: str, item: Outgoing) -> list[tuple[str, dict[str, Any]]]:
        """The files of a line (or of a room's post) as events after its text, each with a txn part of its
        own (``file0``, ``file1``…), so a resend never posts one twice (``files.py``)."""
        match item.what:
            case Line(message):
                files = message.attachments
            case FilePost(file):
                files = (file,)
            case _:
                files = ()
        if not files or self._files is None:
            return []
        try:
            return await self._files.contents(client, files, encrypt=room in self._session.encrypted)
        except UploadRefused as exc:
            raise self.refused(room, exc.response, what=f"cannot upload a file for room {room}") from exc

    def _root_content(self, item: Outgoing) -> dict[str, Any]:
        return root_content(item.conversation, item.site_name, item.topic_label, self._note_prefix)

    async def _usable_room(self, client: nio.AsyncClient, room: str) -> None:
        session = self._session
        if room not in session.joined:
            response = await client.join(room)
            if not isinstance(response, nio.JoinResponse):
                raise self.refused(room, response, what=f"cannot join room {room}")
            session.joined.add(room)
            await session.refresh_encryption(room)
        known = client.rooms.get(room)
        if known is not None and known.encrypted:
            session.mark_encrypted(room)
        if room not in session.encrypted:
            return
        refusal = session.refusal(room)
        if refusal is not None:
            raise DestinationUnavailable(refusal)  # shown by /readyz until the store opens
        if known is None or not known.encrypted:
            # the client would send plaintext: wait for the sync that tells it the room is encrypted
            raise RetryLater(f"room {room} is encrypted and the client has not synced it yet")
        try:
            await session.encryption.prepare_room(client, room)
        except (*ENCRYPTION_ERRORS, RuntimeError) as exc:
            raise RetryLater(f"cannot encrypt for room {room} yet ({describe(exc)})") from exc

    async def post(self, room: str, content: dict[str, Any], tx_id: str) -> str:
        """An event that is no delivery (an answer to ``!sitechat``) into a room the bot serves, encrypted
        where the room is; the event id. Raises the ``DeliveryError`` a delivery would."""
        client = self._session.client
        if client is None or not self._session.logged_in:
            raise RetryLater(f"not logged in to Matrix ({self._session.homeserver}) yet")
        await self._usable_room(client, room)
        return await self._room_send(client, room, content, tx_id)

    async def _send(
        self, client: nio.AsyncClient, room: str, content: dict[str, Any], item: Outgoing, part: int | str
    ) -> str:
        return await self._room_send(client, room, content, txn_id(self._session.txn_salt, item.delivery_id, part))

    async def _room_send(self, client: nio.AsyncClient, room: str, content: dict[str, Any], tx_id: str) -> str:
        try:
            response = await client.room_send(room, "m.room.message", content, tx_id=tx_id)
        except ENCRYPTION_ERRORS as exc:
            raise RetryLater(f"cannot encrypt for room {room} yet ({describe(exc)})") from exc
        if isinstance(response, nio.RoomSendResponse):
            return str(response.event_id)
        raise self.refused(room, response, what=f"cannot post in room {room}")

    async def _receipt(self, client: nio.AsyncClient, room: str, event_id: str, root: str) -> None:
        response = await client.update_receipt_marker(room, event_id, thread_id=root)
        if not isinstance(response, nio.UpdateReceiptMarkerResponse):
            raise self.refused(room, response, what=f"cannot mark {event_id} read in room {room}")

    async def _redact(
        self, client: nio.AsyncClient, room: str, event_id: str, item: Outgoing, *, part: int = 0
    ) -> None:
        # one transaction id per event: the homeserver takes a repeated one for the same redaction
        tx_id = txn_id(self._session.txn_salt, item.delivery_id, "redact" if not part else f"redact{part}")
        response = await client.room_redact(room, event_id, tx_id=tx_id)
        if not isinstance(response, nio.RoomRedactResponse):
            raise self.refused(room, response, what=f"cannot redact in room {room}")

    def refused(self, room: str, response: Any, *, what: str) -> DeliveryError:
        """A refused send (or join), as the delivery workers understand it; what it tells about the
        room or the login is remembered, so the next attempt does the right thing first."""
        session = self._session
        refusal = classify_refusal(response)
        error = refusal_error(
            refusal, response, room=room, what=what, user_id=session.user_id, fixed_token=session.fixed_token
        )
        match refusal:
            case Refusal.RATE_LIMITED:
                assert error.retry_after is not None
                self._blocked_until[room] = asyncio.get_running_loop().time() + error.retry_after
            case Refusal.LOGIN_GONE:
                session.token_refused()  # the sync loop logs in again (password) on the same device
            case Refusal.NO_ACCESS:
                session.joined.discard(room)  # the next attempt tries to join again
            case Refusal.REFUSED | Refusal.UNREADABLE:
                pass
            case _:
                assert_never(refusal)
        return error
