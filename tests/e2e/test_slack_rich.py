"""Rich messages with Slack (CONTRACT §7), end to end through signed Slack events and the widget API:
an agent's formatting (rich_text blocks) reaches the widget as plain text plus the sanitized HTML subset,
edits and deletions follow it, and what the visitor has seen gets the bot's 👀 in the thread, once."""

from __future__ import annotations

from typing import Any

from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import (
    event_callback,
    message_changed_event,
    message_event,
    signed_json,
)
from tests.harness import SIGNING_SECRET, RunningBridge, SlackAgent, Visitor, root_of, wait_until

A = 'target="_blank" rel="noopener noreferrer nofollow"'


def _section(*inline: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich_text_section", "elements": list(inline)}


#: what Slack's client sends for: "*Order* shipped :wave::skin-tone-2: <@UAGENT> see <https://…|tracking> in
#: <#C0SALES|sales> <!here>", a two-item list, a quote and a code block — and text that only looks like markup
RICH = [
    {
        "type": "rich_text",
        "block_id": "x1",
        "elements": [
            _section(
                {"type": "text", "text": "Order", "style": {"bold": True}},
                {"type": "text", "text": " shipped "},
                {"type": "emoji", "name": "wave", "unicode": "1f44b", "skin_tone": 2},
                {"type": "text", "text": " "},
                {"type": "user", "user_id": "UAGENT"},
                {"type": "text", "text": " see "},
                {"type": "link", "url": "https://track.example/?id=1&x=2", "text": "tracking"},
                {"type": "text", "text": " in "},
                {"type": "channel", "channel_id": "C0SALES"},
                {"type": "text", "text": " "},
                {"type": "broadcast", "range": "here"},
                {"type": "text", "text": "\n"},
            ),
            {
                "type": "rich_text_list",
                "style": "bullet",
                "indent": 0,
                "elements": [
                    _section(
                        {"type": "text", "text": "box "}, {"type": "text", "text": "one", "style": {"italic": True}}
                    ),
                    _section({"type": "text", "text": "a*b*c", "style": {"code": True}}),
                ],
            },
            {"type": "rich_text_quote", "elements": [{"type": "text", "text": "<script>alert(1)</script> &amp;"}]},
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "x = <y>"}]},
        ],
    }
]
RICH_TEXT = (
    "*Order* shipped :wave::skin-tone-2: <@UAGENT> see <https://track.example/?id=1&amp;x=2|tracking> in "
    "<#C0SALES|sales> <!here>\n• box _one_\n• `a*b*c`\n&gt; &lt;script&gt;alert(1)&lt;/script&gt; &amp;amp;\n"
    "```x = &lt;y&gt;```"
)
EXPECTED_TEXT = (
    "Order shipped 👋🏻 @Alice see tracking (https://track.example/?id=1&x=2) in #sales @here\n"
    "• box one\n• a*b*c\n<script>alert(1)</script> &amp;\nx = <y>"
)
EXPECTED_HTML = (
    "<p><strong>Order</strong> shipped 👋🏻 @Alice see "
    f'<a href="https://track.example/?id=1&amp;x=2" {A}>tracking</a> in #sales @here</p>'
    "<ul><li>box <em>one</em></li><li><code>a*b*c</code></li></ul>"
    "<blockquote>&lt;script&gt;alert(1)&lt;/script&gt; &amp;amp;</blockquote><pre>x = &lt;y&gt;</pre>"
)


async def _thread(visitor: Visitor, slack: FakeSlack) -> dict[str, Any]:
    await visitor.start(name="Ann")
    root = await slack.wait_for(lambda: root_of(slack), message="the thread root")
    assert root is not None
    return root


async def _post(agent: SlackAgent, event: dict[str, Any]) -> None:
    status, _ = await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(event)))
    assert status == 200


async def _agent_messages(visitor: Visitor) -> list[dict[str, Any]]:
    return [m for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]


