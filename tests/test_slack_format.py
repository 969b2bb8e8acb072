"""Slack text conversion, one table per direction."""

from __future__ import annotations

import pytest

from adapters.slack.events import thread_reply
from adapters.slack.format import display_name, escape, to_plain

TO_SLACK = {
    "hello": "hello",
    "<!channel> hi": "&lt;!channel&gt; hi",
    "<!here>": "&lt;!here&gt;",
    "<@U123>": "&lt;@U123&gt;",
    "<!subteam^S123|@team>": "&lt;!subteam^S123|@team&gt;",
    "<https://x.example|y>": "&lt;https://x.example|y&gt;",
    "a & b": "a &amp; b",
    "&lt; stays text": "&amp;lt; stays text",
    "x > y < z": "x &gt; y &lt; z",
}

NAMES = {"U1": "Alice", "U2": "Bob"}
FROM_SLACK = {
    "plain": "plain",
    "hi <@U1>": "hi @Alice",
    "<@U3>": "@U3",
    "<@U2|bobby>": "@bobby",
    "see <#C1|general>": "see #general",
    "<https://a.example/x|the docs>": "the docs (https://a.example/x)",
    "<https://a.example/x>": "https://a.example/x",
    "<mailto:a@b.example|a@b.example>": "a@b.example",
    "<!here> look": "@here look",
    "thanks :wave: :+1:": "thanks 👋 👍",
    ":not_an_emoji_name:": ":not_an_emoji_name:",
    "a &amp; b &lt;tag&gt;": "a & b <tag>",
    "&amp;lt;": "&lt;",
    "*bold* _it_": "bold it",  # marks removed (CONTRACT §7)
}


@pytest.mark.parametrize(("given", "expected"), TO_SLACK.items())
def test_escape_makes_visitor_text_inert(given: str, expected: str) -> None:
    assert escape(given) == expected


@pytest.mark.parametrize(("given", "expected"), FROM_SLACK.items())
def test_agent_text_to_plain(given: str, expected: str) -> None:
    assert to_plain(given, NAMES) == expected


def test_display_name_is_one_clean_line() -> None:
    assert display_name("Ann\n\x00Smith  ") == "Ann Smith"
    assert display_name("") == "Visitor"
    assert len(display_name("x" * 200)) == 80


EVENTS: dict[str, tuple[dict, bool]] = {
    "thread reply": ({"user": "U1", "ts": "2", "thread_ts": "1", "channel": "C", "text": "hi"}, True),
    "broadcast reply": (
        {"subtype": "thread_broadcast", "user": "U1", "ts": "2", "thread_ts": "1", "channel": "C"},
        True,
    ),
    "top level": ({"user": "U1", "ts": "1", "channel": "C", "text": "hi"}, False),
    "root itself": ({"user": "U1", "ts": "1", "thread_ts": "1", "channel": "C"}, False),
    "our bot": ({"user": "UBOT", "bot_id": "B1", "ts": "2", "thread_ts": "1", "channel": "C"}, False),
    "own user": ({"user": "UBOT", "ts": "2", "thread_ts": "1", "channel": "C"}, False),
    "edit": ({"subtype": "message_changed", "ts": "3", "channel": "C", "message": {}}, False),
    "delete": ({"subtype": "message_deleted", "ts": "3", "channel": "C"}, False),
    "join": ({"subtype": "channel_join", "user": "U1", "ts": "2", "thread_ts": "1", "channel": "C"}, False),
}


@pytest.mark.parametrize("case", EVENTS)
def test_which_events_are_replies(case: str) -> None:
    event, is_reply = EVENTS[case]
    assert (thread_reply(event, own_user_id="UBOT", own_bot_id="B1") is not None) is is_reply
