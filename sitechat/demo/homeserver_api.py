"""Provisioning a homeserver over HTTP: users (shared-secret registration), logins, rooms, messages.

Just enough of the client and admin APIs for the demo to set up its staff and room and for the tests
to act as people: plain aiohttp requests, no Matrix SDK (the bridge's own nio client is what the
tests exercise; this side must not share its mistakes).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from sitechat.demo.homeserver_errors import MatrixHTTPError


@dataclass(frozen=True)
class RegisteredUser:
    user_id: str
    access_token: str = field(repr=False)
    device_id: str
    password: str = field(repr=False)


class HomeserverAPI:
    """The requests, for a homeserver that says how to reach it: a subclass supplies
    :meth:`_connection` and :meth:`_registration_secret` (both raise while it is not running)."""

    def __init__(self) -> None:
        self._whoami_cache: dict[str, str] = {}

    def _connection(self) -> tuple[aiohttp.ClientSession, str]:
        """The HTTP session to use and the homeserver's base URL."""
        raise NotImplementedError

    def _registration_secret(self) -> str:
        raise NotImplementedError

    async def register(
        self, localpart: str, password: str, *, admin: bool = False, displayname: str | None = None
    ) -> RegisteredUser:
        """Create a user with the shared-secret admin API; log in instead if it already exists."""
        secret = self._registration_secret()
        nonce = str((await self._request("GET", "/_synapse/admin/v1/register"))["nonce"])
        mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
        mac.update(nonce.encode("utf-8"))
        mac.update(b"\x00")
        mac.update(localpart.encode("utf-8"))
        mac.update(b"\x00")
        mac.update(password.encode("utf-8"))
        mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        body: dict[str, Any] = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        if displayname is not None:
            body["displayname"] = displayname
        try:
            data = await self._request("POST", "/_synapse/admin/v1/register", json_body=body)
        except MatrixHTTPError as exc:
            if exc.errcode == "M_USER_IN_USE":
                # A re-run of the demo: the user is already there; a wrong password still fails.
                return await self.login(localpart, password)
            raise
        return RegisteredUser(
            user_id=str(data["user_id"]),
            access_token=str(data["access_token"]),
            device_id=str(data["device_id"]),
            password=password,
        )

    async def login(self, user: str, password: str, *, device_id: str | None = None) -> RegisteredUser:
        """Password login (`user` is a localpart or a full user id). Each call without `device_id`
        makes a new device."""
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
        }
        if device_id is not None:
            body["device_id"] = device_id
        data = await self._request("POST", "/_matrix/client/v3/login", json_body=body)
        return RegisteredUser(
            user_id=str(data["user_id"]),
            access_token=str(data["access_token"]),
            device_id=str(data["device_id"]),
            password=password,
        )

    async def whoami(self, token: str) -> str:
        if token not in self._whoami_cache:
            data = await self._request("GET", "/_matrix/client/v3/account/whoami", token=token)
            self._whoami_cache[token] = str(data["user_id"])
        return self._whoami_cache[token]

    async def lift_ratelimit(self, admin_token: str, user_id: str) -> None:
        """Exempt `user_id` from every rate limit (zeros mean "no limit" to Synapse)."""
        await self._request(
            "POST",
            f"/_synapse/admin/v1/users/{quote(user_id, safe='')}/override_ratelimit",
            token=admin_token,
            json_body={"messages_per_second": 0, "burst_count": 0},
        )

    async def create_room(
        self,
        token: str,
        *,
        name: str,
        invite: Iterable[str] = (),
        topic: str | None = None,
        power_users: Mapping[str, int] | None = None,
        preset: Literal["private_chat", "public_chat"] = "private_chat",
        encrypted: bool = False,
    ) -> str:
        """Create a room (end-to-end encrypted with ``encrypted``, Megolm as Element does it); its id."""
        body: dict[str, Any] = {"name": name, "preset": preset, "invite": list(invite)}
        if encrypted:
            body["initial_state"] = [
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
            ]
        if topic is not None:
            body["topic"] = topic
        if power_users:
            users = dict(power_users)
            # Room version 12 (Synapse's default) gives creators unbounded power and refuses a
            # `users` override that names them; leave the creator out instead of failing.
            users.pop(await self.whoami(token), None)
            if users:
                body["power_level_content_override"] = {"users": users}
        data = await self._request("POST", "/_matrix/client/v3/createRoom", token=token, json_body=body)
        return str(data["room_id"])

    async def join(self, token: str, room_id: str) -> str:
        data = await self._request(
            "POST", f"/_matrix/client/v3/join/{quote(room_id, safe='')}", token=token, json_body={}
        )
        return str(data["room_id"])

    async def send_text(
        self,
        token: str,
        room_id: str,
        body: str,
        *,
        thread_root: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        """Send a plain `m.text` as a person would; with `thread_root`, as an `m.thread` reply (the
        fallback reply points at `reply_to`, default the root). Returns the event id."""
        content: dict[str, Any] = {"msgtype": "m.text", "body": body, "m.mentions": {}}
        if thread_root is not None:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread_root,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": reply_to or thread_root},
            }
        txn = secrets.token_hex(12)
        data = await self._request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn}",
            token=token,
            json_body=content,
        )
        return str(data["event_id"])

    async def _request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        session, base_url = self._connection()
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        for _ in range(5):
            async with session.request(method, base_url + path, json=json_body, headers=headers) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    data = {"error": f"non-JSON answer ({resp.content_type})"}
                if resp.status == 200:
                    return data
                if resp.status == 429:
                    # Only with a caller's strict extra_config; honour the server's hint briefly.
                    retry_ms = data.get("retry_after_ms", 500)
                    await asyncio.sleep(min(float(retry_ms) / 1000 if isinstance(retry_ms, int) else 0.5, 5))
                    continue
                raise MatrixHTTPError(method, path, resp.status, data)
        raise MatrixHTTPError(method, path, 429, data)
