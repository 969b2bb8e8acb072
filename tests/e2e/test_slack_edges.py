"""The Slack side's edges: signatures, echoes, retries, rate limits, buttons, Socket Mode, timers."""

from __future__ import annotations

import json
import time
from pathlib import Path

from adapters.slack.blocks import CLAIM, CLOSE
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_event, signed_json
from tests.harness import SIGNING_SECRET, RunningBridge, SlackAgent, Visitor, root_of, visitor_and_agent, wait_until


async def _conversation(visitor: Visitor, slack: FakeSlack, name: str = "Ann") -> dict:
    await visitor.start(name=name)
    return await slack.wait_for(lambda: root_of(slack, visitor=name), message="thread root")


async def test_bad_signature_and_stale_timestamp_are_refused_and_store_nothing(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    root = await _conversation(visitor, fake_slack)
    payload = event_callback(message_event("C0SUPPORT", "UAGENT", "forged reply", thread_ts=root["ts"]))
    body, headers = signed_json("wrong-secret", payload)
    assert (await agent.post_signed(body, headers))[0] == 401
    body, headers = signed_json(SIGNING_SECRET, payload, timestamp=int(time.time()) - 301)
    assert (await agent.post_signed(body, headers))[0] == 401
    body, headers = signed_json(SIGNING_SECRET, payload)
    del headers["X-Slack-Signature"]
    assert (await agent.post_signed(body, headers))[0] == 401
    # the same payload correctly signed goes through: the refusals were about the signature alone
    body, headers = signed_json(SIGNING_SECRET, payload)
    assert (await agent.post_signed(body, headers))[0] == 200
    texts = [m["text"] for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]
    assert texts == ["forged reply"]


async def test_retried_event_is_stored_once_and_bots_are_not_echoed(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    root = await _conversation(visitor, fake_slack)
    payload = event_callback(message_event("C0SUPPORT", "UAGENT", "only once", thread_ts=root["ts"]))
    for retry in range(4):
        body, headers = signed_json(SIGNING_SECRET, payload)
        if retry:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
        assert (await agent.post_signed(body, headers))[0] == 200
    # our own post coming back, another bot, an edit and a join: none is a reply
    for event in (
        message_event("C0SUPPORT", "UBOT", "echo of ours", thread_ts=root["ts"], bot_id="BBOT"),
        message_event("C0SUPPORT", "UOTHER", "another bot", thread_ts=root["ts"], bot_id="BOTHER"),
        message_event("C0SUPPORT", "UAGENT", "joined", thread_ts=root["ts"], subtype="channel_join"),
        message_event("C0SUPPORT", "UAGENT", "top-level chatter"),
    ):
        assert (await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(event))))[0] == 200
    await agent.reply("C0SUPPORT", root["ts"], "second")
    texts = await wait_until(lambda: _texts(visitor), what="both replies")
    assert texts == ["only once", "second"]


async def _texts(visitor: Visitor) -> list[str] | None:
    texts = [m["text"] for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]
    return texts if len(texts) >= 2 else None


async def test_rate_limited_posts_arrive_once_in_order_after_retry_after(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor
) -> None:
    root = await _conversation(visitor, fake_slack)
    fake_slack.fail_next("chat.postMessage", count=1, status=429, retry_after=1)
    for i in range(5):
        status, _ = await visitor.say(f"line {i}", f"c{i}")
        assert status == 201
    await slack_bridge.wait_idle(timeout=15)
    lines = "\n".join(m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"]))
    assert lines.split("\n") == [f"line {i}" for i in range(5)]
    posts = fake_slack.calls_to("chat.postMessage")
    limited = [c for c in posts if c.status == 429]
    assert len(limited) == 1
    after = [c for c in posts if c.at > limited[0].at]
    assert after and min(c.at for c in after) - limited[0].at >= 0.99, "a post came before Retry-After ended"


async def test_claim_and_close_buttons(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    root = await _conversation(visitor, fake_slack)
    live = await visitor.socket()
    assert await agent.click(CLAIM, "C0SUPPORT", root["ts"], visitor.conversation_id) == 200
    current = await fake_slack.wait_for(
        lambda: (
            (m := fake_slack.message("C0SUPPORT", root["ts"])) and "Claimed by Alice" in json.dumps(m["blocks"]) and m
        ),
        message="root shows the claim",
    )
    buttons = [e["action_id"] for b in current["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [CLOSE]
    assert await agent.click(CLOSE, "C0SUPPORT", root["ts"], visitor.conversation_id) == 200
    await live.wait_frame(lambda f: f == {"type": "status", "status": "closed"})
    final = await fake_slack.wait_for(
        lambda: (m := fake_slack.message("C0SUPPORT", root["ts"])) and "Closed" in json.dumps(m["blocks"]) and m,
        message="root shows closed",
    )
    assert not [b for b in final["blocks"] if b["type"] == "actions"]
    await live.close()


async def test_commands_help_unknown_and_closed_thread(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    root = await _conversation(visitor, fake_slack)
    await agent.reply("C0SUPPORT", root["ts"], "!frobnicate")
    await fake_slack.wait_for(
        lambda: any(
            "!claim" in m["text"] and "!close" in m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])
        ),
        message="help in the thread",
    )
    await agent.reply("C0SUPPORT", root["ts"], "!close")
    await fake_slack.wait_for(
        lambda: any("Transcript" in m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])),
        message="transcript",
    )
    await agent.reply("C0SUPPORT", root["ts"], "too late")
    await fake_slack.wait_for(
        lambda: any("closed" in m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])), message="closed notice"
    )
    assert (await visitor.messages())["messages"] == []


