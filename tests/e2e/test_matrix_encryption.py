"""Matrix as staff really use it: end-to-end encrypted rooms, against the real Synapse.

Staff are nio clients with encryption on, each with its own store (a session in Element, reduced);
what they read is what they could decrypt. What the homeserver stores is read raw with ``/messages``:
nothing from the bot may be plaintext there.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nio
import pytest
import pytest_asyncio

from adapters.matrix.endpoint import MatrixEndpoint
from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser
from tests.fakes.synapse import EncryptingClient, cross_sign, new_bot, new_user, room_timeline
from tests.harness import BridgeFactory, RunningBridge, Visitor, bridge_factory, run_sitechat, wait_until

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]

Event = dict[str, Any]
STAFF_NAME = "Sam Staff"


@pytest_asyncio.fixture(loop_scope="session")
async def make_bridge(sqlite_url: str) -> AsyncIterator[BridgeFactory]:
    async with bridge_factory(sqlite_url) as make:
        yield make


@dataclass
class EncryptedRoom:
    synapse: LocalSynapse
    bot: RegisteredUser
    staff: EncryptingClient
    room_id: str
    store: Path
    tmp: Path

    def settings(self, **matrix: Any) -> dict[str, Any]:
        return {
            "matrix_homeserver": self.synapse.base_url,
            "matrix_user_id": self.bot.user_id,
            "matrix_password": self.bot.password,
            "matrix_store_path": str(self.store),
            # no reminders in the thread while a test counts the bot's events
            "first_response_alert_seconds": 3600,
            "site": {"matrix_room": self.room_id, "topics": {}},
            **matrix,
        }

    def bridged(self, event: Event) -> bool:
        return bool(event["type"] == "m.room.message" and event["sender"] == self.bot.user_id)

    async def root(self, reader: EncryptingClient | None = None, visitor: str = "Ann") -> Event:
        return await (reader or self.staff).wait_for(
            lambda e: (
                self.bridged(e)
                and "m.relates_to" not in e["content"]
                and e["content"]["body"].startswith(f"Chat from {visitor} ")
            ),
            "the thread root",
        )

    async def in_thread(
        self, root: Event, body: Callable[[str], bool], what: str, reader: EncryptingClient | None = None
    ) -> Event:
        def match(e: Event) -> bool:
            relation = e["content"].get("m.relates_to") or {}
            return (
                self.bridged(e)
                and relation.get("rel_type") == "m.thread"
                and relation.get("event_id") == root["event_id"]
                and body(e["content"]["body"])
            )

        return await (reader or self.staff).wait_for(match, what)

    async def person(self, prefix: str, name: str) -> tuple[RegisteredUser, EncryptingClient]:
        """Someone new, invited and joined, whose client has published its keys."""
        user = await new_user(self.synapse, prefix, displayname=name)
        invited = await self.staff.client.room_invite(self.room_id, user.user_id)
        assert isinstance(invited, nio.RoomInviteResponse), invited
        await self.synapse.join(user.access_token, self.room_id)
        client = EncryptingClient(self.synapse, user, self.room_id, self.tmp / f"{prefix}-store")
        await client.sync(timeout_ms=0)
        return user, client

    async def raw(self) -> list[Event]:
        return await room_timeline(self.synapse, self.staff.user.access_token, self.room_id)


@pytest_asyncio.fixture(loop_scope="session")
async def room(synapse: LocalSynapse, tmp_path: Path) -> AsyncIterator[EncryptedRoom]:
    """A fresh bot and a staff member (power 100) in an encrypted room; the staff's keys are published."""
    bot = await new_bot(synapse)
    person = await new_user(synapse, "staff", displayname=STAFF_NAME)
    await synapse.lift_ratelimit(bot.access_token, person.user_id)
    room_id = await synapse.create_room(
        bot.access_token,
        name="Website chat",
        invite=[person.user_id],
        power_users={person.user_id: 100},
        encrypted=True,
    )
    await synapse.join(person.access_token, room_id)
    staff = EncryptingClient(synapse, person, room_id, tmp_path / "staff-store")
    await staff.sync(timeout_ms=0)
    yield EncryptedRoom(synapse, bot, staff, room_id, tmp_path / "matrix-store", tmp_path)
    await staff.close()


def _endpoint(bridge: RunningBridge) -> MatrixEndpoint:
    assert bridge.runtime is not None
    endpoint = bridge.runtime.endpoints["matrix"]
    assert isinstance(endpoint, MatrixEndpoint)
    return endpoint


async def _agent_texts(visitor: Visitor) -> list[str]:
    messages = (await visitor.messages())["messages"]
    return [m["text"] for m in messages if m["author"]["role"] == "agent" and not m.get("deleted")]


def _no_plaintext_from_the_bot(raw: list[Event], bot: str) -> list[Event]:
    return [e for e in raw if e["sender"] == bot and e["type"] == "m.room.message"]


