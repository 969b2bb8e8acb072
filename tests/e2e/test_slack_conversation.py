"""A visitor and a Slack agent, end to end, through the public API and signed Slack requests only."""

from __future__ import annotations

import json

from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, SlackAgent, Visitor, root_of


def _text_of(message: dict) -> str:
    return json.dumps(message.get("blocks") or message.get("text"))


async def test_whole_conversation(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    started = await visitor.start(name="Ann", email="ann@example.com")
    assert started["conversation"]["status"] == "open"
    assert len(started["token"]) >= 22 and len(started["conversation"]["id"]) >= 22

    root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
    context = _text_of(root)
    for expected in (
        "Ann",
        "ann@example.com",
        "Acme",
        "https://acme.example/pricing",
        "Pricing",
        "https://search.example/",
        "en-GB",
        "Europe/London",
        "Open",
    ):
        assert expected in context, (expected, context)
    actions = next(b for b in root["blocks"] if b["type"] == "actions")
    assert [e["text"]["text"] for e in actions["elements"]] == ["Claim", "Close"]

    status, first = await visitor.say("Hello <!channel> <@U123> <https://evil.example|click> & more", "m-1")
    assert status == 201 and first["message"]["seq"] == 1
    status, again = await visitor.say("Hello <!channel> <@U123> <https://evil.example|click> & more", "m-1")
    assert status == 200 and again["message"]["id"] == first["message"]["id"]

    replies = await fake_slack.wait_for(lambda: fake_slack.replies("C0SUPPORT", root["ts"]), message="visitor line")
    assert len(replies) == 1
    posted = replies[0]
    assert posted["username"] == "Ann"
    assert posted["text"] == "Hello &lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp; more"

    live = await visitor.socket(after=0)
    assert (await live.wait_frame(lambda f: f["type"] == "message"))["message"]["seq"] == 1

    status, _ = await agent.reply(
        "C0SUPPORT", root["ts"], "Hi *Ann* :wave: see <https://acme.example/docs|the docs> &amp; <@UAGENT>"
    )
    assert status == 200
    frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
    reply = frame["message"]
    assert reply["author"]["role"] == "agent" and reply["author"]["name"] == "Alice"
    assert reply["author"]["avatar_url"] == "https://avatars.example/UAGENT.png"
    # plain text with the marks removed, and the formatting as the sanitized HTML subset (CONTRACT §7)
    assert reply["text"] == "Hi Ann 👋 see the docs (https://acme.example/docs) & @Alice"
    assert reply["html"] == (
        '<p>Hi <strong>Ann</strong> 👋 see <a href="https://acme.example/docs" target="_blank" '
        'rel="noopener noreferrer nofollow">the docs</a> &amp; @Alice</p>'
    )
    assert "html" not in first["message"]  # the visitor's text stays plain

    status, _ = await agent.reply("C0SUPPORT", root["ts"], "// she is a VIP, be nice")
    assert status == 200
    status, _ = await agent.reply("C0SUPPORT", root["ts"], "!claim")
    assert status == 200
    await fake_slack.wait_for(
        lambda: "Claimed by Alice" in _text_of(fake_slack.message("C0SUPPORT", root["ts"])), message="root claimed"
    )
    history = await visitor.messages(after=0)
    assert [m["seq"] for m in history["messages"]] == [1, 2, 3]  # no second "joined" for her claim
    assert all("VIP" not in m["text"] and "!claim" not in m["text"] for m in history["messages"])
    assert (await visitor.messages(after=1))["messages"][0]["author"]["name"] == "Alice"

    status, closed, _ = await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
    assert status == 200 and closed == {"status": "closed"}
    await live.wait_frame(lambda f: f == {"type": "status", "status": "closed"})
    await live.wait_frame(lambda f: f["type"] == "rating_requested")
    status, _, _ = await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
    assert status == 200

    transcript = await fake_slack.wait_for(
        lambda: [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "Transcript" in m["text"]],
        message="the transcript",
    )
    assert len(transcript) == 1
    assert "Ann: Hello &lt;!channel&gt;" in transcript[0]["text"] and "Alice: Hi Ann 👋" in transcript[0]["text"]
    assert "VIP" not in transcript[0]["text"]

    status, _, _ = await visitor.request(
        "POST", f"/api/v1/conversations/{visitor.conversation_id}/rating", {"score": 4, "comment": "great help"}
    )
    assert status == 200
    status, again, _ = await visitor.request(
        "POST", f"/api/v1/conversations/{visitor.conversation_id}/rating", {"score": 5}
    )
    assert status == 409 and again["error"]["code"] == "already_rated"
    await fake_slack.wait_for(
        lambda: [
            m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "4/5" in m["text"] and "great help" in m["text"]
        ],
        message="the rating in the thread",
    )
    await fake_slack.wait_for(
        lambda: "Rated 4/5: great help" in _text_of(fake_slack.message("C0SUPPORT", root["ts"])),
        message="root shows the rating",
    )
    await live.close()