async def test_topic_routes_to_its_own_channel(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor
) -> None:
    await visitor.start(name="Bob", topic="sales")
    root = await fake_slack.wait_for(lambda: root_of(fake_slack, "C0SALES", "Bob"), message="root in sales")
    assert "Sales" in json.dumps(root["blocks"])
    assert root_of(fake_slack, "C0SUPPORT", "Bob") is None


async def test_socket_mode(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack, slack_app_token=fake_slack.app_token, slack_signing_secret=None)
    await fake_slack.wait_socket_connected(timeout=10)
    visitor = Visitor(bridge.url)
    try:
        root = await _conversation(visitor, fake_slack)
        event = event_callback(message_event("C0SUPPORT", "UAGENT", "over the socket", thread_ts=root["ts"]))
        fake_slack.add_user("UAGENT", "alice", display_name="Alice")
        ack = await fake_slack.send_socket_event(event)
        assert ack["envelope_id"]
        texts = await wait_until(lambda: _first_text(visitor), what="the socket-mode reply")
        assert texts == "over the socket"
        # HTTP mode is off: nothing is mounted at /slack/events without a signing secret
        status, _, _ = await visitor.request("POST", "/slack/events", "{}")
        assert status in (404, 405)
    finally:
        await visitor.close()


async def _first_text(visitor: Visitor) -> str | None:
    messages = [m for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]
    return messages[0]["text"] if messages else None


async def test_inactivity_closes_and_waiting_visitor_reminds(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(
        fake_slack, inactivity_close_minutes=0.05, first_response_alert_seconds=0.5, reminder_max=1
    )
    visitor = Visitor(bridge.url)
    try:
        root = await _conversation(visitor, fake_slack)
        await visitor.say("anyone there?")
        await fake_slack.wait_for(
            lambda: any("waiting" in m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])), message="reminder"
        )
        await wait_until(lambda: _status(visitor, "closed"), timeout=15, what="inactivity close")
        await fake_slack.wait_for(
            lambda: any("without messages" in m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])),
            message="transcript says why it closed",
        )
        reminders = [m for m in fake_slack.replies("C0SUPPORT", root["ts"]) if "waiting" in m["text"]]
        assert len(reminders) == 1
    finally:
        await visitor.close()


async def _status(visitor: Visitor, status: str) -> bool:
    return (await visitor.messages())["status"] == status


async def test_agent_edits_and_deletes_reach_the_visitor(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    from tests.fakes.slack_payloads import message_changed_event, message_deleted_event

    root = await _conversation(visitor, fake_slack)
    replies = []
    for text in ("first answr", "second answer", "third answer"):
        _, payload = await agent.reply("C0SUPPORT", root["ts"], text)
        replies.append(payload["event"]["ts"])
    await wait_until(lambda: _count(visitor, 4), what="Alice joining and her three replies")

    def change(event: dict) -> tuple[bytes, dict[str, str]]:
        return signed_json(SIGNING_SECRET, event_callback(event))

    edit = message_changed_event("C0SUPPORT", replies[0], "first answer", "UAGENT", "first answr", thread_ts=root["ts"])
    assert (await agent.post_signed(*change(edit)))[0] == 200
    assert (await agent.post_signed(*change(edit)))[0] == 200  # a retry changes nothing more
    into_note = message_changed_event(
        "C0SUPPORT", replies[1], "// actually internal", "UAGENT", "second answer", thread_ts=root["ts"]
    )
    assert (await agent.post_signed(*change(into_note)))[0] == 200
    gone = message_deleted_event("C0SUPPORT", replies[2], "UAGENT", "third answer", thread_ts=root["ts"])
    assert (await agent.post_signed(*change(gone)))[0] == 200

    joined, *messages = (await visitor.messages())["messages"]
    assert (joined["seq"], joined["text"]) == (1, "Alice joined the chat")
    assert [m["seq"] for m in messages] == [2, 3, 4]
    assert messages[0]["text"] == "first answer" and "edited_at" in messages[0]
    assert messages[1] == {**messages[1], "text": "", "deleted": True}
    assert messages[2]["deleted"] is True and messages[2]["text"] == ""
    assert all("internal" not in m["text"] for m in messages)


async def _count(visitor: Visitor, n: int) -> bool:
    return len((await visitor.messages())["messages"]) >= n


async def test_transfer_moves_the_conversation_to_the_topics_channel(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    root = await _conversation(visitor, fake_slack)
    await visitor.say("I want to buy 40 bikes")
    await fake_slack.wait_for(lambda: fake_slack.replies("C0SUPPORT", root["ts"]), message="the line")
    await agent.reply("C0SUPPORT", root["ts"], "!transfer nowhere")
    await fake_slack.wait_for(
        lambda: any("topics: sales, support" in m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])),
        message="usage with the topic list",
    )
    await agent.reply("C0SUPPORT", root["ts"], "!transfer sales")
    await fake_slack.wait_for(
        lambda: any("Transferred to Sales by Alice" in m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])),
        message="the old thread is told",
    )
    new_root = await fake_slack.wait_for(lambda: root_of(fake_slack, "C0SALES"), message="a root in the sales channel")
    assert "Sales" in json.dumps(new_root["blocks"])
    await fake_slack.wait_for(
        lambda: any("I want to buy 40 bikes" in m["text"] for m in fake_slack.replies("C0SALES", new_root["ts"])),
        message="the history in the new thread",
    )
    await visitor.say("Still there?")
    await fake_slack.wait_for(
        lambda: any(m["text"] == "Still there?" for m in fake_slack.replies("C0SALES", new_root["ts"])),
        message="new lines go to the new thread",
    )
    assert not any(m["text"] == "Still there?" for m in fake_slack.replies("C0SUPPORT", root["ts"]))
    await agent.reply("C0SALES", new_root["ts"], "Sales here, hello!")
    texts = await wait_until(lambda: _agent_texts(visitor), what="the sales reply")
    assert texts == ["Sales here, hello!"]