async def test_a_conversation_in_an_encrypted_room(make_bridge: BridgeFactory, room: EncryptedRoom) -> None:
    bridge = await make_bridge(**room.settings())
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann", email="ann@example.com")
        root = await room.root()
        assert "ann@example.com" in root["content"]["body"] and root["content"]["m.mentions"] == {}

        await visitor.say("Hello, is anyone there?")
        line = await room.in_thread(root, lambda b: b == "Ann: Hello, is anyone there?", "the visitor's line")
        assert line["content"]["m.relates_to"]["is_falling_back"] is True

        live = await visitor.socket(after=0)
        reply_id = await room.staff.reply(root["event_id"], "Hi Ann, how can I help?")
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
        assert frame["message"]["text"] == "Hi Ann, how can I help?"
        assert frame["message"]["author"]["name"] == STAFF_NAME

        # an edit and a redaction, encrypted and not (Element sends redactions in the clear)
        await room.staff.send(
            {
                "msgtype": "m.text",
                "body": "* Hi Ann, how may I help?",
                "m.new_content": {"msgtype": "m.text", "body": "Hi Ann, how may I help?"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": reply_id},
            }
        )
        updated = await live.wait_frame(lambda f: f["type"] == "message_updated")
        assert updated["message"]["text"] == "Hi Ann, how may I help?"
        second = await room.staff.reply(root["event_id"], "Oops, wrong chat")
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "Oops, wrong chat")
        redacted = await room.staff.client.room_redact(room.room_id, second)
        assert isinstance(redacted, nio.RoomRedactResponse), redacted
        await live.wait_frame(lambda f: f["type"] == "message_deleted")

        await room.staff.reply(root["event_id"], "// a note in an encrypted room")
        await room.staff.reply(root["event_id"], "!close")
        await live.wait_frame(lambda f: f == {"type": "status", "status": "closed"})
        transcript = await room.in_thread(root, lambda b: b.startswith("Transcript"), "the transcript")
        assert transcript["content"]["msgtype"] == "m.notice"
        assert "Ann: Hello, is anyone there?" in transcript["content"]["body"]
        assert "note in an encrypted room" not in transcript["content"]["body"]
        status, _, _ = await visitor.request(
            "POST", f"/api/v1/conversations/{visitor.conversation_id}/rating", {"score": 5, "comment": "secret praise"}
        )
        assert status == 200
        await room.in_thread(root, lambda b: "5/5" in b and "secret praise" in b, "the rating")
        await room.staff.wait_for(
            lambda e: (
                room.bridged(e)
                and e["content"].get("m.relates_to") == {"rel_type": "m.replace", "event_id": root["event_id"]}
                and "Rated 5/5" in e["content"]["m.new_content"]["body"]
            ),
            "the root edited to the rating",
        )
        await live.close()

        # as the homeserver stores it: all of the bot's events encrypted, relations outside
        raw = await room.raw()
        assert not _no_plaintext_from_the_bot(raw, room.bot.user_id)
        ours = [e for e in raw if e["sender"] == room.bot.user_id and e["type"] == "m.room.encrypted"]
        assert len(ours) >= 5
        stored_root = next(e for e in ours if e["event_id"] == root["event_id"])
        assert "m.relates_to" not in stored_root["content"]
        stored_line = next(e for e in ours if e["event_id"] == line["event_id"])
        assert stored_line["content"]["m.relates_to"]["rel_type"] == "m.thread"
        assert stored_line["content"]["m.relates_to"]["event_id"] == root["event_id"]
        for text in ("Hello, is anyone there?", "secret praise", "ann@example.com"):
            assert not [e for e in raw if text in str(e.get("content"))], text
        assert await _agent_texts(visitor) == ["Hi Ann, how may I help?"]
    finally:
        await visitor.close()


async def test_restart_keeps_the_device_and_its_keys(make_bridge: BridgeFactory, room: EncryptedRoom) -> None:
    bridge = await make_bridge(**room.settings())
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await room.root()
        await room.staff.reply(root["event_id"], "reply 1")
        await wait_until(lambda: _has(visitor, "reply 1"), 15, "reply 1 at the visitor")
        device = _endpoint(bridge).device_id
        assert device

        await bridge.stop()
        await room.staff.reply(root["event_id"], "reply 2, sent while the bridge was down")
        await bridge.start()
        assert _endpoint(bridge).device_id == device
        await wait_until(lambda: _has(visitor, "reply 2, sent while the bridge was down"), 15, "reply 2")

        await visitor.say("still there?")
        await room.in_thread(root, lambda b: b == "Ann: still there?", "a line sent after the restart")
        await room.staff.reply(root["event_id"], "reply 3")
        await wait_until(lambda: _has(visitor, "reply 3"), 15, "reply 3 at the visitor")
        assert await _agent_texts(visitor) == ["reply 1", "reply 2, sent while the bridge was down", "reply 3"]

        bot = nio.AsyncClient(room.synapse.base_url, room.bot.user_id)
        bot.restore_login(room.bot.user_id, room.bot.device_id, room.bot.access_token)
        try:
            listed = await bot.devices()
            assert isinstance(listed, nio.DevicesResponse), listed
            # the registration's device and the bridge's: no new device per start
            assert sorted(d.id for d in listed.devices) == sorted({room.bot.device_id, device})
        finally:
            await bot.close()
        assert not room.staff.undecrypted()  # staff never met "unable to decrypt"
    finally:
        await visitor.close()


