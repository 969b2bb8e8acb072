"""A visitor and Matrix staff, end to end: a real Synapse, real nio clients, the public widget API.

Each test has its own bot, staff member and room, so tests never see each other's events. Staff act
through their own nio client; what the bridge posted is read back from the staff member's sync.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nio
import pytest
import pytest_asyncio

from adapters.matrix.endpoint import MatrixEndpoint
from adapters.matrix.format import thread_relation
from bridge.errors import DestinationUnavailable, RetryLater
from bridge.store.state import SingleInstanceLease
from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser
from tests.fakes.slack_api import FakeSlack
from tests.fakes.synapse import new_bot, new_user
from tests.harness import (
    BridgeFactory,
    RunningBridge,
    SlackAgent,
    Visitor,
    bridge_factory,
    root_of,
    wait_until,
)

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]

Event = dict[str, Any]
STAFF_NAME = "Sam Staff"


# The shared make_bridge / fake_slack fixtures run in a function-scoped event loop; the homeserver
# fixtures live in the session loop. These overrides are the same fixtures in the session loop.


@pytest_asyncio.fixture(loop_scope="session")
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as slack:
        yield slack


@pytest_asyncio.fixture(loop_scope="session")
async def make_bridge(sqlite_url: str) -> AsyncIterator[BridgeFactory]:
    async with bridge_factory(sqlite_url) as make:
        yield make


class Staff:
    """A staff member in Element, reduced to a nio client: reads the room, replies in threads."""

    def __init__(self, hs: LocalSynapse, user: RegisteredUser, room_id: str) -> None:
        self.client = nio.AsyncClient(hs.base_url, user.user_id)
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.user_id = user.user_id
        self.room_id = room_id
        #: every event of the room since the staff member joined, oldest first
        self.events: list[Event] = []

    async def sync(self, timeout_ms: int = 300) -> None:
        # a big timeline limit: a burst between two syncs must not leave a gap in what we check
        response = await self.client.sync(timeout=timeout_ms, sync_filter={"room": {"timeline": {"limit": 500}}})
        assert isinstance(response, nio.SyncResponse), response
        room = response.rooms.join.get(self.room_id)
        if room is not None:
            self.events.extend(e.source for e in room.timeline.events)

    async def wait_for(self, predicate: Callable[[Event], bool], what: str, timeout: float = 10.0) -> Event:
        """The first room event matching ``predicate``, syncing until it is there."""
        async with asyncio.timeout(timeout):
            while True:
                found = [e for e in self.events if predicate(e)]
                if found:
                    return found[0]
                await self.sync()
        raise AssertionError(f"no {what}")  # pragma: no cover - the timeout raises first

    def messages_from(self, sender: str) -> list[Event]:
        return [e for e in self.events if e["type"] == "m.room.message" and e["sender"] == sender]

    async def send(self, content: Event, event_type: str = "m.room.message") -> str:
        response = await self.client.room_send(self.room_id, event_type, content, tx_id=uuid.uuid4().hex)
        assert isinstance(response, nio.RoomSendResponse), response
        return str(response.event_id)

    async def put_state(self, event_type: str, content: Event) -> None:
        response = await self.client.room_put_state(self.room_id, event_type, content)
        assert isinstance(response, nio.RoomPutStateResponse), response

    async def reply(self, root: str, text: str) -> str:
        content = {"msgtype": "m.text", "body": text, "m.mentions": {}, "m.relates_to": thread_relation(root, root)}
        return await self.send(content)

    async def close(self) -> None:
        await self.client.close()


@dataclass
class MatrixSide:
    synapse: LocalSynapse
    bot: RegisteredUser
    staff: Staff
    room_id: str
    store: Path

    def settings(self, **site: Any) -> dict[str, Any]:
        """make_bridge overrides routing the acme site (no topics unless given) to this room."""
        return {
            "matrix_homeserver": self.synapse.base_url,
            "matrix_user_id": self.bot.user_id,
            "matrix_password": self.bot.password,
            "matrix_store_path": str(self.store),
            "site": {"matrix_room": self.room_id, "topics": {}, **site},
        }

    def bridged(self, event: Event) -> bool:
        return bool(event["type"] == "m.room.message" and event["sender"] == self.bot.user_id)

    async def root(self, visitor_name: str = "Ann") -> Event:
        return await self.staff.wait_for(
            lambda e: (
                self.bridged(e)
                and "m.relates_to" not in e["content"]
                and e["content"]["body"].startswith(f"Chat from {visitor_name} ")
            ),
            "thread root",
        )

    async def in_thread(self, root: Event, predicate: Callable[[str], bool], what: str) -> Event:
        """A bridge event in ``root``'s thread whose body matches."""

        def match(e: Event) -> bool:
            relation = e["content"].get("m.relates_to") or {}
            return (
                self.bridged(e)
                and relation.get("rel_type") == "m.thread"
                and relation.get("event_id") == root["event_id"]
                and predicate(e["content"]["body"])
            )

        return await self.staff.wait_for(match, what)


