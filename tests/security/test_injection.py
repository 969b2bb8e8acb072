"""What a visitor types never acts in Slack, and what an agent types is only ever text for the widget."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, SlackAgent, Visitor, root_of

MENTIONS = "<!channel> <!here> <!everyone> <@U0ADMIN> <@W0ADMIN|boss> <#C0GENERAL> <!subteam^S0TEAM|@support>"
LINK = "<https://evil.example/login|https://acme.example/login>"
FORMATTING = ["*bold*", "_italic_", "~struck~", "`code`"]
HOSTILE = f"{MENTIONS} {LINK} {' '.join(FORMATTING)} &lt;!here&gt;"
# anything Slack would read as a control sequence: a mention, a channel, a special command, a link
SLACK_SPECIAL = re.compile(r"<[!@#]|<(?:https?|mailto|ftp|javascript):", re.I)


def _mrkdwn_texts(blocks: list[dict[str, Any]]) -> Iterator[str]:
    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
                yield value["text"]
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    return walk(blocks)


async def _hostile_conversation(bridge: RunningBridge, slack: FakeSlack) -> Visitor:
    assert bridge.runtime is not None
    bridge.runtime.endpoints["slack"].pacer.interval = 0.01  # type: ignore[attr-defined]  # the fake has no limit
    visitor = Visitor(bridge.url)
    await visitor.start(
        name=f"Mallory {MENTIONS} {' '.join(FORMATTING)}",
        email="mal_lory*x@evil.example",
        page={
            "url": "https://acme.example/?q=<!here>&r=<@U0ADMIN>",
            "title": f"{MENTIONS} *Pricing*",
            "referrer": f"https://evil.example/<!channel>/{LINK}",
        },
        locale="<!here>",
        timezone="<@U0ADMIN>",
    )
    assert (await visitor.say(HOSTILE, "h1"))[0] == 201
    live = await visitor.socket()
    await live.ws.send_json({"type": "page", "url": "https://acme.example/<!channel>", "title": "<@U0ADMIN> _x_"})
    await live.ws.send_json({"type": "ping"})
    await live.wait_frame(lambda f: f["type"] == "pong")
    await live.close()
    base = f"/api/v1/conversations/{visitor.conversation_id}"
    assert (await visitor.request("POST", f"{base}/close"))[0] == 200
    assert (await visitor.request("POST", f"{base}/rating", {"score": 2, "comment": HOSTILE}))[0] == 200
    status, _, _ = await visitor.request(
        "POST",
        "/api/v1/sites/acme/offline-messages",
        {"name": f"Olga {MENTIONS}", "email": "olga@example.com", "text": HOSTILE},
    )
    assert status == 202
    await bridge.wait_idle()
    await slack.wait_for(lambda: root_of(slack, visitor="Olga"), message="the offline root")
    return visitor


async def test_visitor_input_never_mentions_or_links_in_slack(
    slack_bridge: RunningBridge, fake_slack: FakeSlack
) -> None:
    visitor = await _hostile_conversation(slack_bridge, fake_slack)
    try:
        calls = [c for c in fake_slack.calls if c.method in ("chat.postMessage", "chat.update")]
        assert len(calls) >= 7  # two roots, the message, the transcript, the rating, the offline text, root updates
        for call in calls:
            params = call.params
            assert not params.get("link_names"), params
            assert params.get("parse") in (None, "none"), params
            if call.method == "chat.postMessage":
                assert params.get("unfurl_links") in (False, "false") and params.get("unfurl_media") in (False, "false")
            # what Slack parses: the text, and mrkdwn objects in blocks (plain_text objects are shown as they are)
            blocks = params.get("blocks") or []
            blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
            for text in [str(params.get("text", "")), *_mrkdwn_texts(blocks)]:
                assert not SLACK_SPECIAL.search(text), (call.method, text)
        # the visitor's own message is posted as plain text: no mrkdwn at all
        (message_post,) = [
            c for c in calls if "Mallory" in str(c.params.get("username", "")) and c.params.get("thread_ts")
        ]
        assert message_post.params.get("mrkdwn") in (False, "false")
        # and it still reads as what the visitor typed (escaped, not mangled)
        assert (
            "&lt;!channel&gt;" in message_post.params["text"] and "&amp;lt;!here&amp;gt;" in message_post.params["text"]
        )
    finally:
        await visitor.close()


async def test_the_visitor_name_cannot_mention_as_the_posting_username(
    slack_bridge: RunningBridge, fake_slack: FakeSlack
) -> None:
    visitor = await _hostile_conversation(slack_bridge, fake_slack)
    try:
        names = {c.params.get("username") for c in fake_slack.calls_to("chat.postMessage") if c.params.get("username")}
        assert names, "the visitor's lines were not posted under the visitor's name"
        for name in names:
            assert "<" not in name and ">" not in name, name
            assert len(name) <= 80 and name.isprintable()
    finally:
        await visitor.close()


async def test_visitor_values_in_the_root_blocks_cannot_format(
    slack_bridge: RunningBridge, fake_slack: FakeSlack
) -> None:
    visitor = await _hostile_conversation(slack_bridge, fake_slack)
    try:
        roots = [
            c.params
            for c in fake_slack.calls
            if c.method in ("chat.postMessage", "chat.update") and c.params.get("blocks")
        ]
        assert roots
        for params in roots:
            blocks = params["blocks"] if isinstance(params["blocks"], list) else json.loads(params["blocks"])
            for text in _mrkdwn_texts(blocks):
                for marked in FORMATTING:
                    assert marked not in text, (marked, text)
    finally:
        await visitor.close()


async def test_agent_text_reaches_the_widget_as_plain_text(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor, agent: SlackAgent
) -> None:
    await visitor.start()
    root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="thread root")
    live = await visitor.socket()
    # what Slack sends for an agent who typed HTML and links: &, < and > arrive escaped, links in <url|label>
    typed = (
        "&lt;img src=x onerror=alert(1)&gt; &lt;b&gt;bold&lt;/b&gt; "
        "<javascript:alert(1)|click me> <https://acme.example/help|help page> <!here>"
    )
    await agent.reply("C0SUPPORT", root["ts"], typed)
    frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
    text = frame["message"]["text"]
    assert "<img src=x onerror=alert(1)> <b>bold</b>" in text  # the characters, unchanged: the widget shows them
    assert "help page (https://acme.example/help)" in text
    assert "click me help page" in text  # a link that is no web link is just its label
    # the formatting (CONTRACT §7) is the sanitized subset: the typed markup is text in it, one web link
    html = frame["message"]["html"]
    assert "&lt;img src=x onerror=alert(1)&gt; &lt;b&gt;bold&lt;/b&gt;" in html
    link = '<a href="https://acme.example/help" target="_blank" rel="noopener noreferrer nofollow">help page</a>'
    assert link in html
    assert "javascript" not in html and "<img" not in html and "<b>" not in html
    status, listing, headers = await visitor.request("GET", f"/api/v1/conversations/{visitor.conversation_id}/messages")
    assert status == 200
    # Alice's face first (CONTRACT §8), then what she typed
    joined, reply = listing["messages"]
    assert joined["author"]["role"] == "system" and joined["author"]["name"] == "Alice"
    assert joined["text"] == "Alice joined the chat" and joined["seq"] < reply["seq"]
    assert reply["text"] == text
    for message in (joined, reply):
        assert set(message) <= {
            "id",
            "seq",
            "conversation_id",
            "author",
            "text",
            "created_at",
            "client_msg_id",
            "edited_at",
            "deleted",
            "attachments",
            "html",  # the sanitized subset of CONTRACT §7, only for an agent's formatting
        }, "no other rendition of a message is ever served"
    assert "html" not in joined
    assert headers["Content-Type"].startswith("application/json")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    await live.close()


def _directives(csp: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = set(words[1:])
    return out


async def test_pages_and_the_script_send_a_strict_policy_and_the_usual_headers(
    slack_bridge: RunningBridge, visitor: Visitor
) -> None:
    status, _, headers = await visitor.request("GET", "/demo")
    assert status == 200
    csp = _directives(headers["Content-Security-Policy"])
    assert csp["default-src"] == {"'none'"}
    assert csp["script-src"] == {"'self'"}, "no inline scripts, no eval, no other hosts"
    assert csp["base-uri"] == {"'none'"} and csp["frame-ancestors"] == {"'none'"}
    assert "object-src" not in csp or csp["object-src"] == {"'none'"}
    assert all("*" not in sources and "data:" not in sources for name, sources in csp.items() if name != "img-src")
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in ("no-referrer", "strict-origin-when-cross-origin", "same-origin")

    status, _, headers = await visitor.request("GET", "/widget.js")
    assert status == 200 and headers["Content-Type"].startswith("application/javascript")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"  # other sites embed it
    assert headers["Referrer-Policy"] == "no-referrer"

    for path in ("/api/v1/sites/acme", "/api/v1/sites/nope", "/healthz", "/metrics", "/api/v1/openapi.json"):
        status, _, headers = await visitor.request("GET", path)
        assert _directives(headers["Content-Security-Policy"])["default-src"] == {"'none'"}, path
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY", path


async def test_the_demo_page_escapes_what_it_fills_in(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack, site={"name": '"><script>alert(1)</script>'})
    visitor = Visitor(bridge.url)
    try:
        status, html, _ = await visitor.request("GET", "/demo")
        assert status == 200 and "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;" in html or "&#x27;" in html or "&quot;" in html
    finally:
        await visitor.close()
