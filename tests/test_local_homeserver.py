"""Self-tests of the loopback Synapse used by `sitechat demo` and by the Matrix tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import nio
import pytest

from sitechat.demo.local_homeserver import LocalHomeserverError, LocalSynapse, MatrixHTTPError, RegisteredUser
from tests.fakes.synapse import (  # noqa: F401 - fixtures
    new_user,
    synapse,
    synapse_bot,
    synapse_staff,
    synapse_venv,
    unique_localpart,
)

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]


async def _nio_client(hs: LocalSynapse, user_id: str, device_id: str, token: str) -> nio.AsyncClient:
    client = nio.AsyncClient(hs.base_url, user_id)
    client.restore_login(user_id, device_id, token)
    return client


async def _wait_for_event(client: nio.AsyncClient, room_id: str, event_id: str) -> nio.Event:
    """Long-poll /sync until `event_id` shows up in `room_id` (the caller bounds the time)."""
    while True:
        resp = await client.sync(timeout=1000)
        assert isinstance(resp, nio.SyncResponse), resp
        room = resp.rooms.join.get(room_id)
        for event in room.timeline.events if room else ():
            if event.event_id == event_id:
                return event


async def test_thread_reply_from_staff_reaches_the_bot(
    synapse: LocalSynapse,  # noqa: F811
    synapse_bot: RegisteredUser,  # noqa: F811
    synapse_staff: RegisteredUser,  # noqa: F811
) -> None:
    bot, staff = synapse_bot, synapse_staff
    room_id = await synapse.create_room(
        bot.access_token,
        name="Support",
        topic="visitors",
        invite=[staff.user_id],
        # Naming the creator too must not trip Synapse's room-v12 check.
        power_users={staff.user_id: 50, bot.user_id: 100},
    )
    assert await synapse.join(staff.access_token, room_id) == room_id
    root = await synapse.send_text(bot.access_token, room_id, "Ann (ann@example.org) on /pricing")

    bot_client = await _nio_client(synapse, bot.user_id, bot.device_id, bot.access_token)
    staff_client = await _nio_client(synapse, staff.user_id, staff.device_id, staff.access_token)
    try:
        first = await bot_client.sync(timeout=0)  # from here on, only new events
        assert isinstance(first, nio.SyncResponse), first
        assert room_id in first.rooms.join
        assert not bot_client.rooms[room_id].encrypted  # the bridge cannot encrypt

        sent = await staff_client.room_send(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "Hi Ann, how can I help?",
                "m.mentions": {},
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": root,
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": root},
                },
            },
            tx_id="reply-1",
        )
        assert isinstance(sent, nio.RoomSendResponse), sent

        event = await asyncio.wait_for(_wait_for_event(bot_client, room_id, sent.event_id), 15)
        assert isinstance(event, nio.RoomMessageText)
        assert event.sender == staff.user_id
        assert event.body == "Hi Ann, how can I help?"
        relation = event.source["content"]["m.relates_to"]
        assert relation["rel_type"] == "m.thread" and relation["event_id"] == root

        # send_text's own thread replies look the same to a client.
        mine = await synapse.send_text(staff.access_token, room_id, "second", thread_root=root)
        event = await asyncio.wait_for(_wait_for_event(bot_client, room_id, mine), 15)
        assert event.source["content"]["m.relates_to"]["rel_type"] == "m.thread"
    finally:
        await bot_client.close()
        await staff_client.close()


async def test_register_twice_logs_in(synapse: LocalSynapse) -> None:  # noqa: F811
    localpart = unique_localpart("twice")
    first = await synapse.register(localpart, "s3cret", displayname="Twice")
    again = await synapse.register(localpart, "s3cret")
    assert again.user_id == first.user_id == f"@{localpart}:localhost"
    assert again.device_id != first.device_id
    assert await synapse.whoami(again.access_token) == first.user_id
    with pytest.raises(MatrixHTTPError) as info:
        await synapse.register(localpart, "wrong password")
    assert info.value.status == 403


async def test_pause_resume_and_restart_keep_users_and_port(
    synapse: LocalSynapse,  # noqa: F811
    synapse_bot: RegisteredUser,  # noqa: F811
) -> None:
    user = await new_user(synapse, "survivor")
    base_url, port = synapse.base_url, synapse.port

    async with aiohttp.ClientSession() as http:
        with synapse.paused():
            with pytest.raises(TimeoutError):
                async with http.get(f"{base_url}/_matrix/client/versions", timeout=aiohttp.ClientTimeout(total=0.3)):
                    pass
        async with http.get(f"{base_url}/_matrix/client/versions") as resp:
            assert resp.status == 200

    started = time.monotonic()
    await synapse.restart()
    assert synapse.base_url == base_url and synapse.port == port
    assert time.monotonic() - started < 30

    again = await synapse.login(user.user_id, user.password)
    assert again.user_id == user.user_id
    # Old tokens survive too: the session's bot keeps working for later tests.
    assert await synapse.whoami(synapse_bot.access_token) == synapse_bot.user_id
    assert await synapse.whoami(user.access_token) == user.user_id


async def test_workdir_is_reused_across_instances(tmp_path: Path) -> None:
    venv = synapse_venv()
    async with LocalSynapse(venv, tmp_path) as hs:
        user = await hs.register("demo-staff", "pw", displayname="Demo Staff")
        port = hs.port
        # One homeserver per workdir: a second one would share the SQLite file.
        with pytest.raises(LocalHomeserverError, match="another homeserver"):
            await LocalSynapse(venv, tmp_path).start()

    async with LocalSynapse(venv, tmp_path) as hs:
        assert hs.port == port  # the saved port is kept when free
        again = await hs.register("demo-staff", "pw")  # re-run of the demo
        assert again.user_id == user.user_id

    with pytest.raises(LocalHomeserverError, match="server_name"):
        await LocalSynapse(venv, tmp_path, server_name="example.org").start()


async def test_start_failure_shows_the_log(tmp_path: Path) -> None:
    hs = LocalSynapse(synapse_venv(), tmp_path, extra_config={"database": {"name": "nonsense"}})
    with pytest.raises(LocalHomeserverError, match=r"exited with code .*last lines"):
        await hs.start(timeout=30)
    assert not hs.running


async def test_missing_venv_fails_not_skips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SITECHAT_SYNAPSE_VENV", str(tmp_path / "nowhere"))
    with pytest.raises(pytest.fail.Exception, match="make synapse"):
        synapse_venv()
