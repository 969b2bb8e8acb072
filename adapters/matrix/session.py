"""The bot's presence on the homeserver: its nio client, its login and device, its encryption store,
the rooms it is in and which of them are encrypted. Shared by the sync loop (inbound) and the sender
(outbound); ``health.py`` reports on it.

The device must survive restarts (``login.py``): the txn ids of resends and the encryption keys both
belong to it. The encryption store is opened after the login, for that device, only by the instance
that runs the session (``use_encryption``): ``sitechat doctor`` logs in with a plain client and only
reads the store. When the store cannot be opened, the bridge keeps working in unencrypted rooms and
refuses encrypted ones — loudly, and /readyz says why — rather than post plaintext into them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from collections.abc import Sequence

import nio
from nio.store import SqliteStore

from adapters.matrix.crypto import Encryption, StoreUnusable
from adapters.matrix.login import Credentials, log_in, log_in_as_new_device
from adapters.matrix.responses import LoginFailed, describe, describe_response
from adapters.matrix.trust import Trust
from bridge.endpoint import StateStore

log = logging.getLogger(__name__)


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
        store_path: str,
        trust: Trust = Trust.MEMBERS,
    ) -> None:
        self.homeserver = homeserver.rstrip("/")
        self.user_id = user_id
        self.credentials = Credentials(user_id, password, access_token, device_id)
        #: the rooms the bridge is configured to serve (it accepts invites to these only)
        self.rooms = frozenset(rooms)
        self.state = state
        self.encryption = Encryption(store_path, trust)
        #: open the encryption store at login: only where the session runs (never in doctor)
        self.use_encryption = False
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
        self.join_problems: dict[str, str] = {}

    @property
    def fixed_token(self) -> bool:
        """Logged in with a configured MATRIX_ACCESS_TOKEN: the bridge cannot renew it by itself."""
        return bool(self.credentials.access_token)

    @property
    def encrypted(self) -> frozenset[str]:
        return frozenset(self._encrypted)

    @property
    def can_encrypt(self) -> bool:
        return Encryption.loaded(self.client)

    def refusal(self, room: str) -> str | None:
        """Why nothing may be posted into ``room`` now: it is encrypted and the bot cannot encrypt."""
        if room not in self._encrypted or self.can_encrypt:
            return None
        why = self.encryption.problem or "the encryption store is not open yet"
        return f"room {room} is end-to-end encrypted and {why}"

    def open(self) -> nio.AsyncClient:
        """The client, created on first use (start() and check() may each come first)."""
        if self.client is None:
            config = nio.AsyncClientConfig(
                # nio would otherwise sleep and retry inside a send: a 429 forever, a timeout with
                # backoff. The delivery workers own retries (and honour Retry-After), so fail at once.
                max_limit_exceeded=0,
                max_timeouts=0,
                request_timeout=30,
                encryption_enabled=True,
                # one SQLite file per device, trust included (no plaintext trust files beside it)
                store=SqliteStore,
                store_sync_tokens=False,
            )
            # no store path yet: the store is opened after the login, for the device it gave
            self.client = nio.AsyncClient(self.homeserver, self.user_id, store_path="", config=config)
        return self.client

    async def close(self) -> None:
        if self.client is not None:
            self.encryption.close(self.client)
            await self.client.close()  # else aiohttp warns about an unclosed session
            self.client = None
        self.logged_in = False

    async def current_token(self) -> str | None:
        """The bot's access token, on any instance (media can be read where the session does not run)."""
        if self.client is not None and self.logged_in and self.client.access_token:
            return str(self.client.access_token)
        return self.credentials.access_token or await self.state.get("access_token")

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
                self.device_id = await log_in(client, self.state, self.credentials)
            except LoginFailed as exc:
                self.login_problem = f"cannot log in as {self.user_id} on {self.homeserver}: {exc}"
                raise
            self.login_problem = None
            if self.use_encryption:
                await self._open_store(client)
            salt = await self.state.get("txn_salt")
            if salt is None:
                salt = secrets.token_hex(4)
                await self.state.put("txn_salt", salt)
            self.txn_salt = salt
            await self._enter_rooms(client)
            self.logged_in = True
            self.logins += 1

    async def _open_store(self, client: nio.AsyncClient) -> None:
        """Open the store for the device (at each login: a new login of the same device keeps it open).

        Whether the homeserver still has the device's keys decides the rest: keys there but not in
        the store — a lost store — cannot be made again (a new device then); keys in the store but
        no longer there — the device was logged out and has just been logged in again under its old
        id — are published again."""
        assert self.device_id is not None
        encryption = self.encryption
        try:
            on_server = await encryption.device_keys_on_server(client, self.user_id, self.device_id)
            if not self.can_encrypt:
                held = encryption.stored_keys(self.user_id, self.device_id)
                if (held is None or not held.account) and on_server:
                    await self._replace_device(client)
                    on_server = False
                encryption.load(client)
            assert client.olm is not None
            if client.olm.account.shared and not on_server:
                log.info(
                    "Matrix: device %s lost its published keys (logged out?); publishing them again", self.device_id
                )
                client.olm.account.shared = False
        except StoreUnusable as exc:
            encryption.problem = str(exc)
        except (OSError, sqlite3.Error) as exc:
            encryption.problem = (
                f"the encryption store MATRIX_STORE_PATH={encryption.store_path} cannot be read ({describe(exc)}); "
                "the bridge posts nothing into encrypted rooms until it can (fix it, then restart sitechat)"
            )
        if encryption.problem is not None:
            log.error("Matrix: %s", encryption.problem)  # loud: staff in encrypted rooms see no visitor
            return
        await encryption.maintain(client)  # publish the device's keys before anyone needs them

    async def _replace_device(self, client: nio.AsyncClient) -> None:
        """The homeserver knows keys for our device that the store does not hold (a lost or swapped
        store): those keys cannot be made again, so the bot starts over on a new device."""
        lost = f"MATRIX_STORE_PATH={self.encryption.store_path} holds no keys for device {self.device_id}, which used "
        if self.fixed_token:
            raise StoreUnusable(
                lost + "encryption before: restore the store from its backup, or create a new access token (a new "
                "device) for MATRIX_ACCESS_TOKEN and MATRIX_DEVICE_ID"
            )
        log.warning("Matrix: %sencryption before (store lost?); logging in on a new device", lost)
        self.device_id = await log_in_as_new_device(client, self.state, self.credentials)

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
            self.join_problems.pop(room, None)
            log.info("Matrix: joined %s", room)
            return True
        problem = f"the bot {self.user_id} is not in room {room} and cannot join it ({describe_response(response)})"
        if self.join_problems.get(room) != problem:
            log.warning("Matrix: %s; invite it to the room (it accepts invites to configured rooms)", problem)
        self.join_problems[room] = problem
        return False

    async def encryption_of(self, room: str) -> str | None:
        """The room's encryption algorithm, None when it is not encrypted (asked of the homeserver)."""
        assert self.client is not None
        response = await self.client.room_get_state_event(room, "m.room.encryption")
        if isinstance(response, nio.RoomGetStateEventResponse):
            algorithm = response.content.get("algorithm")
            return str(algorithm) if algorithm else None
        if getattr(response, "status_code", None) == "M_NOT_FOUND":
            return None
        raise RuntimeError(f"cannot read the encryption of {room} ({describe_response(response)})")

    async def refresh_encryption(self, room: str) -> None:
        try:
            if await self.encryption_of(room):
                self.mark_encrypted(room)
        except RuntimeError as exc:
            log.warning("Matrix: %s", exc)

    def mark_encrypted(self, room: str) -> None:
        if room in self._encrypted:
            return
        self._encrypted.add(room)
        if self.use_encryption and not self.can_encrypt:
            # loud on purpose: staff in that room see no visitor until someone acts
            log.error("Matrix: REFUSING TO BRIDGE: %s", self.refusal(room))
        else:
            log.info("Matrix: room %s is end-to-end encrypted: the bridge encrypts what it posts there", room)
