"""End-to-end encryption for the bot: matrix-nio's Olm/Megolm machine on a store of its own
(``MATRIX_STORE_PATH``), the key traffic nio leaves to its caller, and who gets the room keys.

nio encrypts in ``room_send`` when it knows the room is encrypted and decrypts timeline events as a
sync arrives; what it leaves to the caller (its ``sync_forever`` would do it, the bridge runs its own
sync loop) is :meth:`Encryption.maintain`: publishing one-time keys, querying the devices of the
rooms' members, claiming keys for new Olm sessions and sending queued to-device messages (key
requests among them). Before a send, :meth:`Encryption.prepare_room` makes the trust decision of
``MATRIX_TRUST`` for every device of the room's members, so nio shares the room key with exactly
those (and never refuses a send over an "unverified device").

The store's private keys are sealed with a passphrase of its own, kept beside it (``pickle_key.py``).
The store is loaded only after the login (the client is built with no store path), so a store that
lost a known device's keys is noticed first (see ``session.py``) instead of nio quietly making a new
identity for the old device id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any

import nio

from adapters.matrix.crypto_store import StoredKeys, prepare_directory, read_stored_keys
from adapters.matrix.pickle_key import store_pickle_key
from adapters.matrix.responses import describe, describe_response
from adapters.matrix.trust import Trust, cross_signed_devices

log = logging.getLogger(__name__)


class StoreUnusable(Exception):
    """The encryption store cannot be opened: the bridge posts nothing into encrypted rooms."""


class Encryption:
    def __init__(self, store_path: str, trust: Trust) -> None:
        self.store_path = store_path
        self.trust = trust
        #: why the bridge cannot encrypt (shown by /readyz), until a login opens the store again
        self.problem: str | None = None
        self._maintaining = asyncio.Lock()
        #: counts the device queries: one may bring a new cross-signature (a new trust decision)
        self._queries = 0
        #: the devices of each room's last trust decision, and the query count it was made at
        self._decided: dict[str, tuple[frozenset[tuple[str, str]], int]] = {}

    @staticmethod
    def loaded(client: nio.AsyncClient | None) -> bool:
        return client is not None and client.olm is not None

    def stored_keys(self, user_id: str, device_id: str) -> StoredKeys | None:
        """What the store holds for the device (read-only); None when it has nothing for it."""
        return read_stored_keys(self.store_path, user_id, device_id)

    # -- opening ----------------------------------------------------------------------------------

    def load(self, client: nio.AsyncClient) -> None:
        """Open the store for the client's (logged-in) device; nio creates the identity if it is new."""
        if client.olm is not None:
            return
        try:
            prepare_directory(self.store_path)
            # never nio's public default passphrase: one of the store's own (pickle_key.py)
            key = store_pickle_key(self.store_path, client.user_id, client.device_id)
            client.config = dataclasses.replace(client.config, pickle_key=key)
            client.store_path = self.store_path
            client.load_store()
        except Exception as exc:
            client.store_path = ""
            client.store = None
            client.olm = None
            raise StoreUnusable(
                f"the encryption store MATRIX_STORE_PATH={self.store_path} cannot be opened ({describe(exc)}); "
                "the bridge posts nothing into encrypted rooms until it can (fix it, then restart sitechat)"
            ) from exc
        self.problem = None
        log.info("Matrix: encryption store %s open for device %s", self.store_path, client.device_id)

    async def device_keys_on_server(self, client: nio.AsyncClient, user_id: str, device_id: str) -> bool:
        """Whether the homeserver has published identity keys for the device (a device that has been
        used with encryption before: its keys cannot be made up anew)."""
        answer = await _keys_query(client, [user_id])
        return bool((answer.get("device_keys") or {}).get(user_id, {}).get(device_id))

    def close(self, client: nio.AsyncClient | None) -> None:
        self._decided.clear()
        store = client.store if client is not None else None
        if store is not None:
            store.database.close()

    # -- keeping the keys moving ------------------------------------------------------------------

    async def maintain(self, client: nio.AsyncClient) -> None:
        """After a sync (and at login): what nio queued or asks for, sent now. Failures are logged and
        tried again after the next sync; none of them stops the sync loop."""
        if client.olm is None:
            return
        async with self._maintaining:
            if client.outgoing_to_device_messages:
                for sent in await client.send_to_device_messages():
                    if not isinstance(sent, nio.ToDeviceResponse):
                        log.warning("Matrix: a to-device message was refused (%s)", describe_response(sent))
            if client.should_upload_keys:
                self._logged(await client.keys_upload(), nio.KeysUploadResponse, "publish its keys")
            if client.should_query_keys:
                self._queries += 1
                self._logged(await client.keys_query(), nio.KeysQueryResponse, "query devices")
            if client.should_claim_keys:
                users = client.get_users_for_key_claiming()
                self._logged(await client.keys_claim(users), nio.KeysClaimResponse, "claim one-time keys")

    @staticmethod
    def _logged(response: Any, ok: type, what: str) -> None:
        if not isinstance(response, ok):
            log.warning("Matrix: could not %s (%s); tried again after the next sync", what, describe_response(response))

    async def prepare_room(self, client: nio.AsyncClient, room_id: str) -> None:
        """Before a send into an encrypted room: its members and their devices known, each device
        trusted or not as ``MATRIX_TRUST`` says. nio then shares a new room key with the trusted ones
        whenever the decision (or the membership) changed."""
        room = client.rooms.get(room_id)
        if client.olm is None or room is None or not room.encrypted:
            return
        if not room.members_synced:
            members = await client.joined_members(room_id)
            if not isinstance(members, nio.JoinedMembersResponse):
                raise RuntimeError(f"cannot list the members of {room_id} ({describe_response(members)})")
        if client.should_query_keys:
            await self.maintain(client)
        devices = [
            device
            for user_id in room.users
            for device in client.device_store.active_user_devices(user_id)
            if not (user_id == client.user_id and device.id == client.device_id)
        ]
        known = frozenset((d.user_id, d.id) for d in devices)
        if self._decided.get(room_id) != (known, self._queries):
            await self._decide(client, devices, known)
            self._decided[room_id] = (known, self._queries)
        await self._share(client, room_id, devices)

    async def _decide(self, client: nio.AsyncClient, devices: list[Any], known: frozenset[tuple[str, str]]) -> None:
        if self.trust is Trust.MEMBERS:
            trusted = set(known)  # pinned on first use: nio ignores a changed key for a known device id
        else:
            trusted = cross_signed_devices(await _keys_query(client, sorted({u for u, _ in known}))) if known else set()
        for device in devices:
            if (device.user_id, device.id) in trusted:
                if not device.verified:
                    client.verify_device(device)  # also takes it off the blacklist
            elif not device.blacklisted:
                client.blacklist_device(device)
                log.info("Matrix: no room keys for %s's device %s: not cross-signed", device.user_id, device.id)

    @staticmethod
    async def _share(client: nio.AsyncClient, room_id: str, devices: list[Any]) -> None:
        """A new room key, shared with the trusted devices before the send that needs it. nio marks
        a key shared even when some of its to-device sends failed (those devices would never read
        what follows); a key that did not reach every trusted device is dropped and tried again."""
        olm = client.olm
        assert olm is not None
        if not olm.should_share_group_session(room_id):
            return
        if room_id in client.sharing_session:  # another lane is sharing it right now
            await client.sharing_session[room_id].wait()
            return
        response = await client.share_group_session(room_id)
        reachable = {(d.user_id, d.id) for d in devices if d.verified and olm.session_store.get(d.curve25519)}
        missing = reachable - set(response.users_shared_with)
        if missing:
            client.invalidate_outbound_session(room_id)
            raise RuntimeError(f"the room key did not reach {len(missing)} device(s)")


async def _keys_query(client: nio.AsyncClient, users: list[str]) -> dict[str, Any]:
    """``POST /keys/query`` as the homeserver answers it: nio's own parse drops the cross-signing keys."""
    method, path, data = nio.Api.keys_query(client.access_token, users)
    async with asyncio.timeout(client.config.request_timeout):
        response = await client.send(method, path, data)  # the token is in the path, as nio puts it
        try:
            body = await response.read()
        finally:
            response.release()
    if response.status != 200:
        raise RuntimeError(f"keys/query answered {response.status}")
    answer = json.loads(body)
    if not isinstance(answer, dict):
        raise RuntimeError("keys/query answered no JSON object")
    return answer
