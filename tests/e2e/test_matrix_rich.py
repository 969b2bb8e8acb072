"""Rich messages with Matrix (CONTRACT §7), against a real Synapse with a nio staff client: formatted
replies, edits and redactions (mirrored into Slack and back), typing and read state both ways."""

from __future__ import annotations

from typing import Any

import nio
import pytest

from adapters.matrix.format import thread_relation
from tests.e2e import test_matrix_conversation as shared
from tests.e2e.test_matrix_conversation import STAFF_NAME, MatrixSide
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_changed_event, message_deleted_event, signed_json
from tests.harness import SIGNING_SECRET, BridgeFactory, SlackAgent, Visitor, root_of, wait_until

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]
# the Matrix conversation tests' fixtures, in the session loop
fake_slack, make_bridge, matrix = shared.fake_slack, shared.make_bridge, shared.matrix
A = 'target="_blank" rel="noopener noreferrer nofollow"'
Event = dict[str, Any]


def _formatted(root: str, body: str, html: str) -> Event:
    return {
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": html,
        "m.mentions": {},
        "m.relates_to": thread_relation(root, root),
    }


def _edit(original: str, body: str, html: str) -> Event:
    new = {"msgtype": "m.text", "body": body, "format": "org.matrix.custom.html", "formatted_body": html}
    return {
        **new,
        "body": f"* {body}",
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": original},
    }


async def test_staff_formatting_edits_and_redactions_reach_the_widget_and_slack(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, matrix: MatrixSide
) -> None:
    bridge = await make_bridge(fake_slack, **matrix.settings())
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        slack_root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the Slack root")
        assert slack_root is not None
        root = await matrix.root()
        live = await visitor.socket(after=0)

        def in_slack(predicate: Any) -> Any:
            return lambda: [m for m in fake_slack.replies("C0SUPPORT", slack_root["ts"]) if predicate(m)]

        pill = f'<a href="https://matrix.to/#/{matrix.staff.user_id}">{STAFF_NAME}</a>'
        html = (
            f"<p>{pill} here: <b>bold</b> &amp; <i>it</i></p><ul><li>one</li><li><code>*two*</code></li></ul>"
            '<p><a href="https://docs.example/?a=1&amp;b=2">docs</a> <a href="javascript:alert(1)">js</a>'
            "<img src=x onerror=alert(1)><script>alert(2)</script> &lt;!here&gt;</p>"
        )
        first = await matrix.staff.send(_formatted(root["event_id"], "markdown source", html))
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
        message = frame["message"]
        assert (
            message["text"]
            == f"{STAFF_NAME} here: bold & it\n• one\n• *two*\ndocs (https://docs.example/?a=1&b=2) js <!here>"
        )
        assert message["html"] == (
            f"<p>{STAFF_NAME} here: <strong>bold</strong> &amp; <em>it</em></p>"
            "<ul><li>one</li><li><code>*two*</code></li></ul>"
            f'<p><a href="https://docs.example/?a=1&amp;b=2" {A}>docs</a> js &lt;!here&gt;</p>'
        )
        # mirrored into Slack as mrkdwn: the formatting kept, nothing that mentions or links anywhere else
        posted = await fake_slack.wait_for(in_slack(lambda m: "bold" in m["text"]), message="the line in Slack")
        assert posted[0]["username"] == STAFF_NAME
        assert posted[0]["text"] == (
            f"{STAFF_NAME} here: *bold* &amp; _it_\n\n• one\n• `*two*`\n\n"
            "<https://docs.example/?a=1&amp;b=2|docs> js &lt;!here&gt;"
        )
        call = next(c for c in fake_slack.calls_to("chat.postMessage") if "bold" in str(c.params.get("text")))
        assert call.params.get("mrkdwn") in (True, "true", "1", 1)

        # a second line right after: its own post in Slack, so changing one never touches the other
        second = await matrix.staff.reply(root["event_id"], "second line")
        await fake_slack.wait_for(in_slack(lambda m: m["text"] == "second line"), message="the second line")
        first_ts = posted[0]["ts"]

        await matrix.staff.send(_edit(first, "now **short**", "now <strong>short</strong>"))
        updated = await live.wait_frame(lambda f: f["type"] == "message_updated")
        assert updated["message"]["id"] == message["id"] and updated["message"]["seq"] == message["seq"]
        assert (updated["message"]["text"], updated["message"]["html"]) == ("now short", "now <strong>short</strong>")
        await fake_slack.wait_for(
            lambda: fake_slack.message("C0SUPPORT", first_ts)["text"] == "now *short*", message="the Slack copy edited"
        )
        assert [m["text"] for m in fake_slack.replies("C0SUPPORT", slack_root["ts"]) if m["text"] == "second line"]

        # a redaction takes it back everywhere
        redacted = await matrix.staff.client.room_redact(matrix.room_id, second)
        assert isinstance(redacted, nio.RoomRedactResponse), redacted
        await live.wait_frame(lambda f: f["type"] == "message_deleted")
        await fake_slack.wait_for(
            lambda: not in_slack(lambda m: m["text"] == "second line")(), message="Slack copy gone"
        )

        # an edit into a note takes the first back everywhere too
        await matrix.staff.send(_edit(first, "// internal now", "// internal now"))
        deleted = await live.wait_frame(lambda f: f["type"] == "message_deleted" and f["id"] == message["id"])
        assert deleted["id"] == message["id"]
        await fake_slack.wait_for(lambda: not in_slack(lambda m: m["ts"] == first_ts)(), message="the first copy gone")
        texts = [m["text"] for m in (await visitor.messages())["messages"]]
        assert not [t for t in texts if "internal" in t or "short" in t or "second line" in t]
        await live.close()
    finally:
        await visitor.close()


