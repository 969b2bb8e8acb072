"""The Matrix endpoint: matrix-nio for both directions, one bot device kept across restarts.

Outbound, every send carries a transaction id derived from the delivery id, so a resend after a
crash or a timeout is a no-op on the homeserver (same device, same txn id → same event). That is why
the device must survive restarts: the login is stored and restored, not redone.

Inbound, a sync loop of our own: the ``next_batch`` token is stored only after the batch's events
have been handed to the core, so a crash replays a batch (the core dedupes on the event id) rather
than losing one. A ``limited`` timeline (a gap) is backfilled with ``/messages`` first.

Plain nio cannot encrypt and would post plaintext into an encrypted room; such rooms are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Sequence
from typing import Any, assert_never

import aiohttp
import nio

from adapters.matrix.format import (
    PERSON_TYPES,
    edit_content,
    is_staff,
    localpart,
    media_url,
    notice_content,
    reply_target,
    root_content,
    split_ref,
    staff_text,
    thread_ref,
    thread_relation,
    visitor_content,
)
from bridge.endpoint import Inbox, Outgoing, Sent, StateStore
from bridge.errors import DeliveryError, DestinationUnavailable, RetryLater
from bridge.events import MessageReceived, Rejected
from bridge.model import EndpointName, Participant, RemoteId, Role, ThreadRef
from bridge.outbound import Deletion, Edit, Line, Notice, OpenThread, RootState, Transcript
from bridge.transcript import split_text
from config.settings import Settings

log = logging.getLogger(__name__)

#: a person's line per event; a longer one (a mirrored Slack post) is split. Matrix allows 64 KiB
#: per event, and body + escaped formatted_body of 4,000 characters stay far below it.
MESSAGE_CHUNK = 4000
NOTICE_CHUNK = 8000  # body only, so twice as much fits
TIMELINE_LIMIT = 20  # events per room per sync; a longer gap is backfilled
BACKFILL_PAGE = 100
BACKFILL_MAX_PAGES = 50
SEEN_MAX = 5000
START_WAIT = 15.0  # seconds start() tries to log in and sync before leaving it to the sync loop
TOKEN_ERRORS = frozenset({"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"})
ENCRYPTED_PROBLEM = (
    "room {room} is end-to-end encrypted; the bridge cannot encrypt, so it posts nothing there "
    "(encryption cannot be turned off: create an unencrypted room and set MATRIX_ROOM to it)"
)


class LoginFailed(Exception):
    """The homeserver refused the bot's credentials (as opposed to not answering)."""


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
        self.homeserver = homeserver.rstrip("/")
        self.user_id = user_id
        self._password = password
        self._access_token = access_token
        self._configured_device = device_id
        self._staff = list(staff)
        self._rooms = frozenset(rooms)
        self._state = state
        self._note_prefix = note_prefix
        self._poll_ms = int(poll_seconds * 1000)
        self.client: nio.AsyncClient | None = None
        self.device_id: str | None = None
        self._inbox: Inbox | None = None
        self._task: asyncio.Task[None] | None = None
        self._logged_in = False
        #: why the homeserver refused the login, until a login works again
        self._login_problem: str | None = None
        self._login_lock = asyncio.Lock()
        self._txn_salt = ""
        #: the last sync token whose events the core has
        self._token: str | None = None
        #: after a (re)start nio knows no room state: the first sync asks for all of it
        self._need_full_state = True
        self._joined: set[str] = set()
        self._encrypted: set[str] = set()
        self._join_problems: dict[str, str] = {}
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        #: thread ref → newest event in it, for the reply fallback of clients without threads
        self._last_in_thread: dict[str, str] = {}
        #: (room, staff member) → the thread they last answered in: where their typing is shown
        self._answering: dict[tuple[str, str], str] = {}
        #: thread ref → root body last shown, so a state refresh that changes nothing posts no edit
        self._root_body: dict[str, str] = {}
        self._blocked_until: dict[str, float] = {}

    @classmethod
    def from_settings(cls, settings: Settings, state: StateStore) -> MatrixEndpoint:
        assert settings.matrix_homeserver and settings.matrix_user_id  # checked by Settings
        rooms = {
            room
            for site in settings.sites.values()
            for room in (site.matrix_room, *(t.matrix_room for t in site.topics.values()))
            if room
        }
        return cls(
            homeserver=settings.matrix_homeserver,
            user_id=settings.matrix_user_id,
            password=settings.matrix_password.get_secret_value() if settings.matrix_password else None,
            access_token=settings.matrix_access_token.get_secret_value() if settings.matrix_access_token else None,
            device_id=settings.matrix_device_id,
            staff=settings.matrix_staff,
            rooms=sorted(rooms),
            state=state,
            note_prefix=settings.note_prefix,
        )

    @property
    def encrypted_rooms(self) -> frozenset[str]:
        """Rooms seen to be end-to-end encrypted: the bridge posts nothing there."""
        return frozenset(self._encrypted)

    # -- lifecycle ------------------------------------------------------------------------------

    def _new_client(self) -> nio.AsyncClient:
        config = nio.AsyncClientConfig(
            # nio would otherwise sleep and retry inside a send: a 429 forever, a timeout with
            # backoff. The delivery workers own retries (and honour Retry-After), so fail at once.
            max_limit_exceeded=0,
            max_timeouts=0,
            request_timeout=30,
            encryption_enabled=False,
            store_sync_tokens=False,
        )
        return nio.AsyncClient(self.homeserver, self.user_id, config=config)

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        if self.client is None:
            self.client = self._new_client()
        try:
            # a homeserver that does not answer must not hold up the widget server's start
            async with asyncio.timeout(START_WAIT):
                await self._ensure_logged_in()
                if self._token is None:
                    await self._first_sync()
        except Exception as exc:  # start anyway: the sync loop keeps trying, deliveries wait
            log.error("Matrix: cannot connect yet as %s to %s: %s", self.user_id, self.homeserver, _describe(exc))
        self._task = asyncio.create_task(self._sync_loop(), name="matrix-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.client is not None:
            await self.client.close()
            self.client = None
        self._logged_in = False

    # -- login and rooms ------------------------------------------------------------------------

    async def _ensure_logged_in(self) -> None:
        async with self._login_lock:
            if self._logged_in:
                return
            assert self.client is not None
            try:
                await self._log_in(self.client)
            except LoginFailed as exc:
                self._login_problem = f"cannot log in as {self.user_id} on {self.homeserver}: {exc}"
                raise
            self._login_problem = None
            salt = await self._state.get("txn_salt")
            if salt is None:
                # distinguishes our txn ids from those of another database on the same device
                salt = secrets.token_hex(4)
                await self._state.put("txn_salt", salt)
            self._txn_salt = salt
            if self._token is None:
                self._token = await self._state.get("next_batch")
            await self._enter_rooms(self.client)
            self._logged_in = True
            self._need_full_state = True

    async def _log_in(self, client: nio.AsyncClient) -> None:
        if self._access_token:
            client.restore_login(self.user_id, self._configured_device or "", self._access_token)
            who = await client.whoami()
            if not isinstance(who, nio.WhoamiResponse):
                raise _login_error("MATRIX_ACCESS_TOKEN", who)
            if who.user_id != self.user_id:
                raise LoginFailed(f"MATRIX_ACCESS_TOKEN belongs to {who.user_id}, not MATRIX_USER_ID {self.user_id}")
            client.device_id = self._configured_device or who.device_id or ""
            self.device_id = client.device_id
            return
        assert self._password is not None  # Settings requires one of the two
        stored_user = await self._state.get("user_id")
        stored_device = await self._state.get("device_id")
        stored_token = await self._state.get("access_token")
        if stored_user == self.user_id and stored_device and stored_token:
            client.restore_login(self.user_id, stored_device, stored_token)
            who = await client.whoami()
            if isinstance(who, nio.WhoamiResponse):
                self.device_id = stored_device
                return
            if who.status_code not in TOKEN_ERRORS:
                raise _login_error("the stored login", who)
            log.warning("Matrix: the stored access token was refused; logging in again on device %s", stored_device)
            client.access_token = ""
            client.device_id = stored_device  # a password login naming the device keeps it
        else:
            client.device_id = self._configured_device or ""
        response = await client.login(self._password, device_name="sitechat-bridge")
        if not isinstance(response, nio.LoginResponse):
            raise _login_error("MATRIX_PASSWORD", response)
        await self._state.put("user_id", self.user_id)
        await self._state.put("device_id", response.device_id)
        await self._state.put("access_token", response.access_token)
        self.device_id = response.device_id
        log.info("Matrix: logged in as %s, device %s (kept for later starts)", self.user_id, response.device_id)

    async def _enter_rooms(self, client: nio.AsyncClient) -> None:
        joined = await client.joined_rooms()
        if not isinstance(joined, nio.JoinedRoomsResponse):
            raise RuntimeError(f"joined_rooms failed: {_describe_response(joined)}")
        self._joined = set(joined.rooms)
        for room in sorted(self._rooms - self._joined):
            await self._join(client, room)
        for room in sorted(self._rooms & self._joined):
            await self._refresh_encryption(client, room)

    async def _join(self, client: nio.AsyncClient, room: str) -> bool:
        response = await client.join(room)
        if isinstance(response, nio.JoinResponse):
            self._joined.add(room)
            self._join_problems.pop(room, None)
            log.info("Matrix: joined %s", room)
            return True
        problem = f"the bot {self.user_id} is not in room {room} and cannot join it ({_describe_response(response)})"
        if self._join_problems.get(room) != problem:
            log.warning("Matrix: %s; invite it to the room (it accepts invites to configured rooms)", problem)
        self._join_problems[room] = problem
        return False

    async def _refresh_encryption(self, client: nio.AsyncClient, room: str) -> None:
        response = await client.room_get_state_event(room, "m.room.encryption")
        if isinstance(response, nio.RoomGetStateEventResponse) and response.content.get("algorithm"):
            self._mark_encrypted(room)

    def _mark_encrypted(self, room: str) -> None:
        if room not in self._encrypted:
            self._encrypted.add(room)
            # loud on purpose: staff in that room see no visitor until someone acts
            log.error("Matrix: REFUSING TO BRIDGE: %s", ENCRYPTED_PROBLEM.format(room=room))

    # -- sync -----------------------------------------------------------------------------------

    def _sync_filter(self, timeline_limit: int = TIMELINE_LIMIT) -> dict[str, Any]:
        return {
            "presence": {"types": []},
            "account_data": {"types": []},
            "room": {
                "rooms": sorted(self._rooms),
                "timeline": {"limit": timeline_limit},
                "ephemeral": {"types": ["m.typing"]},
                "account_data": {"types": []},
            },
        }

    async def _first_sync(self) -> None:
        """No token yet (first start): take the room state, skip the history, keep the token."""
        assert self.client is not None
        async with asyncio.timeout(self._poll_ms / 1000 + 30):
            response = await self.client.sync(timeout=0, sync_filter=self._sync_filter(1), full_state=True)
        if not isinstance(response, nio.SyncResponse):
            raise self._sync_failed(response)
        await self._take_state(response)
        await self._state.put("next_batch", response.next_batch)
        self._token = response.next_batch
        self._need_full_state = False

    async def _sync_loop(self) -> None:
        failures = 0
        while True:
            try:
                await self._ensure_logged_in()
                if self._token is None:
                    await self._first_sync()
                else:
                    await self._sync_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                wait = min(60.0, 0.5 * 2 ** min(failures, 8))
                log.warning("Matrix sync failed (%s); again in %.0f s", _describe(exc), wait)
                await asyncio.sleep(wait)

    async def _sync_once(self) -> None:
        assert self.client is not None
        full_state = self._need_full_state
        # our own deadline: nio leaves requests with timeout 0 unbounded
        async with asyncio.timeout(self._poll_ms / 1000 + 30):
            response = await self.client.sync(
                timeout=0 if full_state else self._poll_ms,
                since=self._token,
                sync_filter=self._sync_filter(),
                full_state=True if full_state else None,
            )
        if not isinstance(response, nio.SyncResponse):
            raise self._sync_failed(response)
        await self._take_state(response)
        await self._take_events(response, self._token)
        self._need_full_state = False
        if response.next_batch != self._token:
            # only now: the batch's events are with the core, so a crash replays rather than loses
            await self._state.put("next_batch", response.next_batch)
            self._token = response.next_batch

    def _sync_failed(self, response: Any) -> Exception:
        if getattr(response, "status_code", None) in TOKEN_ERRORS:
            self._logged_in = False
        return RuntimeError(_describe_response(response))

    async def _take_state(self, response: nio.SyncResponse) -> None:
        """Invites to our rooms are accepted; encryption anywhere in our rooms is noticed."""
        assert self.client is not None
        for room in response.rooms.invite:
            if room in self._rooms and room not in self._joined:
                await self._join(self.client, room)
        for room, info in response.rooms.join.items():
            for event in (*info.state, *info.timeline.events):
                source = event.source
                if source.get("type") == "m.room.encryption" and source.get("state_key") == "":
                    self._mark_encrypted(room)
        for room in response.rooms.leave:
            if room in self._joined:
                self._joined.discard(room)
                log.warning("Matrix: the bot is no longer in %s; it rejoins when it next posts there", room)

    async def _take_events(self, response: nio.SyncResponse, since: str | None) -> None:
        assert self.client is not None
        for room_id, info in response.rooms.join.items():
            if room_id not in self._rooms:
                continue
            was_joined = room_id in self._joined
            self._joined.add(room_id)
            events = [e.source for e in info.timeline.events]
            if info.timeline.limited and was_joined and since and info.timeline.prev_batch:
                events = await self._backfill(room_id, info.timeline.prev_batch, since) + events
            room = self.client.rooms.get(room_id)
            for source in events:
                await self._take_event(room_id, room, source)
            for ephemeral in info.ephemeral:
                if isinstance(ephemeral, nio.TypingNoticeEvent):
                    await self._take_typing(room_id, room, ephemeral.users)

    async def _take_typing(self, room_id: str, room: nio.MatrixRoom | None, users: list[str]) -> None:
        """Matrix says who types in a room, not in which thread: a staff member is taken to be typing
        in the conversation they last answered in this room (where a visitor would expect them)."""
        if self._inbox is None:
            return
        for user in users:
            ref = self._answering.get((room_id, user))
            if ref is not None and user != self.user_id and is_staff(user, self._staff):
                await self._inbox.typing(self.name, ThreadRef(ref), self._participant(room, user))

    async def _backfill(self, room_id: str, start: str, until: str) -> list[dict[str, Any]]:
        """The events of a gap, oldest first (from the timeline's start back to our last token)."""
        assert self.client is not None
        found: list[dict[str, Any]] = []
        for _ in range(BACKFILL_MAX_PAGES):
            page = await self.client.room_messages(
                room_id, start=start, end=until, direction=nio.MessageDirection.back, limit=BACKFILL_PAGE
            )
            if not isinstance(page, nio.RoomMessagesResponse):
                if _transient(page):
                    # the gap is readable, just not now: fail this sync so it is tried again (its
                    # token is not saved yet); skipping would lose the replies in the gap
                    raise RuntimeError(f"cannot backfill {room_id} yet ({_describe_response(page)})")
                # stalling on a gap we may never read (history visibility) would stop every room
                log.warning(
                    "Matrix: cannot backfill %s (%s); some replies may be missed", room_id, _describe_response(page)
                )
                break
            found.extend(e.source for e in page.chunk)
            if not page.chunk or not page.end or page.end == start:
                break
            start = page.end
        else:
            log.warning("Matrix: gap in %s longer than %d events; older replies skipped", room_id, len(found))
        found.reverse()
        log.info("Matrix: backfilled %d event(s) of a sync gap in %s", len(found), room_id)
        return found

    async def _take_event(self, room_id: str, room: nio.MatrixRoom | None, source: dict[str, Any]) -> None:
        event_id = source.get("event_id")
        sender = source.get("sender")
        content = source.get("content")
        if (
            source.get("type") != "m.room.message"
            or not isinstance(event_id, str)
            or not isinstance(sender, str)
            or not isinstance(content, dict)
            or event_id in self._seen
        ):
            return
        root = reply_target(content)
        if root is None:
            return
        ref = thread_ref(room_id, root)
        if ref in self._last_in_thread:  # only threads this process posted in: the map stays small
            self._last_in_thread[ref] = event_id
        if sender == self.user_id or content.get("msgtype") not in PERSON_TYPES:
            return  # our own echo, or another bot's notice
        text = staff_text(content, self.homeserver)
        if not text:
            return
        author = self._participant(room, sender)
        inbox = self._inbox
        if inbox is None:
            return
        if is_staff(sender, self._staff):
            self._answering[(room_id, sender)] = ref
            await inbox.handle(
                MessageReceived(
                    endpoint=self.name,
                    thread=ThreadRef(ref),
                    remote_id=RemoteId(event_id),
                    author=author,
                    text=text,
                )
            )
        else:
            await inbox.handle(
                Rejected(
                    endpoint=self.name,
                    thread=ThreadRef(ref),
                    remote_id=RemoteId(event_id),
                    author=author,
                    reason=f"{sender} is not on the staff list (MATRIX_STAFF); the visitor did not see that",
                )
            )
        self._remember(event_id)

    def _participant(self, room: nio.MatrixRoom | None, sender: str) -> Participant:
        user = room.users.get(sender) if room is not None else None
        # the plain display name: the visitor needs no disambiguating user id
        name = (user.display_name if user is not None else None) or localpart(sender)
        avatar = media_url(self.homeserver, user.avatar_url) if user is not None and user.avatar_url else None
        return Participant(Role.AGENT, name, avatar, f"matrix:{sender}")

    def _remember(self, event_id: str) -> None:
        self._seen.add(event_id)
        self._seen_order.append(event_id)
        if len(self._seen_order) > SEEN_MAX:
            self._seen.discard(self._seen_order.popleft())

    # -- to Matrix ------------------------------------------------------------------------------

    async def ready(self, destination: str) -> None:
        loop = asyncio.get_running_loop()
        wait = self._blocked_until.get(destination, 0.0) - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)

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
                raise RetryLater(f"Matrix did not answer ({_describe(exc)})", maybe_sent=True, sent=sent) from exc
        return sent

    async def _deliver_one(self, item: Outgoing) -> Sent:
        client = self.client
        if self._login_problem is not None:
            raise DestinationUnavailable(self._login_problem)  # shown by /readyz until fixed
        if client is None or not self._logged_in:
            raise RetryLater(f"not logged in to Matrix ({self.homeserver}) yet")
        if isinstance(item.what, OpenThread):
            room, root = item.destination, ""
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
                chunks = split_text(message.text, MESSAGE_CHUNK)
                contents = [visitor_content(message.author.name, chunk) for chunk in chunks]
            case Transcript(text) | Notice(text):
                # the bridge speaking, long ones over several events
                contents = [notice_content(chunk) for chunk in split_text(text, NOTICE_CHUNK)]
            case Edit(message, copy):
                if copy is not None:
                    new = visitor_content(message.author.name, message.text[:MESSAGE_CHUNK])
                    await self._send(client, room, edit_content(copy, new), item, 0)
                return Sent(item.delivery_id)
            case Deletion(_, copy):
                if copy is not None:
                    await self._redact(client, room, copy, item)
                return Sent(item.delivery_id)
            case _:
                assert_never(item.what)
        first = ""
        for part, content in enumerate(contents):
            content["m.relates_to"] = thread_relation(root, self._last_in_thread.get(ref, root))
            event_id = await self._send(client, room, content, item, part)
            self._last_in_thread[ref] = event_id
            first = first or event_id
        return Sent(item.delivery_id, RemoteId(first))

    def _root_content(self, item: Outgoing) -> dict[str, Any]:
        return root_content(item.conversation, item.site_name, item.topic_label, self._note_prefix)

    async def _usable_room(self, client: nio.AsyncClient, room: str) -> None:
        if room not in self._joined:
            response = await client.join(room)
            if not isinstance(response, nio.JoinResponse):
                raise self._refused(room, response, what=f"cannot join room {room}")
            self._joined.add(room)
            await self._refresh_encryption(client, room)
        if room in self._encrypted:
            raise DestinationUnavailable(ENCRYPTED_PROBLEM.format(room=room))

    async def _send(
        self, client: nio.AsyncClient, room: str, content: dict[str, Any], item: Outgoing, part: int
    ) -> str:
        # the same delivery part always gets the same txn id: a resend returns the first event
        tx_id = f"sitechat-{self._txn_salt}-{item.delivery_id}-{part}"
        response = await client.room_send(room, "m.room.message", content, tx_id=tx_id)
        if isinstance(response, nio.RoomSendResponse):
            return str(response.event_id)
        raise self._refused(room, response, what=f"cannot post in room {room}")

    async def _redact(self, client: nio.AsyncClient, room: str, event_id: str, item: Outgoing) -> None:
        tx_id = f"sitechat-{self._txn_salt}-{item.delivery_id}-redact"
        response = await client.room_redact(room, event_id, tx_id=tx_id)
        if not isinstance(response, nio.RoomRedactResponse):
            raise self._refused(room, response, what=f"cannot redact in room {room}")

    def _refused(self, room: str, response: Any, *, what: str) -> DeliveryError:
        """A refused send (or join), as the delivery workers understand it."""
        code = getattr(response, "status_code", None)
        status = getattr(getattr(response, "transport_response", None), "status", None)
        detail = _describe_response(response)
        if code == "M_LIMIT_EXCEEDED" or status == 429:
            retry_after = (getattr(response, "retry_after_ms", None) or 1000) / 1000
            self._blocked_until[room] = asyncio.get_running_loop().time() + retry_after
            return RetryLater(f"Matrix rate limit in {room}", retry_after=retry_after)
        if code in TOKEN_ERRORS:
            self._logged_in = False  # the sync loop logs in again (password) on the same device
            if self._access_token:
                return DestinationUnavailable(f"Matrix refused MATRIX_ACCESS_TOKEN ({detail})")
            return RetryLater(f"Matrix login expired ({detail}); logging in again")
        if code in ("M_FORBIDDEN", "M_NOT_FOUND") or status in (403, 404):
            self._joined.discard(room)
            return DestinationUnavailable(f"{what}: {detail}; invite {self.user_id} and check the room id")
        if status is not None and 400 <= status < 500 and code:
            return RetryLater(f"Matrix refused: {detail}")
        # a gateway's 5xx or an answer nio could not read: it may have landed (the txn id covers a resend)
        return RetryLater(f"Matrix answered {detail}", maybe_sent=True)

    # -- health ---------------------------------------------------------------------------------

    def known_problems(self) -> list[str]:
        """What the endpoint already knows is wrong, without asking the homeserver (cheap enough
        for a readiness probe): a refused login, rooms it cannot join, encrypted rooms."""
        problems = [f"Matrix: {self._login_problem}"] if self._login_problem else []
        problems += [f"Matrix: {problem}" for problem in self._join_problems.values()]
        problems += [f"Matrix: {ENCRYPTED_PROBLEM.format(room=room)}" for room in sorted(self._encrypted)]
        return problems

    async def check(self, destinations: Sequence[str]) -> list[str]:
        if self.client is None:
            self.client = self._new_client()
        client = self.client
        try:
            await self._ensure_logged_in()
        except LoginFailed:
            return [f"Matrix: {self._login_problem}; check MATRIX_PASSWORD / MATRIX_ACCESS_TOKEN"]
        except Exception as exc:
            return [f"Matrix: {self.homeserver} cannot be reached ({_describe(exc)}); check MATRIX_HOMESERVER"]
        try:
            return await self._check_rooms(client, destinations)
        except Exception as exc:
            return [f"Matrix: {self.homeserver} stopped answering ({_describe(exc)})"]

    async def _check_rooms(self, client: nio.AsyncClient, destinations: Sequence[str]) -> list[str]:
        who = await client.whoami()
        if not isinstance(who, nio.WhoamiResponse):
            return [f"Matrix: the bot's login no longer works ({_describe_response(who)})"]
        joined = await client.joined_rooms()
        if not isinstance(joined, nio.JoinedRoomsResponse):
            return [f"Matrix: cannot list the bot's rooms ({_describe_response(joined)})"]
        problems = []
        for room in destinations:
            if room not in joined.rooms:
                reason = self._join_problems.get(room) or f"the bot {self.user_id} is not in room {room}"
                problems.append(f"Matrix: {reason}; invite {self.user_id} to it (it joins by itself)")
                continue
            await self._refresh_encryption(client, room)
            if room in self._encrypted:
                problems.append(f"Matrix: {ENCRYPTED_PROBLEM.format(room=room)}")
        return problems


def _describe(exc: BaseException) -> str:
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def _describe_response(response: Any) -> str:
    status = getattr(getattr(response, "transport_response", None), "status", None)
    code = getattr(response, "status_code", None)
    message = getattr(response, "message", None) or "no details"
    return " ".join(str(x) for x in (status, code, message) if x)


def _transient(response: Any) -> bool:
    """An error answer that says nothing about the request itself: a rate limit, a server or
    gateway error, or an answer nio could not read."""
    status = getattr(getattr(response, "transport_response", None), "status", None)
    return (
        status is None or status == 429 or status >= 500 or getattr(response, "status_code", None) == "M_LIMIT_EXCEEDED"
    )


def _login_error(what: str, response: Any) -> Exception:
    status = getattr(getattr(response, "transport_response", None), "status", None)
    if getattr(response, "status_code", None) in (*TOKEN_ERRORS, "M_FORBIDDEN", "M_USER_DEACTIVATED") or status in (
        401,
        403,
    ):
        return LoginFailed(f"{what} was refused ({_describe_response(response)})")
    return RuntimeError(f"login failed: {_describe_response(response)}")