async def _has(visitor: Visitor, text: str) -> bool:
    return text in await _agent_texts(visitor)


async def test_a_late_joiner_reads_what_is_sent_after_joining(make_bridge: BridgeFactory, room: EncryptedRoom) -> None:
    bridge = await make_bridge(**room.settings())
    visitor = Visitor(bridge.url)
    late: EncryptingClient | None = None
    try:
        await visitor.start(name="Ann")
        root = await room.root()
        await visitor.say("before you came")
        await room.in_thread(root, lambda b: b == "Ann: before you came", "the first line")

        user, late = await room.person("specialist", "Spec Ialist")
        client = _endpoint(bridge).client
        assert client is not None
        await wait_until(lambda: user.user_id in client.rooms[room.room_id].users, 15, "the bridge to see the join")
        await visitor.say("after you came")
        await room.in_thread(root, lambda b: b == "Ann: after you came", "the line after the join", reader=late)
        await late.reply(root["event_id"], "Specialist here")
        await wait_until(lambda: _has(visitor, "Specialist here"), 15, "the late joiner's reply at the visitor")
    finally:
        await visitor.close()
        if late is not None:
            await late.close()


async def test_a_message_the_bot_cannot_decrypt_is_told_to_the_thread(
    make_bridge: BridgeFactory, room: EncryptedRoom
) -> None:
    """The staff member's client withholds its keys from the bot's device (as a client set to send
    keys to verified sessions only does): the visitor cannot get it, and the thread says so."""
    bridge = await make_bridge(**room.settings())
    endpoint = _endpoint(bridge)
    endpoint.intake.undecryptable.wait_seconds = 1.0
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await room.root()
        await room.staff.sync(timeout_ms=0)
        bot_device = room.staff.client.device_store[room.bot.user_id][endpoint.device_id or ""]
        room.staff.client.blacklist_device(bot_device)

        await room.staff.reply(root["event_id"], "the secret plan")
        notice = await room.in_thread(root, lambda b: "could not be decrypted" in b, "the notice in the thread")
        body = notice["content"]["body"]
        assert STAFF_NAME in body and room.staff.user.user_id in body and str(endpoint.device_id) in body
        assert notice["content"]["msgtype"] == "m.notice"
        assert await _agent_texts(visitor) == []

        room.staff.client.unblacklist_device(bot_device)
        await room.staff.reply(root["event_id"], "the plan, again")
        await wait_until(lambda: _has(visitor, "the plan, again"), 15, "the message sent again")
        assert await _agent_texts(visitor) == ["the plan, again"]
    finally:
        await visitor.close()


async def test_only_cross_signed_devices_get_room_keys_when_trust_is_verified(
    make_bridge: BridgeFactory, room: EncryptedRoom
) -> None:
    verified_user, verified = await room.person("verified", "Vera Verified")
    _, unverified = await room.person("unverified", "Una Unverified")
    await cross_sign(room.synapse, verified_user, verified_user.device_id)
    bridge = await make_bridge(**room.settings(matrix_trust="verified"))
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await room.root(reader=verified)
        await visitor.say("for verified eyes")
        await room.in_thread(root, lambda b: b == "Ann: for verified eyes", "the line", reader=verified)

        await unverified.sync()
        await asyncio.sleep(0.5)
        await unverified.sync()
        assert unverified.undecrypted(), "the unverified session got nothing to decrypt"
        assert not [e for e in unverified.decrypted() if room.bridged(e)]
        assert not [e for e in room.staff.decrypted() if room.bridged(e)]  # not cross-signed either
        # what staff write still reaches the visitor: trust is about the keys the bot gives out
        await unverified.reply(root["event_id"], "I can write, not read")
        await wait_until(lambda: _has(visitor, "I can write, not read"), 15, "the reply")
    finally:
        await visitor.close()
        await verified.close()
        await unverified.close()