async def test_a_slack_agents_formatting_edits_and_deletions_reach_matrix(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, matrix: MatrixSide
) -> None:
    bridge = await make_bridge(fake_slack, **matrix.settings())
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        slack_root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the Slack root")
        assert slack_root is not None
        root = await matrix.root()
        _, reply = await agent.reply("C0SUPPORT", slack_root["ts"], "*Hi* <https://x.example|there> <!here>")
        line = await matrix.in_thread(root, lambda b: b.startswith("Alice: "), "the Slack agent's line")
        assert line["content"]["body"] == "Alice: Hi there (https://x.example) @here"
        assert line["content"]["formatted_body"] == (
            f'<p><strong>Alice</strong>: <strong>Hi</strong> <a href="https://x.example" {A}>there</a> @here</p>'
        )
        assert line["content"]["m.mentions"] == {}

        ts = reply["event"]["ts"]

        async def post(event: Event) -> None:
            status, _ = await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(event)))
            assert status == 200

        await post(message_changed_event("C0SUPPORT", ts, "_Hello_", "UAGENT", "*Hi*", thread_ts=slack_root["ts"]))
        edit = await matrix.staff.wait_for(
            lambda e: (
                matrix.bridged(e)
                and e["content"].get("m.relates_to") == {"rel_type": "m.replace", "event_id": line["event_id"]}
            ),
            "the Matrix edit",
        )
        assert edit["content"]["m.new_content"]["body"] == "Alice: Hello"
        assert edit["content"]["m.new_content"]["formatted_body"] == "<p><strong>Alice</strong>: <em>Hello</em></p>"

        await post(message_deleted_event("C0SUPPORT", ts, "UAGENT", "_Hello_", thread_ts=slack_root["ts"]))
        await matrix.staff.wait_for(
            lambda e: (
                e["type"] == "m.room.redaction" and line["event_id"] in (e.get("redacts"), e["content"].get("redacts"))
            ),
            "the Matrix copy redacted",
        )
        assert (await visitor.messages())["messages"][-1]["deleted"] is True
    finally:
        await agent.close()
        await visitor.close()


