"""Pytest fixtures for a real Synapse homeserver on loopback (not a fake: the module lives with the
other test doubles so that conftest.py finds every test server in one place).

Fixtures (import them into conftest.py, e.g. ``from tests.fakes.synapse import synapse, synapse_bot,
synapse_staff  # noqa: F401``):

- ``synapse`` (session): a started :class:`LocalSynapse` in a temporary directory, stopped at the end.
- ``synapse_bot`` (session): an admin user ("the bot") whose rate limits are lifted.
- ``synapse_staff`` (per test): a fresh, uniquely named ordinary user.

Helpers: :func:`new_user` (a uniquely named user; pass ``admin=True`` for an admin),
:func:`new_bot` (a fresh admin with lifted rate limits, for tests that want their own bot),
:func:`synapse_venv`; for encrypted rooms :class:`EncryptingClient` (a person whose client encrypts),
:func:`room_timeline` (the raw events, as stored) and :func:`cross_sign` (verify a session).

NOTE FOR TEST MODULES (checked with pytest-asyncio 1.5.0, ``asyncio_mode = "auto"``,
``asyncio_default_fixture_loop_scope = "function"``): these fixtures live in the *session* event loop
(the subprocess and the aiohttp session belong to the loop that started Synapse), and pytest-asyncio
runs each test in a fresh function-scoped loop unless told otherwise. A module that uses them must
declare, at module level::

    import pytest

    pytestmark = pytest.mark.asyncio(loop_scope="session")

(or put ``@pytest.mark.asyncio(loop_scope="session")`` on each test or test class). Its own async
fixtures that talk to Synapse need ``@pytest_asyncio.fixture(loop_scope="session")`` (any ``scope``).
Without the mark pytest-asyncio 1.5 does *not* complain: the test runs in its own loop and its first
call into the homeserver fails with ``LocalHomeserverError: LocalSynapse used from another event
loop`` (a guard in LocalSynapse; aiohttp would otherwise fail obscurely). With the module-level mark,
plain ``def`` tests in the same module get a PytestWarning: make them ``async def``. Setting
``asyncio_default_test_loop_scope = "session"`` in pyproject.toml would make the mark unnecessary
suite-wide, but it also moves every other async test into the shared loop.

Synapse is never skipped: when its virtualenv is missing the fixture *fails*, telling you to run
``make synapse``, so CI cannot pass without the component.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import nio
import pytest
import pytest_asyncio
import vodozemac
from nio.store import SqliteStore

from adapters.matrix.trust import canonical_json
from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser

SYNAPSE_VENV_ENV = "SITECHAT_SYNAPSE_VENV"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SYNAPSE_VENV = REPO_ROOT / ".venv-synapse"


def synapse_venv() -> Path:
    """The Synapse virtualenv ($SITECHAT_SYNAPSE_VENV, else .venv-synapse at the repo root).

    Fails the test (never skips) when it is missing or has no Synapse in it."""
    raw = os.environ.get(SYNAPSE_VENV_ENV)
    venv = Path(raw) if raw else DEFAULT_SYNAPSE_VENV
    where = f"${SYNAPSE_VENV_ENV}={raw}" if raw else f"{DEFAULT_SYNAPSE_VENV} (default)"
    if not (venv / "bin" / "python").exists():
        pytest.fail(
            f"Synapse virtualenv not found at {where}: run `make synapse` (it installs matrix-synapse "
            "into .venv-synapse), or point $SITECHAT_SYNAPSE_VENV at a venv that has it",
            pytrace=False,
        )
    if not any(venv.glob("lib/python3*/site-packages/synapse/app/homeserver.py")):
        pytest.fail(
            f"{where} is a virtualenv without matrix-synapse in it: run `make synapse`",
            pytrace=False,
        )
    return venv


def unique_localpart(prefix: str) -> str:
    # Matrix localparts are lowercase; the random part keeps tests (and re-runs) from colliding.
    return f"{prefix.lower()}-{secrets.token_hex(4)}"


async def new_user(
    synapse: LocalSynapse, prefix: str, *, admin: bool = False, displayname: str | None = None
) -> RegisteredUser:
    """Register a uniquely named user (`{prefix}-{8 hex}`) with a random password."""
    return await synapse.register(
        unique_localpart(prefix), secrets.token_urlsafe(16), admin=admin, displayname=displayname
    )


async def new_bot(synapse: LocalSynapse, prefix: str = "sitechat") -> RegisteredUser:
    """A fresh admin user whose rate limits are lifted: what the bridge's bot account looks like."""
    bot = await new_user(synapse, prefix, admin=True, displayname="Sitechat")
    await synapse.lift_ratelimit(bot.access_token, bot.user_id)
    return bot


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def synapse(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSynapse]:
    hs = LocalSynapse(synapse_venv(), tmp_path_factory.mktemp("synapse"))
    await hs.start()
    try:
        yield hs
    finally:
        # A test that paused it and failed before resuming must not make the teardown hang.
        hs.resume()
        await hs.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def synapse_bot(synapse: LocalSynapse) -> RegisteredUser:
    return await new_bot(synapse)


@pytest_asyncio.fixture(loop_scope="session")
async def synapse_staff(synapse: LocalSynapse) -> RegisteredUser:
    return await new_user(synapse, "staff", displayname="Staff Member")


# -- people whose clients encrypt, as staff in Element do ---------------------------------------------

Event = dict[str, Any]


