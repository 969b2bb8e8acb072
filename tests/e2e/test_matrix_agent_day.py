"""The agent's day in Matrix (CONTRACT §8), against a real Synapse with nio staff clients: ``!sitechat`` in the
room answered as a notice, ``!invite`` inviting and mentioning for real (the homeserver's own push rules say
who was notified), reminders calling ``@room`` only where the bot may, and a redaction of a reply from before
a restart still taking it back from the visitor."""

from __future__ import annotations

from typing import Any

import aiohttp
import nio
import pytest

from adapters.matrix.format import matrix_to, thread_relation
from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser
from tests.e2e import test_matrix_conversation as shared
from tests.e2e.test_matrix_conversation import STAFF_NAME, MatrixSide, Staff
from tests.fakes.synapse import new_user
from tests.harness import BridgeFactory, Visitor, wait_until

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]
# the Matrix conversation tests' fixtures, in the session loop
fake_slack, make_bridge, matrix = shared.fake_slack, shared.make_bridge, shared.matrix
Event = dict[str, Any]
ASKS = "asks you to join this chat."


async def _command(matrix: MatrixSide, text: str, staff: Staff | None = None) -> Event:
    """``text`` typed in the room (not in a thread) by ``staff``; the bridge's answer to it."""
    person = staff or matrix.staff
    command = await person.send({"msgtype": "m.text", "body": text, "m.mentions": {}})

    def answers(e: Event) -> bool:
        reply = (e["content"].get("m.relates_to") or {}).get("m.in_reply_to") or {}
        return matrix.bridged(e) and reply.get("event_id") == command

    return await person.wait_for(answers, f"the answer to {text}")


async def _highlights(hs: LocalSynapse, user: RegisteredUser) -> dict[str, list[Any]]:
    """The user's notifications as the homeserver's push rules made them: event id → actions."""
    async with aiohttp.ClientSession() as http:
        url = f"{hs.base_url}/_matrix/client/v3/notifications"
        async with http.get(url, headers={"Authorization": f"Bearer {user.access_token}"}) as r:
            assert r.status == 200, await r.text()
            found = await r.json()
    return {n["event"]["event_id"]: n["actions"] for n in found["notifications"]}


def _highlighted(actions: list[Any]) -> bool:
    return any(isinstance(a, dict) and a.get("set_tweak") == "highlight" and a.get("value", True) for a in actions)


async def _membership(matrix: MatrixSide, user_id: str) -> str | None:
    state = await matrix.staff.client.room_get_state_event(matrix.room_id, "m.room.member", user_id)
    return state.content.get("membership") if isinstance(state, nio.RoomGetStateEventResponse) else None


async def test_sitechat_in_the_room_is_answered_with_a_notice_for_staff_only(
    make_bridge: BridgeFactory, matrix: MatrixSide, synapse: LocalSynapse
) -> None:
    bridge = await make_bridge(**matrix.settings(), matrix_staff=[matrix.staff.user_id])
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await matrix.root()
        assert (await visitor.say("Hello?"))[0] == 201

        answer = await _command(matrix, "!sitechat open")
        content = answer["content"]
        assert content["msgtype"] == "m.notice" and content["m.mentions"] == {}
        assert "rel_type" not in content["m.relates_to"]  # in the room, not in a thread
        link = matrix_to(matrix.room_id, root["event_id"])
        head, ann, blank, sites, acme = content["body"].split("\n")
        assert (head, blank, sites, acme) == ("Open conversations: 1", "", "Sites", "Acme: online")
        assert ann.startswith("• Ann — Acme — waiting ") and ann.endswith(f" · not claimed · {link}"), ann
        assert (
            f'<a href="{link}" target="_blank" rel="noopener noreferrer nofollow">thread</a>'
            in (content["formatted_body"])
        )

        away = await _command(matrix, "!sitechat away")
        assert away["content"]["body"].startswith("Acme now shows offline in the widget until someone says back.")
        status, site, _ = await visitor.request("GET", "/api/v1/sites/acme")
        assert status == 200 and site["online"] is False
        listed = await _command(matrix, "!sitechat open")
        assert f"Acme: away (set by {STAFF_NAME}, " in listed["content"]["body"]
        back = await _command(matrix, "!SITECHAT back")
        assert back["content"]["body"].startswith("Acme is back.")
        assert (await visitor.request("GET", "/api/v1/sites/acme"))[1]["online"] is True

        stats = await _command(matrix, "!sitechat stats 7d")
        assert stats["content"]["body"].startswith("All sites, the last 7 days (since ")
        assert "Conversations: 1" in stats["content"]["body"].split("\n")
        unknown = await _command(matrix, "!sitechat frobnicate")
        problem, first, *_ = unknown["content"]["body"].split("\n")
        assert problem == "There is no !sitechat frobnicate."
        assert first.startswith("!sitechat open — the open conversations")
        assert (await _command(matrix, "!sitechat"))["content"]["body"].startswith("!sitechat open — ")

        # someone in the room but not on the staff list is told so, and learns nothing
        outsider = await new_user(synapse, "outsider", displayname="Otto")
        invited = await matrix.staff.client.room_invite(matrix.room_id, outsider.user_id)
        assert isinstance(invited, nio.RoomInviteResponse), invited
        await synapse.join(outsider.access_token, matrix.room_id)
        other = Staff(synapse, outsider, matrix.room_id)
        try:
            refused = await _command(matrix, "!sitechat open", staff=other)
            assert refused["content"]["body"] == "Only the team can use !sitechat (MATRIX_STAFF lists who may)."
        finally:
            await other.close()
        # a thread's own "!" lines are the conversation's commands, never the desk's
        await matrix.staff.reply(root["event_id"], "!sitechat open")
        await matrix.in_thread(root, lambda b: b.startswith("Commands in this thread"), "the thread's help")
    finally:
        await visitor.close()