async def test_typing_and_read_state_both_ways(make_bridge: BridgeFactory, matrix: MatrixSide) -> None:
    bridge = await make_bridge(**matrix.settings())
    visitor = Visitor(bridge.url)
    staff = matrix.staff
    try:
        await visitor.start(name="Ann")
        root = await matrix.root()
        live = await visitor.socket(after=0)
        await visitor.say("first question")
        _, said = await visitor.say("second question")
        seq = said["message"]["seq"]
        line = await matrix.in_thread(root, lambda b: b == "Ann: second question", "the visitor's line")

        # the visitor types: the bot types in the room
        await live.ws.send_json({"type": "typing"})
        typing_seen: list[list[str]] = []

        async def bot_typing() -> bool:
            response = await staff.client.sync(timeout=300, sync_filter={"room": {"timeline": {"limit": 50}}})
            assert isinstance(response, nio.SyncResponse)
            room = response.rooms.join.get(staff.room_id)
            for event in room.ephemeral if room else []:
                if isinstance(event, nio.TypingNoticeEvent):
                    typing_seen.append(event.users)
            if room is not None:
                staff.events.extend(e.source for e in room.timeline.events)
            return any(matrix.bot.user_id in users for users in typing_seen)

        await wait_until(bot_typing, 10, "the bot's typing notice")

        # staff read the thread up to the visitor's line: the widget says so
        receipt = await staff.client.update_receipt_marker(staff.room_id, line["event_id"], thread_id=root["event_id"])
        assert isinstance(receipt, nio.UpdateReceiptMarkerResponse), receipt
        read = await live.wait_frame(lambda f: f["type"] == "read")
        assert read == {"type": "read", "seq": seq}

        # the visitor sees the staff reply: the bot's read receipt on it, once
        reply = await staff.reply(root["event_id"], "an answer")
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "an answer")
        await live.ws.send_json({"type": "seen", "seq": frame["message"]["seq"]})

        async def bot_read_it() -> bool:
            response = await staff.client.sync(timeout=300, sync_filter={"room": {"timeline": {"limit": 50}}})
            assert isinstance(response, nio.SyncResponse)
            room = response.rooms.join.get(staff.room_id)
            return any(
                isinstance(e, nio.ReceiptEvent)
                and any(r.user_id == matrix.bot.user_id and r.event_id == reply for r in e.receipts)
                for e in (room.ephemeral if room else [])
            )

        await wait_until(bot_read_it, 10, "the bot's read receipt on the staff reply")
        # after a reconnect the widget is told again what the team has read
        again = await visitor.socket(after=0)
        assert (await again.wait_frame(lambda f: f["type"] == "read")) == {"type": "read", "seq": seq}
        await again.close()
        await live.close()
    finally:
        await visitor.close()


async def test_a_deleted_line_with_a_file_goes_from_matrix_whole(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, matrix: MatrixSide
) -> None:
    """A Slack agent's words with a file become two Matrix events (text, then ``m.file``): deleting the
    Slack message redacts both, never only the first."""
    bridge = await make_bridge(fake_slack, **matrix.settings())
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        slack_root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the Slack root")
        assert slack_root is not None
        root = await matrix.root()
        pdf = b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"
        status, shared_event = await agent.share("C0SUPPORT", slack_root["ts"], "terms.pdf", pdf, "our terms")
        assert status == 200
        line = await matrix.in_thread(root, lambda b: b.startswith("Alice: our terms"), "the agent's words")
        file_event = await matrix.staff.wait_for(
            lambda e: matrix.bridged(e) and e["content"].get("msgtype") == "m.file", "the file in the thread"
        )
        ts = shared_event["event"]["ts"]
        event = message_deleted_event("C0SUPPORT", ts, "UAGENT", "our terms", thread_ts=slack_root["ts"])
        status, _ = await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(event)))
        assert status == 200
        for gone in (line["event_id"], file_event["event_id"]):
            await matrix.staff.wait_for(
                lambda e, gone=gone: (
                    e["type"] == "m.room.redaction" and gone in (e.get("redacts"), e["content"].get("redacts"))
                ),
                f"the redaction of {gone}",
            )
        message = (await visitor.messages())["messages"][-1]
        assert message["deleted"] is True and "attachments" not in message
    finally:
        await agent.close()
        await visitor.close()
