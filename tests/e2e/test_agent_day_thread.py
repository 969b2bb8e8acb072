"""In the thread (CONTRACT §8), end to end: ``!invite`` mentions the person for real (visitor text never
can), their first reply shows the visitor that they joined; a face, not a bot — "Alice joined the chat", with
her photo, when she claims or first answers, once; a transfer tells the visitor which team has the chat."""

from __future__ import annotations

from typing import Any

from adapters.slack.blocks import CLAIM
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, SlackAgent, Visitor, root_of, wait_until


async def _thread(bridge: RunningBridge, slack: FakeSlack, visitor: Visitor) -> dict[str, Any]:
    await visitor.start(name="Ann")
    root = await slack.wait_for(lambda: root_of(slack), message="the thread root")
    assert (await visitor.say("Hello, I have a tricky question"))[0] == 201
    return root


async def _lines(visitor: Visitor) -> list[tuple[str, str, str]]:
    return [(m["author"]["role"], m["author"]["name"], m["text"]) for m in (await visitor.messages())["messages"]]


def _bot_replies(slack: FakeSlack, root: dict[str, Any], words: str) -> list[dict[str, Any]]:
    return [m for m in slack.replies("C0SUPPORT", root["ts"]) if words in m["text"] and m.get("bot_id")]


async def test_invite_mentions_the_person_and_their_first_reply_shows_them_joining(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack)
    visitor, alice = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    bob = SlackAgent(bridge.url, fake_slack, user_id="U0BOB", name="Bob")
    try:
        root = await _thread(bridge, fake_slack, visitor)
        assert (await alice.reply("C0SUPPORT", root["ts"], "!invite <@U0BOB>"))[0] == 200
        [invitation] = await fake_slack.wait_for(lambda: _bot_replies(fake_slack, root, "asks you"), message="invite")
        assert invitation["text"] == "<@U0BOB> Alice asks you to join this chat."  # a real mention: Bob is notified
        assert invitation["thread_ts"] == root["ts"]
        assert await _lines(visitor) == [("visitor", "Ann", "Hello, I have a tricky question")]  # not for the visitor

        assert (await bob.reply("C0SUPPORT", root["ts"], "Hi Ann, Bob from engineering here."))[0] == 200
        assert (await bob.reply("C0SUPPORT", root["ts"], "Which version do you run?"))[0] == 200
        await wait_until(lambda: _count(visitor, 4), what="Bob's two lines")
        messages = (await visitor.messages())["messages"]
        joined = messages[1]
        assert joined["author"] == {
            "role": "system",
            "name": "Bob",
            "avatar_url": "https://avatars.example/U0BOB.png",
        }
        assert joined["text"] == "Bob joined the chat"
        assert [(m["author"]["role"], m["text"]) for m in messages[2:]] == [
            ("agent", "Hi Ann, Bob from engineering here."),
            ("agent", "Which version do you run?"),
        ]
    finally:
        for who in (visitor, alice, bob):
            await who.close()


async def _count(visitor: Visitor, n: int) -> bool:
    return len((await visitor.messages())["messages"]) >= n


async def test_invite_by_display_name_and_a_name_nobody_has(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack)
    fake_slack.add_user("U0CAROL", "carol", display_name="Carol Danvers")
    fake_slack.add_user("U0GONE", "carol.old", display_name="Carol Danvers")
    fake_slack._users["U0GONE"]["deleted"] = True  # a deactivated account is nobody to invite
    visitor, alice = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        root = await _thread(bridge, fake_slack, visitor)
        assert (await alice.reply("C0SUPPORT", root["ts"], "!invite @carol danvers"))[0] == 200
        await fake_slack.wait_for(lambda: _bot_replies(fake_slack, root, "asks you"), message="the invitation")
        assert _bot_replies(fake_slack, root, "asks you")[0]["text"] == "<@U0CAROL> Alice asks you to join this chat."
        assert (await alice.reply("C0SUPPORT", root["ts"], "!invite <!channel> Nobody"))[0] == 200
        [nobody] = await fake_slack.wait_for(lambda: _bot_replies(fake_slack, root, "Nobody called"), message="who?")
        assert nobody["text"].startswith("Nobody called “&lt;!channel&gt; Nobody” in this workspace")
        assert (await alice.reply("C0SUPPORT", root["ts"], "!invite"))[0] == 200
        await fake_slack.wait_for(lambda: _bot_replies(fake_slack, root, "Usage: !invite"), message="usage")
    finally:
        await visitor.close()
        await alice.close()


async def test_a_face_when_an_agent_claims_or_first_answers_once_each(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack)
    visitor, alice = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    carol = SlackAgent(bridge.url, fake_slack, user_id="U0CAROL", name="Carol")
    try:
        root = await _thread(bridge, fake_slack, visitor)
        live = await visitor.socket()
        assert await alice.click(CLAIM, "C0SUPPORT", root["ts"]) == 200
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["seq"] == 2)
        assert frame["message"]["author"] == {
            "role": "system",
            "name": "Alice",
            "avatar_url": "https://avatars.example/UAGENT.png",
        }
        assert frame["message"]["text"] == "Alice joined the chat"
        assert (await alice.reply("C0SUPPORT", root["ts"], "Hi Ann!"))[0] == 200
        assert (await alice.reply("C0SUPPORT", root["ts"], "!claim"))[0] == 200
        assert (await carol.reply("C0SUPPORT", root["ts"], "Carol here, I know this one."))[0] == 200
        await wait_until(lambda: _count(visitor, 5), what="Carol's line")
        await bridge.wait_idle()
        assert await _lines(visitor) == [
            ("visitor", "Ann", "Hello, I have a tricky question"),
            ("system", "Alice", "Alice joined the chat"),
            ("agent", "Alice", "Hi Ann!"),
            ("system", "Carol", "Carol joined the chat"),
            ("agent", "Carol", "Carol here, I know this one."),
        ]
        # the team's thread is for what people say: no "joined" posts there
        assert not [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "joined the chat" in m["text"]]
        await live.close()
    finally:
        for who in (visitor, alice, carol):
            await who.close()


async def test_a_transfer_tells_the_visitor_which_team_has_the_chat(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack)
    visitor, alice = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        root = await _thread(bridge, fake_slack, visitor)
        assert (await alice.reply("C0SUPPORT", root["ts"], "!transfer sales"))[0] == 200
        await fake_slack.wait_for(lambda: root_of(fake_slack, "C0SALES"), message="the thread in sales")
        assert (await _lines(visitor))[-1] == ("system", "Acme", "Your chat is now with our Sales team.")
    finally:
        await visitor.close()
        await alice.close()