async def test_invite_brings_people_in_mentions_them_and_their_first_reply_shows_them_joining(
    make_bridge: BridgeFactory, matrix: MatrixSide, synapse: LocalSynapse
) -> None:
    bridge = await make_bridge(**matrix.settings())  # no MATRIX_STAFF: whoever is in the room answers
    bob = await new_user(synapse, "bob", displayname="Bob Builder")
    carol = await new_user(synapse, "carol", displayname="Carol")
    assert isinstance(await matrix.staff.client.room_invite(matrix.room_id, carol.user_id), nio.RoomInviteResponse)
    await synapse.join(carol.access_token, matrix.room_id)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await matrix.root()
        assert (await visitor.say("I have a tricky question"))[0] == 201
        assert await _membership(matrix, bob.user_id) is None

        await matrix.staff.reply(root["event_id"], f"!invite {bob.user_id}")
        line = await matrix.in_thread(root, lambda b: b.startswith(bob.user_id), "the invitation")
        assert line["content"] == {
            "msgtype": "m.text",
            "body": f"{bob.user_id} {STAFF_NAME} {ASKS}",
            "format": "org.matrix.custom.html",
            "formatted_body": f'<a href="https://matrix.to/#/{bob.user_id}">Bob Builder</a> {STAFF_NAME} {ASKS}',
            "m.mentions": {"user_ids": [bob.user_id]},
            "m.relates_to": line["content"]["m.relates_to"],
        }
        assert await _membership(matrix, bob.user_id) == "invite"  # the bridge invited him to the room
        texts = [m["text"] for m in (await visitor.messages())["messages"]]
        assert texts == ["I have a tricky question"]  # for the team only

        # Carol is in the room: picked from the composer (a pill showing her name), she is mentioned, not
        # invited — and the homeserver notifies her of the line with a highlight, as of a mention
        pill = f'<a href="https://matrix.to/#/{carol.user_id}">Carol</a>'
        await matrix.staff.send(
            {
                "msgtype": "m.text",
                "body": "!invite Carol",
                "format": "org.matrix.custom.html",
                "formatted_body": f"!invite {pill}",
                "m.mentions": {},
                "m.relates_to": thread_relation(root["event_id"], root["event_id"]),
            }
        )
        mention = await matrix.in_thread(root, lambda b: b.startswith(carol.user_id), "Carol's mention")
        assert mention["content"]["m.mentions"] == {"user_ids": [carol.user_id]}
        notified = await _highlights(synapse, carol)
        assert _highlighted(notified[mention["event_id"]]), notified
        assert not [e for e in notified if e != mention["event_id"] and _highlighted(notified[e])]

        await matrix.staff.reply(root["event_id"], "!invite somebody")
        await matrix.in_thread(root, lambda b: b.startswith("Nobody to invite in “somebody”"), "who?")

        # Bob accepts and answers: the visitor sees him join, then his line
        await synapse.join(bob.access_token, matrix.room_id)
        await synapse.send_text(bob.access_token, matrix.room_id, "Hi Ann, Bob here.", thread_root=root["event_id"])
        await wait_until(lambda: _count(visitor, 3), what="Bob's line")
        messages = (await visitor.messages())["messages"]
        assert [(m["author"]["role"], m["author"]["name"], m["text"]) for m in messages] == [
            ("visitor", "Ann", "I have a tricky question"),
            ("system", "Bob Builder", "Bob Builder joined the chat"),
            ("agent", "Bob Builder", "Hi Ann, Bob here."),
        ]
    finally:
        await visitor.close()