@pytest_asyncio.fixture(loop_scope="session")
async def matrix(synapse: LocalSynapse, tmp_path: Path) -> AsyncIterator[MatrixSide]:
    """A fresh bot, a staff member (power 100, so they may turn encryption on) and their room."""
    bot = await new_bot(synapse)
    person = await new_user(synapse, "staff", displayname=STAFF_NAME)
    room_id = await synapse.create_room(
        bot.access_token, name="Website chat", invite=[person.user_id], power_users={person.user_id: 100}
    )
    await synapse.join(person.access_token, room_id)
    staff = Staff(synapse, person, room_id)
    await staff.sync(timeout_ms=0)
    yield MatrixSide(synapse, bot, staff, room_id, tmp_path / "matrix-store")
    await staff.close()


def _endpoint(bridge: RunningBridge) -> MatrixEndpoint:
    assert bridge.runtime is not None
    endpoint = bridge.runtime.endpoints["matrix"]
    assert isinstance(endpoint, MatrixEndpoint)
    return endpoint


async def _agent_texts(visitor: Visitor) -> list[str]:
    return [m["text"] for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]


async def test_visitor_and_matrix_staff(make_bridge: BridgeFactory, matrix: MatrixSide) -> None:
    bridge = await make_bridge(**matrix.settings())
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann", email="ann@example.com")
        root = await matrix.root()
        body = root["content"]["body"]
        for expected in (
            "ann@example.com",
            "Acme",
            "https://acme.example/pricing",
            "Pricing",
            "https://search.example/",
            "en-GB",
            "Europe/London",
            "Status: Open",
        ):
            assert expected in body, (expected, body)
        assert root["content"]["m.mentions"] == {}

        status, _ = await visitor.say("Hello, is anyone there?")
        assert status == 201
        line = await matrix.in_thread(root, lambda b: b.startswith("Ann: "), "the visitor's line")
        assert line["content"]["body"] == "Ann: Hello, is anyone there?"
        assert line["content"]["m.mentions"] == {}
        assert line["content"]["m.relates_to"]["is_falling_back"] is True

        live = await visitor.socket(after=0)
        await matrix.staff.reply(root["event_id"], "Hi Ann, how can I help?")
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
        reply = frame["message"]
        assert reply["text"] == "Hi Ann, how can I help?"
        assert reply["author"]["name"] == STAFF_NAME

        # the staff member types: the visitor sees who (Matrix knows the room; the bridge takes the
        # thread they answered in)
        typed = await matrix.staff.client.room_typing(matrix.staff.room_id, True, timeout=10_000)
        assert isinstance(typed, nio.RoomTypingResponse), typed
        typing = await live.wait_frame(lambda f: f["type"] == "typing")
        assert typing["author"]["name"] == STAFF_NAME and typing["author"]["role"] == "agent"

        await matrix.staff.reply(root["event_id"], "// she is a VIP, be nice")
        await matrix.staff.reply(root["event_id"], "Anything else?")
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "Anything else?")
        assert await _agent_texts(visitor) == ["Hi Ann, how can I help?", "Anything else?"]

        await matrix.staff.reply(root["event_id"], "!close")
        await live.wait_frame(lambda f: f == {"type": "status", "status": "closed"})
        transcript = await matrix.in_thread(root, lambda b: b.startswith("Transcript"), "the transcript")
        text = transcript["content"]["body"]
        assert transcript["content"]["msgtype"] == "m.notice"
        assert "Ann: Hello, is anyone there?" in text and f"{STAFF_NAME}: Hi Ann" in text
        assert "VIP" not in text and "!close" not in text

        status, _, _ = await visitor.request(
            "POST", f"/api/v1/conversations/{visitor.conversation_id}/rating", {"score": 4, "comment": "great help"}
        )
        assert status == 200
        await matrix.in_thread(root, lambda b: "4/5" in b and "great help" in b, "the rating")
        # Matrix has no buttons: the root itself is edited to show the state
        edit = await matrix.staff.wait_for(
            lambda e: (
                matrix.bridged(e)
                and e["content"].get("m.relates_to") == {"rel_type": "m.replace", "event_id": root["event_id"]}
                and "Status: Rated 4/5: great help" in e["content"]["m.new_content"]["body"]
            ),
            "the root edited to the rating",
        )
        assert edit["content"]["m.mentions"] == {}
        await live.close()
    finally:
        await visitor.close()


