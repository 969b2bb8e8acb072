"""``sitechat demo --encrypted``: the demo's support room with end-to-end encryption on, kept across
runs beside the plain one, so a person can try the bridge with Element as staff use it."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sitechat.demo import add_arguments, provision
from sitechat.demo.local_homeserver import LocalSynapse

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]


async def _encryption(hs: LocalSynapse, token: str, room_id: str) -> dict[str, Any] | None:
    url = f"{hs.base_url}/_matrix/client/v3/rooms/{room_id}/state/m.room.encryption/"
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
        return dict(await r.json()) if r.status == 200 else None


async def test_the_encrypted_demo_room(synapse: LocalSynapse) -> None:
    state: dict[str, Any] = {"bot_password": secrets.token_urlsafe(16)}
    bot, encrypted_room = await provision(synapse, state, encrypted=True)
    assert await _encryption(synapse, bot.access_token, encrypted_room) == {"algorithm": "m.megolm.v1.aes-sha2"}

    again, same_room = await provision(synapse, state, encrypted=True)  # the next run finds it
    assert (again.user_id, same_room) == (bot.user_id, encrypted_room)
    _, plain_room = await provision(synapse, state, encrypted=False)  # the plain demo keeps its own room
    assert plain_room != encrypted_room and await _encryption(synapse, bot.access_token, plain_room) is None
    assert state["encrypted_room_id"] == encrypted_room and state["room_id"] == plain_room


async def test_the_demo_takes_encrypted() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--encrypted", "--port", "9000"])
    assert (args.encrypted, args.port, args.workdir) == (True, 9000, Path(".demo"))
    assert parser.parse_args([]).encrypted is False