async def test_doctor_reports_encryption_device_and_store(
    make_bridge: BridgeFactory, room: EncryptedRoom, sqlite_url: str
) -> None:
    bridge = await make_bridge(**room.settings())
    device = _endpoint(bridge).device_id
    await bridge.stop()
    env_file = room.tmp / "doctor.env"
    env_file.write_text(
        "\n".join(
            [
                f"SITECHAT_DATABASE_URL={sqlite_url}",
                f"MATRIX_HOMESERVER={room.synapse.base_url}",
                f"MATRIX_USER_ID={room.bot.user_id}",
                f"MATRIX_PASSWORD={room.bot.password}",
                f"MATRIX_STORE_PATH={room.store}",
                "SITECHAT_SITES__ACME__NAME=Acme",
                "SITECHAT_SITES__ACME__ORIGINS=https://acme.example",
                f"SITECHAT_SITES__ACME__MATRIX_ROOM={room.room_id}",
            ]
        )
    )
    env_file.chmod(0o600)
    code, out = await run_sitechat("doctor", "--env-file", str(env_file), cwd=room.tmp)
    assert code == 0, out
    assert f"uses device {device}" in out, out
    assert f"holds the keys of device {device} (published to the homeserver" in out, out
    assert f"room {room.room_id} is end-to-end encrypted (m.megolm.v1.aes-sha2)" in out, out
    lines = out.strip().splitlines()
    # the report and nothing else: every line is the title, a finding, or the verdict
    assert all(line.startswith(("sitechat doctor", "  [", "All is well")) for line in lines), out


async def test_a_lost_store_means_a_new_device_never_new_keys_for_the_old_one(
    make_bridge: BridgeFactory, room: EncryptedRoom
) -> None:
    """Keys cannot be made again: without its store the old device is done for (staff would see its
    identity change), so the bot logs in as a new device; staff read on, the old device is left."""
    bridge = await make_bridge(**room.settings())
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await room.root()
        old = _endpoint(bridge).device_id
        # nothing in flight: a new device's txn ids cannot find what the old one sent
        await bridge.wait_idle()
        await bridge.stop()
        shutil.rmtree(room.store)  # not backed up
        await bridge.start()
        new = _endpoint(bridge).device_id
        assert new and new != old
        await visitor.say("after the store was lost")
        await room.in_thread(root, lambda b: b == "Ann: after the store was lost", "a line from the new device")
        await room.staff.reply(root["event_id"], "still here")
        await wait_until(lambda: _has(visitor, "still here"), 15, "the reply, decrypted by the new device")
        bot = nio.AsyncClient(room.synapse.base_url, room.bot.user_id)
        bot.restore_login(room.bot.user_id, room.bot.device_id, room.bot.access_token)
        try:
            listed = await bot.devices()
            assert isinstance(listed, nio.DevicesResponse), listed
            assert old not in {d.id for d in listed.devices}  # logged out: its token and keys are gone
        finally:
            await bot.close()
    finally:
        await visitor.close()


async def test_a_room_that_turns_encrypted_mid_conversation(
    synapse: LocalSynapse, tmp_path: Path, sqlite_url: str
) -> None:
    bot = await new_bot(synapse)
    person = await new_user(synapse, "staff", displayname=STAFF_NAME)
    room_id = await synapse.create_room(
        bot.access_token, name="Website chat", invite=[person.user_id], power_users={person.user_id: 100}
    )
    await synapse.join(person.access_token, room_id)
    staff = EncryptingClient(synapse, person, room_id, tmp_path / "staff-store")
    await staff.sync(timeout_ms=0)
    room = EncryptedRoom(synapse, bot, staff, room_id, tmp_path / "matrix-store", tmp_path)
    async with bridge_factory(sqlite_url) as make:
        bridge = await make(**room.settings())
        visitor = Visitor(bridge.url)
        try:
            await visitor.start(name="Ann")
            await visitor.say("in the clear")
            raw_root = await wait_until(lambda: _plain_root(room), 15, "the plain root")
            await wait_until(lambda: _raw_has(room, "Ann: in the clear"), 15, "the plain line")

            turned = await staff.client.room_put_state(
                room_id, "m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}
            )
            assert isinstance(turned, nio.RoomPutStateResponse), turned
            await wait_until(lambda: room_id in _endpoint(bridge).encrypted_rooms, 15, "the bridge to notice")
            await visitor.say("from now on encrypted")
            root = {"event_id": raw_root["event_id"]}
            await room.in_thread(root, lambda b: b == "Ann: from now on encrypted", "the encrypted line")
            assert not await _raw_has(room, "from now on encrypted")  # not in the clear anywhere
        finally:
            await visitor.close()
            await staff.close()


async def _plain_root(room: EncryptedRoom) -> Event | None:
    return next(
        (e for e in await room.raw() if room.bridged(e) and e["content"]["body"].startswith("Chat from Ann")), None
    )


async def _raw_has(room: EncryptedRoom, text: str) -> bool:
    return any(text in str(e.get("content")) for e in await room.raw())