async def test_visitor_text_arrives_inert(make_bridge: BridgeFactory, matrix: MatrixSide) -> None:
    bridge = await make_bridge(**matrix.settings())
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await matrix.root()
        await visitor.say(f"@room <b>hi</b> {STAFF_NAME} {matrix.staff.user_id}")
        line = await matrix.in_thread(root, lambda b: b.startswith("Ann: "), "the visitor's line")
        content = line["content"]
        assert content["body"] == f"Ann: @room <b>hi</b> {STAFF_NAME} {matrix.staff.user_id}"
        assert content["m.mentions"] == {}
        if "formatted_body" in content:
            assert "<b>" not in content["formatted_body"] and "&lt;b&gt;hi&lt;/b&gt;" in content["formatted_body"]
    finally:
        await visitor.close()


async def test_slack_and_matrix_mirror_each_other(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, matrix: MatrixSide
) -> None:
    bridge = await make_bridge(fake_slack, **matrix.settings(topics={}))
    visitor = Visitor(bridge.url)
    agent = SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        slack_root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the Slack root")
        assert slack_root is not None
        root = await matrix.root()

        def slack_replies() -> list[dict[str, Any]]:
            return fake_slack.replies("C0SUPPORT", slack_root["ts"])

        await visitor.say("Hello both")
        await fake_slack.wait_for(lambda: [m for m in slack_replies() if m["text"] == "Hello both"], message="line")
        await matrix.in_thread(root, lambda b: b == "Ann: Hello both", "the visitor's line in Matrix")

        live = await visitor.socket(after=0)
        status, _ = await agent.reply("C0SUPPORT", slack_root["ts"], "Hi from Slack")
        assert status == 200
        await matrix.in_thread(root, lambda b: b == "Alice: Hi from Slack", "the Slack agent's line in Matrix")
        await agent.reply("C0SUPPORT", slack_root["ts"], "// slack-only note")

        await matrix.staff.reply(root["event_id"], "Hi from Matrix")
        await matrix.staff.reply(root["event_id"], "// matrix-only note")
        posted = await fake_slack.wait_for(
            lambda: [m for m in slack_replies() if m["text"] == "Hi from Matrix"], message="the Matrix line in Slack"
        )
        assert posted[0]["username"] == STAFF_NAME
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "Hi from Matrix")

        status, _, _ = await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
        assert status == 200
        slack_transcript = await fake_slack.wait_for(
            lambda: [m for m in slack_replies() if "Transcript" in m["text"]], message="the Slack transcript"
        )
        transcript = await matrix.in_thread(root, lambda b: b.startswith("Transcript"), "the Matrix transcript")
        for text in (slack_transcript[0]["text"], transcript["content"]["body"]):
            assert (
                "Ann: Hello both" in text and "Alice: Hi from Slack" in text and f"{STAFF_NAME}: Hi from Matrix" in text
            )
            assert "only note" not in text

        assert await _agent_texts(visitor) == ["Hi from Slack", "Hi from Matrix"]  # each once
        assert not [m for m in slack_replies() if "only note" in m["text"]]
        assert not [e for e in matrix.staff.messages_from(matrix.bot.user_id) if "only note" in e["content"]["body"]]
        await live.close()
    finally:
        await agent.close()
        await visitor.close()


async def test_restart_keeps_the_device_and_misses_no_reply(make_bridge: BridgeFactory, matrix: MatrixSide) -> None:
    bridge = await make_bridge(**matrix.settings())
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await matrix.root()
        await matrix.staff.reply(root["event_id"], "reply 1")
        await wait_until(lambda: _agent_texts(visitor), what="reply 1 at the visitor")
        device = _endpoint(bridge).device_id
        assert device

        await bridge.stop()
        await matrix.staff.reply(root["event_id"], "reply 2")
        # more than one sync's timeline holds, so the first sync after the restart has a gap to backfill
        for i in range(25):
            await matrix.staff.reply(root["event_id"], f"// note {i}")
        await matrix.staff.reply(root["event_id"], "reply 3")
        await bridge.start()

        await wait_until(lambda: _has(visitor, "reply 3"), what="reply 3 at the visitor")
        assert await _agent_texts(visitor) == ["reply 1", "reply 2", "reply 3"]
        assert _endpoint(bridge).device_id == device

        bot = nio.AsyncClient(matrix.synapse.base_url, matrix.bot.user_id)
        bot.restore_login(matrix.bot.user_id, matrix.bot.device_id, matrix.bot.access_token)
        try:
            devices = await bot.devices()
            assert isinstance(devices, nio.DevicesResponse), devices
            # the registration's device and the bridge's one: no new device per start
            assert sorted(d.id for d in devices.devices) == sorted({matrix.bot.device_id, device})
        finally:
            await bot.close()
    finally:
        await visitor.close()