class EncryptingClient:
    """A person's Matrix client with end-to-end encryption (nio with its own store, like a session in
    Element): it decrypts what it syncs, keeps its keys moving, and encrypts what it sends.

    ``events`` holds every event of the room synced so far, oldest first: decrypted where the client
    could (``source`` is then the decrypted event), still ``m.room.encrypted`` where it could not."""

    def __init__(self, hs: LocalSynapse, user: RegisteredUser, room_id: str, store: Path) -> None:
        store.mkdir(parents=True, exist_ok=True)
        config = nio.AsyncClientConfig(encryption_enabled=True, store=SqliteStore, store_sync_tokens=True)
        self.client = nio.AsyncClient(hs.base_url, user.user_id, user.device_id, str(store), config=config)
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.user = user
        self.room_id = room_id
        self.events: list[nio.Event] = []

    async def sync(self, timeout_ms: int = 300) -> None:
        response = await self.client.sync(timeout=timeout_ms, sync_filter={"room": {"timeline": {"limit": 500}}})
        assert isinstance(response, nio.SyncResponse), response
        joined = response.rooms.join.get(self.room_id)
        if joined is not None:
            self.events.extend(joined.timeline.events)
        await self.keys()

    async def keys(self) -> None:
        """What nio's sync_forever would do between syncs: publish, query, claim, send to devices."""
        client = self.client
        if client.should_upload_keys:
            assert isinstance(await client.keys_upload(), nio.KeysUploadResponse)
        if client.should_query_keys:
            assert isinstance(await client.keys_query(), nio.KeysQueryResponse)
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()

    def decrypted(self) -> list[Event]:
        return [e.source for e in self.events if getattr(e, "decrypted", False)]

    def undecrypted(self) -> list[nio.MegolmEvent]:
        return [e for e in self.events if isinstance(e, nio.MegolmEvent)]

    async def wait_for(self, predicate: Callable[[Event], bool], what: str, timeout: float = 15.0) -> Event:
        """The first decrypted event matching ``predicate``, syncing until it is there."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = [e for e in self.decrypted() if predicate(e)]
                    if found:
                        return found[0]
                    await self.sync()
        except TimeoutError:
            raise AssertionError(f"{self.user.user_id} never read {what}") from None

    async def send(self, content: Event) -> str:
        """An encrypted ``m.room.message`` (to every device of the room: nobody verified anyone here)."""
        await self.sync(timeout_ms=0)  # the bot's device, if new, is known before the room key goes out
        response = await self.client.room_send(
            self.room_id, "m.room.message", content, tx_id=secrets.token_hex(8), ignore_unverified_devices=True
        )
        assert isinstance(response, nio.RoomSendResponse), response
        return str(response.event_id)

    async def reply(self, root: str, text: str) -> str:
        relation = {
            "rel_type": "m.thread",
            "event_id": root,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": root},
        }
        return await self.send({"msgtype": "m.text", "body": text, "m.mentions": {}, "m.relates_to": relation})

    async def close(self) -> None:
        await self.client.close()


async def room_timeline(hs: LocalSynapse, token: str, room_id: str) -> list[Event]:
    """Every event of the room as the homeserver stores it (raw, oldest first), read with ``/messages``."""
    url = f"{hs.base_url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages"
    params = {"dir": "f", "limit": "1000"}
    found: list[Event] = []
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(url, params=params, headers={"Authorization": f"Bearer {token}"}) as r:
                page = await r.json()
                assert r.status == 200, page
            found.extend(page.get("chunk", []))
            if not page.get("chunk") or "end" not in page:
                return found
            params["from"] = page["end"]


async def cross_sign(hs: LocalSynapse, user: RegisteredUser, device_id: str) -> None:
    """Give ``user`` a cross-signing identity and sign their ``device_id`` with it: what verifying a new
    session from an old one does in Element (vodozemac accounts serve as the Ed25519 key pairs)."""
    master, self_signing, user_signing = vodozemac.Account(), vodozemac.Account(), vodozemac.Account()

    def key(account: vodozemac.Account, usage: str) -> Event:
        public = account.ed25519_key.to_base64()
        return {"user_id": user.user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}

    def sign(signer: vodozemac.Account, value: Event) -> Event:
        public = signer.ed25519_key.to_base64()
        signature = signer.sign(canonical_json(value)).to_base64()
        return {**value, "signatures": {user.user_id: {f"ed25519:{public}": signature}}}

    body = {
        "master_key": key(master, "master"),
        "self_signing_key": sign(master, key(self_signing, "self_signing")),
        "user_signing_key": sign(master, key(user_signing, "user_signing")),
    }
    headers = {"Authorization": f"Bearer {user.access_token}"}
    async with aiohttp.ClientSession(base_url=hs.base_url, headers=headers) as http:
        async with http.post("/_matrix/client/v3/keys/device_signing/upload", json=body) as r:
            answer = await r.json()
        if r.status == 401:  # user-interactive auth: the password again
            auth = {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user.user_id},
                "password": user.password,
                "session": answer.get("session"),
            }
            async with http.post("/_matrix/client/v3/keys/device_signing/upload", json={**body, "auth": auth}) as r:
                answer = await r.json()
        assert r.status == 200, answer
        async with http.post("/_matrix/client/v3/keys/query", json={"device_keys": {user.user_id: [device_id]}}) as r:
            device = (await r.json())["device_keys"][user.user_id][device_id]
        device = {k: v for k, v in device.items() if k not in ("signatures", "unsigned")}
        async with http.post(
            "/_matrix/client/v3/keys/signatures/upload", json={user.user_id: {device_id: sign(self_signing, device)}}
        ) as r:
            answer = await r.json()
        assert r.status == 200 and not answer.get("failures"), answer


async def media_upload(hs: LocalSynapse, token: str, data: bytes, name: str, content_type: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{hs.base_url}/_matrix/media/v3/upload",
            params={"filename": name},
            data=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        ) as r,
    ):
        answer = await r.json()
        assert r.status == 200, answer
        return str(answer["content_uri"])
