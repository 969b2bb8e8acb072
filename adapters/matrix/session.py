"""The bot's presence on the homeserver: its nio client, its login, the rooms it is in and which of
them are encrypted. Shared by the sync loop (inbound) and the sender (outbound).

The device must survive restarts: every send carries a transaction id derived from the delivery id,
and only the same device with the same txn id gets the same event back (a resend after a crash is
then a no-op). So a password login is stored and restored, not redone; a refused stored token is
replaced by a new password login that names the same device.

Plain nio cannot encrypt and would post plaintext into an encrypted room; such rooms are refused
and reported until someone points MATRIX_ROOM at an unencrypted one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence

import nio

from adapters.matrix.responses import TOKEN_ERRORS, LoginFailed, describe, describe_response, login_error
from bridge.endpoint import StateStore

log = logging.getLogger(__name__)

ENCRYPTED_PROBLEM = (
    "room {room} is end-to-end encrypted; the bridge cannot encrypt, so it posts nothing there "
    "(encryption cannot be turned off: create an unencrypted room and set MATRIX_ROOM to it)"
)


class MatrixSession:
    def __init__(
        self,
        *,
        homeserver: str,
        user_id: str,
        password: str | None,
        access_token: str | None,
        device_id: str | None,
        rooms: Sequence[str],
        state: StateStore,
    ) -> None:
        self.homeserver = homeserver.rstrip("/")
        self.user_id = user_id
        self._password = password
        self._access_token = access_token
        self._configured_device = device_id
        #: the rooms the bridge is configured to serve (it accepts invites to these only)
        self.rooms = frozenset(rooms)
        self._state = state
        self.client: nio.AsyncClient | None = None
        self.device_id: str | None = None
        #: True between a login that worked and a refused token (which makes the sync loop log in again)
        self.logged_in = False
        #: how many logins worked so far: after each, nio knows no room state until a full sync
        self.logins = 0
        #: why the homeserver refused the login, until a login works again
        self.login_problem: str | None = None
        self._login_lock = asyncio.Lock()
        #: distinguishes our txn ids from those of another database on the same device
        self.txn_salt = ""
        #: rooms the bot is in, as far as it knows; updated by syncs, joins and refused sends
        self.joined: set[str] = set()
        self._encrypted: set[str] = set()
        self._join_problems: dict[str, str] = {}

    @property
    def fixed_token(self) -> bool:
        """Logged in with a configured MATRIX_ACCESS_TOKEN: the bridge cannot renew it by itself."""
        return bool(self._access_token)

    @property
    def encrypted(self) -> frozenset[str]:
        return frozenset(self._encrypted)

    def is_encrypted(self, room: str) -> bool:
        return room in self._encrypted

    def open(self) -> nio.AsyncClient:
        """The client, created on first use (start() and check() may each come first)."""
        if self.client is None:
            config = nio.AsyncClientConfig(
                # nio would otherwise sleep and retry inside a send: a 429 forever, a timeout with
                # backoff. The delivery workers own retries (and honour Retry-After), so fail at once.
                max_limit_exceeded=0,
                max_timeouts=0,
                request_timeout=30,
                encryption_enabled=False,
                store_sync_tokens=False,
            )
            self.client = nio.AsyncClient(self.homeserver, self.user_id, config=config)
        return self.client

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()  # else aiohttp warns about an unclosed session
            self.client = None
        self.logged_in = False

    def token_refused(self) -> None:
        """The homeserver no longer takes our token: the sync loop logs in again (same device)."""
        self.logged_in = False

    # -- login ----------------------------------------------------------------------------------

    async def ensure_logged_in(self) -> None:
        async with self._login_lock:
            if self.logged_in:
                return
            client = self.client
            assert client is not None
            try:
                await self._log_in(client)
            except LoginFailed as exc:
                self.login_problem = f"cannot log in as {self.user_id} on {self.homeserver}: {exc}"
                raise
            self.login_problem = None
            salt = await self._state.get("txn_salt")
            if salt is None:
                salt = secrets.token_hex(4)
                await self._state.put("txn_salt", salt)
            self.txn_salt = salt
            await self._enter_rooms(client)
            self.logged_in = True
            self.logins += 1

    async def _log_in(self, client: nio.AsyncClient) -> None:
        if self._access_token:
            client.restore_login(self.user_id, self._configured_device or "", self._access_token)
            who = await client.whoami()
            if not isinstance(who, nio.WhoamiResponse):
                raise login_error("MATRIX_ACCESS_TOKEN", who)
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
                raise login_error("the stored login", who)
            log.warning("Matrix: the stored access token was refused; logging in again on device %s", stored_device)
            client.access_token = ""
            client.device_id = stored_device  # a password login naming the device keeps it
        else:
            client.device_id = self._configured_device or ""
        response = await client.login(self._password, device_name="sitechat-bridge")
        if not isinstance(response, nio.LoginResponse):
            raise login_error("MATRIX_PASSWORD", response)
        await self._state.put("user_id", self.user_id)
        await self._state.put("device_id", response.device_id)
        await self._state.put("access_token", response.access_token)
        self.device_id = response.device_id
        log.info("Matrix: logged in as %s, device %s (kept for later starts)", self.user_id, response.device_id)

    # -- rooms ----------------------------------------------------------------------------------

    async def _enter_rooms(self, client: nio.AsyncClient) -> None:
        joined = await client.joined_rooms()
        if not isinstance(joined, nio.JoinedRoomsResponse):
            raise RuntimeError(f"joined_rooms failed: {describe_response(joined)}")
        self.joined = set(joined.rooms)
        for room in sorted(self.rooms - self.joined):
            await self.join(room)
        for room in sorted(self.rooms & self.joined):
            await self.refresh_encryption(room)

    async def join(self, room: str) -> bool:
        """Join a configured room (at login, or on an invite); a refusal is kept as a problem."""
        assert self.client is not None
        response = await self.client.join(room)
        if isinstance(response, nio.JoinResponse):
            self.joined.add(room)
            self._join_problems.pop(room, None)
            log.info("Matrix: joined %s", room)
            return True
        problem = f"the bot {self.user_id} is not in room {room} and cannot join it ({describe_response(response)})"
        if self._join_problems.get(room) != problem:
            log.warning("Matrix: %s; invite it to the room (it accepts invites to configured rooms)", problem)
        self._join_problems[room] = problem
        return False

    async def refresh_encryption(self, room: str) -> None:
        assert self.client is not None
        response = await self.client.room_get_state_event(room, "m.room.encryption")
        if isinstance(response, nio.RoomGetStateEventResponse) and response.content.get("algorithm"):
            self.mark_encrypted(room)

    def mark_encrypted(self, room: str) -> None:
        if room not in self._encrypted:
            self._encrypted.add(room)
            # loud on purpose: staff in that room see no visitor until someone acts
            log.error("Matrix: REFUSING TO BRIDGE: %s", ENCRYPTED_PROBLEM.format(room=room))

    # -- health ---------------------------------------------------------------------------------

    def known_problems(self) -> list[str]:
        """What the session already knows is wrong, without asking the homeserver (cheap enough
        for a readiness probe): a refused login, rooms it cannot join, encrypted rooms."""
        problems = [f"Matrix: {self.login_problem}"] if self.login_problem else []
        problems += [f"Matrix: {problem}" for problem in self._join_problems.values()]
        problems += [f"Matrix: {ENCRYPTED_PROBLEM.format(room=room)}" for room in sorted(self._encrypted)]
        return problems

    async def check(self, destinations: Sequence[str]) -> list[str]:
        client = self.open()
        try:
            await self.ensure_logged_in()
        except LoginFailed:
            return [f"Matrix: {self.login_problem}; check MATRIX_PASSWORD / MATRIX_ACCESS_TOKEN"]
        except Exception as exc:
            return [f"Matrix: {self.homeserver} cannot be reached ({describe(exc)}); check MATRIX_HOMESERVER"]
        try:
            return await self._check_rooms(client, destinations)
        except Exception as exc:
            return [f"Matrix: {self.homeserver} stopped answering ({describe(exc)})"]

    async def _check_rooms(self, client: nio.AsyncClient, destinations: Sequence[str]) -> list[str]:
        who = await client.whoami()
        if not isinstance(who, nio.WhoamiResponse):
            return [f"Matrix: the bot's login no longer works ({describe_response(who)})"]
        joined = await client.joined_rooms()
        if not isinstance(joined, nio.JoinedRoomsResponse):
            return [f"Matrix: cannot list the bot's rooms ({describe_response(joined)})"]
        problems = []
        for room in destinations:
            if room not in joined.rooms:
                reason = self._join_problems.get(room) or f"the bot {self.user_id} is not in room {room}"
                problems.append(f"Matrix: {reason}; invite {self.user_id} to it (it joins by itself)")
                continue
            await self.refresh_encryption(room)
            if room in self._encrypted:
                problems.append(f"Matrix: {ENCRYPTED_PROBLEM.format(room=room)}")
        return problems