async def _has(visitor: Visitor, text: str) -> bool:
    return text in await _agent_texts(visitor)


async def test_reply_from_outside_the_staff_list_is_not_relayed(make_bridge: BridgeFactory, matrix: MatrixSide) -> None:
    bridge = await make_bridge(**matrix.settings(), matrix_staff=["@someone-else:localhost", ":elsewhere.example"])
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await matrix.root()
        await matrix.staff.reply(root["event_id"], "I am not on the list")
        notice = await matrix.in_thread(root, lambda b: "not on the staff list" in b, "the refusal notice")
        assert notice["content"]["body"] == (
            f"{matrix.staff.user_id} is not on the staff list (MATRIX_STAFF); the visitor did not see that"
        )
        assert await _agent_texts(visitor) == []
    finally:
        await visitor.close()


async def test_a_store_that_cannot_be_opened_keeps_encrypted_rooms_plaintext_free(
    make_bridge: BridgeFactory, matrix: MatrixSide
) -> None:
    """The one way left to refuse an encrypted room: no store for the keys. Loud, in /readyz, and
    nothing posted there in plaintext; unencrypted rooms keep working meanwhile."""
    matrix.store.write_text("a file where the store directory should be")
    bridge = await make_bridge(**matrix.settings())
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await matrix.root()
        await visitor.say("before encryption")
        await matrix.in_thread(root, lambda b: b == "Ann: before encryption", "the first line")

        async def not_ready(word: str) -> list[str]:
            status, payload, _ = await visitor.request("GET", "/readyz")
            return [p for p in payload["problems"] if word in p] if status == 503 else []

        problems = await wait_until(lambda: not_ready("MATRIX_STORE_PATH"), what="/readyz to report the store")
        assert str(matrix.store) in problems[0] and "cannot be opened" in problems[0]

        await matrix.staff.put_state("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"})
        endpoint = _endpoint(bridge)
        await wait_until(lambda: matrix.room_id in endpoint.encrypted_rooms, what="the bridge to notice encryption")
        await visitor.say("my secret address")
        await wait_until(lambda: not_ready("is end-to-end encrypted"), what="/readyz to report the room")
        assert any("encrypted" in p for p in await endpoint.check([matrix.room_id]))
        await matrix.staff.sync(timeout_ms=0)
        assert not [e for e in matrix.staff.events if "secret" in str(e.get("content"))]
    finally:
        await visitor.close()


# -- the endpoint on its own: login, invites, plain-words problems -------------------------------


