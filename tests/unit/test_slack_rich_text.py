"""Slack ↔ the neutral form (plain text + HTML subset), one table per direction. Pure.

From Slack: the ``rich_text`` blocks (what the person saw) and, without them, the mrkdwn ``text``.
To Slack: a Matrix staff member's HTML as mrkdwn.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.slack.format import Formatted, agent_message
from adapters.slack.mrkdwn import html_mrkdwn
from adapters.slack.rich_text import emoji_for

A = 'target="_blank" rel="noopener noreferrer nofollow"'
USERS = {"U1": "Alice", "U2": "Bob"}


def rt(*elements: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "rich_text", "block_id": "b1", "elements": list(elements)}]


def section(*inline: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich_text_section", "elements": list(inline)}


def text(value: str, **style: bool) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "text", "text": value}
    if style:
        element["style"] = style
    return element


def bullets(*items: str, style: str = "bullet", indent: int = 0) -> dict[str, Any]:
    return {"type": "rich_text_list", "style": style, "indent": indent, "elements": [section(text(i)) for i in items]}


# -- rich_text blocks → (text, html) -----------------------------------------------------------

RICH_TEXT: list[tuple[str, list[dict[str, Any]], Formatted]] = [
    ("plain", rt(section(text("hello there"))), Formatted("hello there")),
    ("two lines", rt(section(text("one\ntwo"))), Formatted("one\ntwo")),
    ("bold", rt(section(text("Hi "), text("Ann", bold=True))), Formatted("Hi Ann", "<p>Hi <strong>Ann</strong></p>")),
    (
        "nested marks",
        rt(section(text("all", bold=True, italic=True, strike=True))),
        Formatted("all", "<p><strong><em><del>all</del></em></strong></p>"),
    ),
    ("code span with *", rt(section(text("a*b*c", code=True))), Formatted("a*b*c", "<p><code>a*b*c</code></p>")),
    (
        "link",
        rt(section({"type": "link", "url": "https://acme.example/docs?a=1&b=2", "text": "the docs"})),
        Formatted(
            "the docs (https://acme.example/docs?a=1&b=2)",
            f'<p><a href="https://acme.example/docs?a=1&amp;b=2" {A}>the docs</a></p>',
        ),
    ),
    (
        "link without label",
        rt(section({"type": "link", "url": "https://acme.example/"})),
        Formatted("https://acme.example/", f'<p><a href="https://acme.example/" {A}>https://acme.example/</a></p>'),
    ),
    (
        "link with | and > in its label",
        rt(section({"type": "link", "url": "https://x.example", "text": "a | b > c"})),
        Formatted("a | b > c (https://x.example)", f'<p><a href="https://x.example" {A}>a | b &gt; c</a></p>'),
    ),
    (
        "a javascript: link is text",
        rt(section({"type": "link", "url": "javascript:alert(1)", "text": "x"})),
        Formatted("x"),
    ),
    ("user", rt(section(text("hi "), {"type": "user", "user_id": "U1"})), Formatted("hi @Alice")),
    ("unknown user", rt(section({"type": "user", "user_id": "U9"})), Formatted("@U9")),
    ("channel", rt(section({"type": "channel", "channel_id": "C1"})), Formatted("#general")),
    ("broadcast", rt(section({"type": "broadcast", "range": "here"}), section(text("look"))), Formatted("@here\nlook")),
    ("user group", rt(section({"type": "usergroup", "usergroup_id": "S1"})), Formatted("@team")),
    ("emoji", rt(section({"type": "emoji", "name": "tada", "unicode": "1f389"})), Formatted("🎉")),
    (
        "emoji with a tone",
        rt(section({"type": "emoji", "name": "wave", "unicode": "1f44b", "skin_tone": 2})),
        Formatted("👋🏻"),
    ),
    ("emoji by name and tone", rt(section({"type": "emoji", "name": "wave::skin-tone-4"})), Formatted("👋🏽")),
    ("custom emoji", rt(section({"type": "emoji", "name": "partyparrot"})), Formatted(":partyparrot:")),
    (
        "date",
        rt(section({"type": "date", "timestamp": 1, "format": "{date}", "fallback": "Jan 1st"})),
        Formatted("Jan 1st"),
    ),
    ("text is not markup", rt(section(text("<b>hi</b> &amp; <@U1>"))), Formatted("<b>hi</b> &amp; <@U1>")),
    (
        "list",
        rt(section(text("Steps:\n")), bullets("one", "two")),
        Formatted("Steps:\n• one\n• two", "<p>Steps:</p><ul><li>one</li><li>two</li></ul>"),
    ),
    (
        "nested ordered list",
        rt(bullets("a"), bullets("x", "y", style="ordered", indent=1), bullets("b")),
        Formatted("• a\n  1. x\n  2. y\n• b", "<ul><li>a<ol><li>x</li><li>y</li></ol></li><li>b</li></ul>"),
    ),
    (
        "quote",
        rt(
            {"type": "rich_text_quote", "elements": [text("quoted "), text("bit", italic=True)]}, section(text("reply"))
        ),
        Formatted("quoted bit\nreply", "<blockquote>quoted <em>bit</em></blockquote><p>reply</p>"),
    ),
    (
        "preformatted",
        rt({"type": "rich_text_preformatted", "elements": [text("x = *y*\n  <z>")]}),
        Formatted("x = *y*\n  <z>", "<pre>x = *y*\n  &lt;z&gt;</pre>"),
    ),
]


@pytest.mark.parametrize(("case", "blocks", "expected"), RICH_TEXT, ids=[c[0] for c in RICH_TEXT])
def test_rich_text(case: str, blocks: list[dict[str, Any]], expected: Formatted) -> None:
    # the text beside the blocks names the channel and group (Slack's clients send both)
    assert agent_message("ignored <#C1|general> <!subteam^S1|@team>", blocks, USERS) == expected


# -- mrkdwn text (no blocks) → (text, html) ----------------------------------------------------

MRKDWN: dict[str, Formatted] = {
    "plain words": Formatted("plain words"),
    "*done*": Formatted("done", "<p><strong>done</strong></p>"),
    "_it_ ~gone~": Formatted("it gone", "<p><em>it</em> <del>gone</del></p>"),
    "*bold _both_*": Formatted("bold both", "<p><strong>bold <em>both</em></strong></p>"),
    "`a*b*c` and *d*": Formatted("a*b*c and d", "<p><code>a*b*c</code> and <strong>d</strong></p>"),
    "snake_case_name x*y*z": Formatted("snake_case_name x*y*z"),
    "*not bold *": Formatted("*not bold *"),
    "```\nblock *x* &lt;y&gt;\n```": Formatted("block *x* <y>", "<pre>block *x* &lt;y&gt;</pre>"),
    "```unclosed": Formatted("```unclosed"),
    "&gt; quoted\n&gt; more\nreply": Formatted(
        "quoted\nmore\nreply", "<blockquote>quoted<br>more</blockquote><p>reply</p>"
    ),
    "• one\n• two": Formatted("• one\n• two", "<ul><li>one</li><li>two</li></ul>"),
    "1. first\n2. second": Formatted("1. first\n2. second", "<ol><li>first</li><li>second</li></ol>"),
    "• a\n    ◦ b": Formatted("• a\n  • b", "<ul><li>a<ul><li>b</li></ul></li></ul>"),
    "<https://x.example/?a=1&amp;b=2|the docs>": Formatted(
        "the docs (https://x.example/?a=1&b=2)", f'<p><a href="https://x.example/?a=1&amp;b=2" {A}>the docs</a></p>'
    ),
    "<https://x.example|a | b &gt; c>": Formatted(
        "a | b > c (https://x.example)", f'<p><a href="https://x.example" {A}>a | b &gt; c</a></p>'
    ),
    "<https://x.example>": Formatted(
        "https://x.example", f'<p><a href="https://x.example" {A}>https://x.example</a></p>'
    ),
    "*<https://x.example|bold link>*": Formatted(
        "bold link (https://x.example)", f'<p><strong><a href="https://x.example" {A}>bold link</a></strong></p>'
    ),
    "<javascript:alert(1)|click>": Formatted("click"),
    "<mailto:a@b.example|mail me>": Formatted("mail me"),
    "hi <@U1> and <@U2|bobby>": Formatted("hi @Alice and @bobby"),
    "<@U9>": Formatted("@U9"),
    "<#C1|general> <#C2>": Formatted("#general #C2"),
    "<!here> <!channel> <!everyone>": Formatted("@here @channel @everyone"),
    "<!subteam^S1|@team>": Formatted("@team"),
    "<!date^1392734382^{date}|Feb 18, 2014>": Formatted("Feb 18, 2014"),
    ":tada: :+1: :wave::skin-tone-2:": Formatted("🎉 👍 👋🏻"),
    ":not_an_emoji_name:": Formatted(":not_an_emoji_name:"),
    "`:tada:` stays": Formatted(":tada: stays", "<p><code>:tada:</code> stays</p>"),
    "a &amp; b &lt;tag&gt;": Formatted("a & b <tag>"),
    "&amp;lt; twice escaped": Formatted("&lt; twice escaped"),
    "&lt;b&gt;x&lt;/b&gt;": Formatted("<b>x</b>"),
}


@pytest.mark.parametrize(("given", "expected"), MRKDWN.items(), ids=range(len(MRKDWN)))
def test_mrkdwn(given: str, expected: Formatted) -> None:
    assert agent_message(given, None, USERS) == expected


# -- the subset → Slack mrkdwn (a Matrix staff member's formatting) ----------------------------

TO_MRKDWN: dict[str, str] = {
    "<p>plain</p>": "plain",
    "<p>Hi <strong>Ann</strong> &amp; <em>co</em></p>": "Hi *Ann* &amp; _co_",
    "<del>x</del> <code>*y*</code>": "~x~ `*y*`",
    "<p>&lt;!here&gt; &lt;@U1&gt; &lt;https://x.example|y&gt;</p>": "&lt;!here&gt; &lt;@U1&gt; &lt;https://x.example|y&gt;",
    f'<a href="https://x.example/?a=1&amp;b=2" {A}>docs</a>': "<https://x.example/?a=1&amp;b=2|docs>",
    f'<a href="https://x.example" {A}>https://x.example</a>': "<https://x.example>",
    f'<a href="https://x.example" {A}>a | b &gt; c</a>': "<https://x.example|a | b &gt; c>",
    "<ul><li>one</li><li>two</li></ul>": "• one\n• two",
    "<ol><li>a</li><li>b<ul><li>c</li></ul></li></ol>": "1. a\n2. b\n    • c",
    "<blockquote>q<br>r</blockquote><p>after</p>": "> q\n> r\n\nafter",
    "<pre>a &lt; b\n  c</pre>": "```\na &lt; b\n  c\n```",
    "line<br>break": "line\nbreak",
    "<strong> </strong>x": " x",
}


@pytest.mark.parametrize(("given", "expected"), TO_MRKDWN.items(), ids=range(len(TO_MRKDWN)))
def test_html_to_mrkdwn(given: str, expected: str) -> None:
    assert html_mrkdwn(given) == expected


EMOJI: dict[tuple[str, int | None, str | None], str] = {
    ("wave", None, None): "👋",
    ("wave", 2, None): "👋🏻",
    ("wave", 6, None): "👋🏿",
    ("wave::skin-tone-3", None, None): "👋🏼",
    ("+1", 5, "1f44d"): "👍🏾",
    ("thumbsup", None, "1f44d-1f3fd"): "👍🏽",
    ("man-running", 2, None): "🏃🏻\u200d♂️",
    ("partyparrot", None, None): ":partyparrot:",
}


@pytest.mark.parametrize(("given", "expected"), EMOJI.items(), ids=range(len(EMOJI)))
def test_emoji(given: tuple[str, int | None, str | None], expected: str) -> None:
    assert emoji_for(*given) == expected


def test_tables_are_big_enough() -> None:
    assert len(RICH_TEXT) >= 24 and len(MRKDWN) >= 30 and len(TO_MRKDWN) >= 13 and len(EMOJI) >= 8
