"""The team side: only Slack can speak for Slack, and what the team keeps to itself stays there."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.events import MessageEdited
from bridge.model import EndpointName, RemoteId, ThreadRef
from config.settings import Settings
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_changed_event, message_event, signed_json
from tests.harness import SIGNING_SECRET, RunningBridge, SlackAgent, Visitor, clean_environment, root_of, wait_until


async def _texts(visitor: Visitor) -> list[str]:
    return [m["text"] for m in (await visitor.messages())["messages"]]


JOINED = {"role": "system", "name": "Alice", "text": "Alice joined the chat"}


def _is_joined(message: dict[str, Any]) -> bool:
    """The line that tells the visitor who joined (CONTRACT §8), before the person's first reply."""
    author = message["author"]
    return (author["role"], author.get("name"), message["text"]) == (JOINED["role"], JOINED["name"], JOINED["text"])


async def test_signatures_from_the_future_or_malformed_are_refused(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    await visitor.start()
    root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="thread root")
    payload = event_callback(message_event("C0SUPPORT", "UAGENT", "forged", thread_ts=root["ts"]))
    now = int(time.time())
    refused = [
        signed_json(SIGNING_SECRET, payload, timestamp=now + 301),  # signed for later: a replay kept in stock
        signed_json(SIGNING_SECRET, payload, timestamp=now + 3600),
        signed_json(SIGNING_SECRET, payload, timestamp=now - 3600),
    ]
    body, headers = signed_json(SIGNING_SECRET, payload)
    refused.append((body, {**headers, "X-Slack-Signature": headers["X-Slack-Signature"].replace("v0=", "v1=")}))
    refused.append((body, {**headers, "X-Slack-Signature": "v0=" + "0" * 64}))
    refused.append((body + b" ", headers))  # the body changed after signing
    for body, headers in refused:
        assert (await agent.post_signed(body, headers))[0] == 401, headers
    assert await _texts(visitor) == []
    # a body too large for any Slack event is refused before it is read through
    assert (await agent.post_signed(b"x" * (2 * 1024 * 1024), headers))[0] == 413


async def test_a_malformed_timestamp_is_a_bad_signature(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    await visitor.start()
    root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="thread root")
    payload = event_callback(message_event("C0SUPPORT", "UAGENT", "forged", thread_ts=root["ts"]))
    body, headers = signed_json(SIGNING_SECRET, payload)
    for stamp in ("not-a-number", "", "1e9", "²"):
        assert (await agent.post_signed(body, {**headers, "X-Slack-Request-Timestamp": stamp}))[0] == 401, stamp
    assert await _texts(visitor) == []


async def test_a_long_agent_message_gets_through(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    """Slack posts a 40,000-character message as text *and* blocks: far over the widget API's 64 KiB."""
    await visitor.start()
    root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="thread root")
    long_text = "é" * 39_000
    body, headers = signed_json(
        SIGNING_SECRET, event_callback(message_event("C0SUPPORT", "UAGENT", long_text, thread_ts=root["ts"]))
    )
    assert len(body) > 64 * 1024
    assert (await agent.post_signed(body, headers))[0] == 200
    assert await wait_until(lambda: _texts(visitor), what="the long reply") == [JOINED["text"], long_text]


async def test_notes_and_commands_never_reach_the_visitor_even_edited_or_with_files(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    await visitor.start()
    root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="thread root")
    thread = root["ts"]
    live = await visitor.socket()
    screenshot = {
        "id": "F0SHOT",
        "name": "customer-card.png",
        "title": "customer card",
        "mimetype": "image/png",
        "url_private": "https://files.slack.example/F0SHOT/customer-card.png",
        "permalink_public": "https://slack-files.example/T0-F0SHOT-secret",
    }

    async def post(event: dict) -> None:
        status, _ = await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(event)))
        assert status == 200  # acknowledged, so Slack does not retry it

    note = message_event("C0SUPPORT", "UAGENT", "// SECRET-1 internal: card on file", thread_ts=thread)
    await post(note)
    await post(message_event("C0SUPPORT", "UAGENT", "   // SECRET-2 indented note", thread_ts=thread))
    await post(message_event("C0SUPPORT", "UAGENT", "// SECRET-3 with a file", thread_ts=thread, files=[screenshot]))
    await post(message_event("C0SUPPORT", "UAGENT", "!help SECRET-4", thread_ts=thread, files=[screenshot]))
    await post(message_event("C0SUPPORT", "UAGENT", "// SECRET-5", thread_ts=thread, subtype="thread_broadcast"))
    # the note edited into something that reads like an answer: still the team's own
    await post(
        message_changed_event(
            "C0SUPPORT", note["ts"], "SECRET-6 now looks public", "UAGENT", previous_text=note["text"], thread_ts=thread
        )
    )
    # an answer the visitor saw, edited into a note afterwards: the note's words must not follow it
    shown = message_event("C0SUPPORT", "UAGENT", "Let me check that for you.", thread_ts=thread)
    await post(shown)
    await post(
        message_changed_event(
            "C0SUPPORT",
            shown["ts"],
            "// SECRET-7 they seem annoyed",
            "UAGENT",
            previous_text=shown["text"],
            thread_ts=thread,
        )
    )
    await post(
        message_changed_event(
            "C0SUPPORT", shown["ts"], "SECRET-8 edited answer", "UAGENT", previous_text=shown["text"], thread_ts=thread
        )
    )
    await agent.reply("C0SUPPORT", thread, "Here is the answer.")

    await wait_until(lambda: _has(visitor, "Here is the answer."), what="the last, public reply")
    await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["text"] == "Here is the answer.")
    await slack_bridge.wait_idle()
    listing = (await visitor.messages())["messages"]
    everything = " ".join(str(m) for m in [*listing, *live.frames])
    assert "SECRET" not in everything, listing
    assert "F0SHOT" not in everything and "customer-card" not in everything
    # Alice joined once, before anything she said reached the visitor
    joined, first, last = listing
    assert _is_joined(joined) and not any(_is_joined(m) for m in (first, last))
    # the answer edited into a note is either left as it was shown or taken back (when edits are relayed)
    assert first["text"] == "Let me check that for you." or (first.get("deleted") and first["text"] == "")
    assert last["text"] == "Here is the answer."
    # the help the command asked for went to the thread, not to the visitor
    assert any("!close" in m["text"] for m in fake_slack.replies("C0SUPPORT", thread))
    await live.close()