async def _agent_texts(visitor: Visitor) -> list[str]:
    return [m["text"] for m in (await visitor.messages())["messages"] if m["author"]["role"] == "agent"]


async def test_snippets_links_and_goodbye(make_bridge: BridgeFactory, fake_slack: FakeSlack, tmp_path: Path) -> None:
    snippets = tmp_path / "snippets.toml"
    snippets.write_text('hello = "Hi! How can I help?"\nhours = "We are here Mon-Fri, 9 to 5."\n')
    bridge = await make_bridge(fake_slack, snippets_file=snippets)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        root = await _conversation(visitor, fake_slack)
        await agent.reply("C0SUPPORT", root["ts"], "!s hello")
        await agent.reply("C0SUPPORT", root["ts"], "!s nope")
        await agent.reply("C0SUPPORT", root["ts"], "!show https://acme.example/docs the docs")
        await fake_slack.wait_for(
            lambda: any(
                "No snippet 'nope'" in m["text"] and "hello, hours" in m["text"]
                for m in fake_slack.replies("C0SUPPORT", root["ts"])
            ),
            message="unknown snippet lists the known ones",
        )
        await agent.reply("C0SUPPORT", root["ts"], "!bye Thanks Ann, bye!")
        await wait_until(lambda: _status(visitor, "closed"), what="closed by !bye")
        assert await _agent_texts(visitor) == [
            "Hi! How can I help?",
            "the docs https://acme.example/docs",
            "Thanks Ann, bye!",
        ]


async def test_slash_command_answers_with_help(slack_bridge: RunningBridge, agent: SlackAgent) -> None:
    from tests.fakes.slack_payloads import signed_form, slash_command_form

    status, body = await agent.post_signed(
        *signed_form(SIGNING_SECRET, slash_command_form("/sitechat", "", "UAGENT", "C0SUPPORT"))
    )
    assert status == 200 and "!help" in body and "//" in body
    forged = signed_form("not-the-secret", slash_command_form("/sitechat", "", "UAGENT", "C0SUPPORT"))
    assert (await agent.post_signed(*forged))[0] == 401


async def test_a_refused_token_at_start_shows_in_readyz(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("auth.test", kind="error", error="invalid_auth")
    bridge = await make_bridge(fake_slack)
    visitor = Visitor(bridge.url)
    try:
        status, body, _ = await visitor.request("GET", "/readyz")
        assert status == 503
        assert any("auth.test failed" in p and "invalid_auth" in p for p in body["problems"]), body
    finally:
        await visitor.close()


async def test_transfer_while_lines_are_still_queued_for_the_old_thread(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    root = await _conversation(visitor, fake_slack)
    await slack_bridge.wait_idle()
    fake_slack.fail_for("chat.postMessage", seconds=2, status=500)  # Slack failing: the line waits
    await visitor.say("queued before the transfer")
    await agent.reply("C0SUPPORT", root["ts"], "!transfer sales")
    await slack_bridge.wait_idle(timeout=20)  # nothing may stay stuck behind the move
    old = [m["text"] for m in fake_slack.replies("C0SUPPORT", root["ts"])]
    assert old.count("queued before the transfer") == 1, old
    assert any("Transferred to Sales" in t for t in old)
    new_root = root_of(fake_slack, "C0SALES")
    assert new_root is not None
    assert any("queued before the transfer" in m["text"] for m in fake_slack.replies("C0SALES", new_root["ts"]))