class MemoryState:
    """The endpoint's StateStore without a database."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def put(self, key: str, value: str) -> None:
        self.values[key] = value

    @asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[SingleInstanceLease]:
        yield SingleInstanceLease()  # one process: always held


class NoInbox:
    async def handle(self, event: object) -> bool:
        return False

    async def typing(self, endpoint: str, thread: object, author: object) -> None:
        return None


def _bare_endpoint(
    hs: LocalSynapse, bot: RegisteredUser, room_id: str, state: MemoryState, store: Path, **kw: Any
) -> MatrixEndpoint:
    values: dict[str, Any] = dict(
        homeserver=hs.base_url,
        user_id=bot.user_id,
        password=bot.password,
        access_token=None,
        device_id=None,
        staff=[],
        rooms=[room_id],
        state=state,
        store_path=str(store),
    )
    values.update(kw)
    return MatrixEndpoint(**values)


async def test_check_says_what_is_wrong_and_invites_are_accepted(synapse: LocalSynapse, tmp_path: Path) -> None:
    bot = await new_bot(synapse)
    owner = await new_user(synapse, "owner")
    room_id = await synapse.create_room(owner.access_token, name="Not yet shared")

    wrong = _bare_endpoint(synapse, bot, room_id, MemoryState(), tmp_path, password="not the password")
    try:
        problems = await wrong.check([room_id])
    finally:
        await wrong.stop()
    assert len(problems) == 1 and "cannot log in" in problems[0] and "MATRIX_PASSWORD" in problems[0], problems

    endpoint = _bare_endpoint(synapse, bot, room_id, MemoryState(), tmp_path)
    await endpoint.start(NoInbox())
    try:
        problems = await endpoint.check([room_id])
        assert len(problems) == 1 and f"not in room {room_id}" in problems[0] and "invite" in problems[0], problems
        owner_client = nio.AsyncClient(synapse.base_url, owner.user_id)
        owner_client.restore_login(owner.user_id, owner.device_id, owner.access_token)
        try:
            invited = await owner_client.room_invite(room_id, bot.user_id)
            assert isinstance(invited, nio.RoomInviteResponse), invited
        finally:
            await owner_client.close()
        await wait_until(lambda: _no_problems(endpoint, room_id), 10, "the bot to accept the invite")
    finally:
        await endpoint.stop()


async def _no_problems(endpoint: MatrixEndpoint, room_id: str) -> bool:
    return await endpoint.check([room_id]) == []


async def test_login_is_stored_and_a_refused_token_keeps_the_device(synapse: LocalSynapse, tmp_path: Path) -> None:
    bot = await new_bot(synapse)
    room_id = await synapse.create_room(bot.access_token, name="Support")
    state = MemoryState()

    first = _bare_endpoint(synapse, bot, room_id, state, tmp_path)
    await first.start(NoInbox())
    await first.stop()
    device, token = state.values["device_id"], state.values["access_token"]
    assert first.device_id == device and state.values["next_batch"]

    again = _bare_endpoint(synapse, bot, room_id, state, tmp_path)
    await again.start(NoInbox())
    await again.stop()
    assert again.device_id == device and state.values["access_token"] == token  # restored, no new login

    # the stored token is revoked (an admin logged the session out): log in again, same device id
    gone = nio.AsyncClient(synapse.base_url, bot.user_id)
    gone.restore_login(bot.user_id, device, token)
    try:
        assert isinstance(await gone.logout(), nio.LogoutResponse)
    finally:
        await gone.close()
    third = _bare_endpoint(synapse, bot, room_id, state, tmp_path)
    await third.start(NoInbox())
    try:
        assert third.device_id == device and state.values["access_token"] != token
        assert await third.check([room_id]) == []
        # the logout took the device's published keys with it: the same ones are published again
        client = third.client
        assert client is not None and client.olm is not None
        published = await _published_keys(synapse, bot, device)
        assert published.get(f"ed25519:{device}") == client.olm.account.identity_keys["ed25519"]
    finally:
        await third.stop()


async def _published_keys(hs: LocalSynapse, user: RegisteredUser, device: str) -> dict[str, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{hs.base_url}/_matrix/client/v3/keys/query",
            json={"device_keys": {user.user_id: [device]}},
            headers={"Authorization": f"Bearer {user.access_token}"},
        ) as r,
    ):
        answer = await r.json()
    return dict(answer["device_keys"].get(user.user_id, {}).get(device, {}).get("keys", {}))


async def test_refused_sends_map_to_retry_or_pause(synapse: LocalSynapse, tmp_path: Path) -> None:
    """nio's own error responses, as the homeserver's answers become them, mapped for the workers."""
    bot = await new_bot(synapse)
    endpoint = _bare_endpoint(synapse, bot, "!room:localhost", MemoryState(), tmp_path)
    session, sender = endpoint.session, endpoint.sender
    session.joined.add("!room:localhost")

    limited = sender.refused("!room:localhost", nio.RoomSendError("slow down", "M_LIMIT_EXCEEDED", 1500), what="x")
    assert isinstance(limited, RetryLater) and limited.retry_after == 1.5 and not limited.maybe_sent
    await asyncio.wait_for(endpoint.ready("!room:localhost"), 3)  # waits out the limit, then lets the lane go

    forbidden = sender.refused("!room:localhost", nio.RoomSendError("not in room", "M_FORBIDDEN"), what="x")
    assert isinstance(forbidden, DestinationUnavailable) and "invite" in forbidden.reason
    assert "!room:localhost" not in session.joined  # the next attempt tries to join again

    unreadable = sender.refused("!room:localhost", nio.RoomSendError("unknown error"), what="x")
    assert isinstance(unreadable, RetryLater) and unreadable.maybe_sent

    session.logged_in = True
    expired = sender.refused("!room:localhost", nio.RoomSendError("gone", "M_UNKNOWN_TOKEN"), what="x")
    assert isinstance(expired, RetryLater) and not session.logged_in  # the sync loop logs in again