async def test_an_edit_into_a_note_takes_the_reply_back_live(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    """What the core decides about an agent's edit reaches an open widget as contract frames, never the note."""
    assert slack_bridge.runtime is not None
    core = slack_bridge.runtime.conversations
    await visitor.start()
    root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="thread root")
    live = await visitor.socket()
    replies = []
    for text in ("First answer.", "Second answer."):
        event = message_event("C0SUPPORT", "UAGENT", text, thread_ts=root["ts"])
        assert (await agent.post_signed(*signed_json(SIGNING_SECRET, event_callback(event))))[0] == 200
        replies.append(event)
        await live.wait_frame(lambda f, t=text: f["type"] == "message" and f["message"]["text"] == t)
    shown = [m["message"] for m in live.frames if m["type"] == "message"]
    assert _is_joined(shown[0]) and shown[0]["seq"] == 1  # Alice's face before her first answer
    ids = [m["id"] for m in shown[1:]]
    thread = ThreadRef(f"C0SUPPORT:{root['ts']}")

    def edit(n: int, text: str, key: str) -> MessageEdited:
        original = RemoteId(f"C0SUPPORT:{replies[n]['ts']}")
        return MessageEdited(EndpointName("slack"), thread, RemoteId(key), original=original, text=text)

    await core.handle(edit(0, "First answer, corrected.", "e1"))
    updated = await live.wait_frame(lambda f: f["type"] == "message_updated")
    assert updated["message"]["id"] == ids[0] and updated["message"]["text"] == "First answer, corrected."
    assert updated["message"]["seq"] == 2 and updated["message"]["edited_at"]
    await core.handle(edit(1, "// SECRET-9 they are a difficult customer", "e2"))
    deleted = await live.wait_frame(lambda f: f["type"] == "message_deleted")
    assert deleted == {"type": "message_deleted", "id": ids[1]}
    await core.handle(edit(1, "SECRET-10 public again?", "e3"))  # taken back stays taken back
    await live.ws.send_json({"type": "ping"})
    await live.wait_frame(lambda f: f["type"] == "pong")
    listing = (await visitor.messages())["messages"]
    assert [(m["seq"], m["text"], bool(m.get("deleted"))) for m in listing] == [
        (1, JOINED["text"], False),
        (2, "First answer, corrected.", False),
        (3, "", True),
    ]
    assert "SECRET" not in str(live.frames) + str(listing)
    await live.close()


async def _has(visitor: Visitor, text: str) -> bool:
    return text in await _texts(visitor)


def test_http_mode_without_a_signing_secret_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token="xoxb-1-2-abc",
            sites={"acme": {"name": "Acme", "origins": ["https://acme.example"], "slack_channel": "C0SUPPORT"}},
        )
    env_file = tmp_path / "http-mode.env"
    env_file.write_text(
        "SLACK_BOT_TOKEN=xoxb-1-2-abc\n"
        "SITECHAT_SITES__ACME__NAME=Acme\n"
        "SITECHAT_SITES__ACME__ORIGINS=https://acme.example\n"
        "SITECHAT_SITES__ACME__SLACK_CHANNEL=C0SUPPORT\n"
        f"SITECHAT_DATABASE_URL=sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}\n"
    )
    env_file.chmod(0o600)
    clean = clean_environment()
    result = subprocess.run(
        [sys.executable, "-m", "sitechat", "run", "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result
    assert "SLACK_SIGNING_SECRET" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "db.sqlite").exists(), "it started doing work before refusing"