async def _count(visitor: Visitor, n: int) -> bool:
    return len((await visitor.messages())["messages"]) >= n


@pytest.mark.parametrize("bot_may", [True, False], ids=["bot-may-notify-the-room", "bot-may-not"])
async def test_a_reminder_calls_the_room_only_where_the_bot_may(
    make_bridge: BridgeFactory, matrix: MatrixSide, synapse: LocalSynapse, bot_may: bool
) -> None:
    room, staff = matrix.room_id, matrix.staff  # created by the bot: room version 12 gives it every power
    person: RegisteredUser | None = None
    if not bot_may:
        # a room the staff member made: the bot is invited with the default power level 0, below @room's 50
        person = await new_user(synapse, "owner", displayname="Olga Owner")
        room = await synapse.create_room(person.access_token, name="Quiet chat", invite=[matrix.bot.user_id])
        staff = Staff(synapse, person, room)
    side = MatrixSide(synapse, matrix.bot, staff, room, matrix.store)
    bridge = await make_bridge(**side.settings(), first_response_alert_seconds=0.3, reminder_max=1)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await side.root()
        assert (await visitor.say("Hello?"))[0] == 201
        reminder = await side.in_thread(root, lambda b: "⏰ Ann has been waiting" in b, "the reminder")
        content = reminder["content"]
        if bot_may:
            assert content["msgtype"] == "m.text" and content["m.mentions"] == {"room": True}
            assert content["body"].startswith("@room ⏰ Ann has been waiting ")
        else:
            assert content["msgtype"] == "m.notice" and content["m.mentions"] == {}
            assert content["body"].startswith("⏰ Ann has been waiting ")
        user = person or await _staff_user(matrix)
        notified = await _highlights(synapse, user)
        assert _highlighted(notified[reminder["event_id"]]) if bot_may else reminder["event_id"] not in notified
    finally:
        await visitor.close()
        if person is not None:
            await staff.close()


async def _staff_user(matrix: MatrixSide) -> RegisteredUser:
    client = matrix.staff.client
    return RegisteredUser(client.user_id, str(client.access_token), str(client.device_id), "")


async def test_a_redaction_of_a_reply_from_before_a_restart_takes_it_back(
    make_bridge: BridgeFactory, matrix: MatrixSide
) -> None:
    bridge = await make_bridge(**matrix.settings())
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await matrix.root()
        assert (await visitor.say("Hello?"))[0] == 201
        copy = await matrix.in_thread(root, lambda b: b == "Ann: Hello?", "the visitor's line")
        reply = await matrix.staff.reply(root["event_id"], "A reply I will take back")
        await matrix.staff.reply(root["event_id"], "A reply that stays")
        await wait_until(lambda: _count(visitor, 4), what="the replies at the visitor")

        await bridge.restart()  # a new process: nothing of the old one's memory
        live = await visitor.socket(after=0)
        # a moderator taking back the bridge's copy of the visitor's line changes nothing for the visitor
        for event_id in (copy["event_id"], reply):
            redacted = await matrix.staff.client.room_redact(matrix.room_id, event_id)
            assert isinstance(redacted, nio.RoomRedactResponse), redacted
        deleted = await live.wait_frame(lambda f: f["type"] == "message_deleted")
        messages = (await visitor.messages())["messages"]
        assert [(m["author"]["role"], m["text"]) for m in messages if m["id"] != deleted["id"]] == [
            ("visitor", "Hello?"),
            ("system", f"{STAFF_NAME} joined the chat"),
            ("agent", "A reply that stays"),
        ]
        assert "A reply I will take back" not in [m["text"] for m in messages]
        await live.close()
    finally:
        await visitor.close()