async def test_an_agents_formatting_reaches_the_widget_as_plain_text_and_safe_html(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    root = await _thread(visitor, fake_slack)
    status, said = await visitor.say("*not bold* <b>me</b>")
    assert status == 201 and "html" not in said["message"]  # the visitor's text is never formatted
    live = await visitor.socket(after=0)

    await _post(agent, message_event("C0SUPPORT", "UAGENT", RICH_TEXT, thread_ts=root["ts"], blocks=RICH))
    frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
    assert frame["message"]["text"] == EXPECTED_TEXT
    assert frame["message"]["html"] == EXPECTED_HTML
    [stored] = [m for m in await _agent_messages(visitor) if m["text"] == EXPECTED_TEXT]
    assert stored["html"] == EXPECTED_HTML  # the HTTP answer is the same message

    # no blocks (an older client, a bot-like post): the mrkdwn text is read instead
    await _post(
        agent, message_event("C0SUPPORT", "UAGENT", "_fine_ &amp;lt; <@UAGENT>", thread_ts=root["ts"], blocks=[])
    )
    await wait_until(lambda: _has(visitor, "fine &lt; @Alice"), what="the mrkdwn reply")
    [plain] = [m for m in await _agent_messages(visitor) if m["text"] == "fine &lt; @Alice"]
    assert plain["html"] == "<p><em>fine</em> &amp;lt; @Alice</p>"

    # the transcript in the thread shows the words, not the marks
    await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
    transcript = await fake_slack.wait_for(
        lambda: [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "Transcript" in m["text"]],
        message="the transcript",
    )
    assert "Alice: Order shipped 👋🏻 @Alice" in transcript[0]["text"]
    await live.close()


async def _has(visitor: Visitor, text: str) -> bool:
    return any(m["text"] == text for m in await _agent_messages(visitor))


async def test_a_formatted_edit_updates_the_widget_and_a_note_never_shows(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    root = await _thread(visitor, fake_slack)
    live = await visitor.socket(after=0)
    _, first = await agent.reply("C0SUPPORT", root["ts"], "plain answer")
    _, note = await agent.reply("C0SUPPORT", root["ts"], "// internal")
    first_ts, note_ts = first["event"]["ts"], note["event"]["ts"]
    frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "plain answer")
    mid = frame["message"]["id"]

    edit = message_changed_event("C0SUPPORT", first_ts, "*bold* answer", "UAGENT", "plain answer", thread_ts=root["ts"])
    await _post(agent, edit)
    updated = await live.wait_frame(lambda f: f["type"] == "message_updated")
    assert updated["message"]["id"] == mid and updated["message"]["seq"] == frame["message"]["seq"]
    assert updated["message"]["text"] == "bold answer"
    assert updated["message"]["html"] == "<p><strong>bold</strong> answer</p>"
    assert "edited_at" in updated["message"]

    # editing the note never sends it
    note_edit = message_changed_event(
        "C0SUPPORT", note_ts, "// still internal", "UAGENT", "// internal", thread_ts=root["ts"]
    )
    await _post(agent, note_edit)
    into_note = message_changed_event(
        "C0SUPPORT", first_ts, "// take it back", "UAGENT", "*bold* answer", thread_ts=root["ts"]
    )
    await _post(agent, into_note)
    gone = await live.wait_frame(lambda f: f["type"] == "message_deleted")
    assert gone["id"] == mid
    messages = (await visitor.messages())["messages"]
    assert all("internal" not in m["text"] and "take it back" not in m["text"] for m in messages)
    assert next(m for m in messages if m["id"] == mid) == {
        **next(m for m in messages if m["id"] == mid),
        "text": "",
        "deleted": True,
    }
    assert "html" not in next(m for m in messages if m["id"] == mid)
    await live.close()


async def test_what_the_visitor_saw_gets_the_bots_eyes_once(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    root = await _thread(visitor, fake_slack)
    await visitor.say("hello?")
    live = await visitor.socket(after=0)
    replies = []
    for text in ("first reply", "second reply", "// a note is never marked"):
        # typed in Slack: in the channel, and as the event Slack sends
        typed = fake_slack.add_message("C0SUPPORT", "UAGENT", text, thread_ts=root["ts"])
        await _post(agent, message_event("C0SUPPORT", "UAGENT", text, ts=typed["ts"], thread_ts=root["ts"]))
        replies.append(typed["ts"])
    last = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "second reply")

    def eyes(ts: str) -> list[str]:
        reactions = fake_slack.message("C0SUPPORT", ts).get("reactions", [])
        return [user for r in reactions if r["name"] == "eyes" for user in r["users"]]

    await live.ws.send_json({"type": "seen", "seq": last["message"]["seq"]})
    await fake_slack.wait_for(lambda: eyes(replies[0]) and eyes(replies[1]), message="the 👀 reactions")
    assert eyes(replies[0]) == [fake_slack.bot_user_id] == eyes(replies[1])
    assert not eyes(replies[2])  # never a note

    # seen again (a reload, a second tab): nothing more; a bad frame is an error, not a crash
    await live.ws.send_json({"type": "seen", "seq": last["message"]["seq"]})
    await live.ws.send_json({"type": "seen", "seq": "x"})
    assert (await live.wait_frame(lambda f: f["type"] == "error"))["code"] == "invalid"
    await slack_bridge.wait_idle()
    assert len(fake_slack.calls_to("reactions.add")) == 2
    # the visitor's own line (the bot's post of it) and the root are never marked
    for message in fake_slack.messages("C0SUPPORT"):
        if message.get("bot_id"):
            assert not message.get("reactions"), message
    await live.close()
