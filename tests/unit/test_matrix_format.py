"""The Matrix format converters, one table per direction (pure: no homeserver)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.matrix.format import (
    MESSAGE_CHUNK,
    NOTICE_CHUNK,
    edit_content,
    is_staff,
    notice_content,
    notice_contents,
    reply_target,
    root_content,
    split_ref,
    staff_message,
    staff_text,
    thread_ref,
    thread_relation,
    visitor_content,
    visitor_contents,
)
from bridge.model import Conversation, ConversationId, PageView, Status, Visitor

# -- to Matrix: (author, text) → the content the bot posts --------------------------------------

TO_MATRIX: dict[tuple[str, str], dict[str, Any]] = {
    ("Ann", "Hello"): {
        "msgtype": "m.text",
        "body": "Ann: Hello",
        "format": "org.matrix.custom.html",
        "formatted_body": "<strong>Ann</strong>: Hello",
        "m.mentions": {},
    },
    ("Ann", "@room <b>hi</b> & <script>x</script>"): {
        "msgtype": "m.text",
        "body": "Ann: @room <b>hi</b> & <script>x</script>",
        "format": "org.matrix.custom.html",
        "formatted_body": "<strong>Ann</strong>: @room &lt;b&gt;hi&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;",
        "m.mentions": {},
    },
    ('<img src=x onerror="alert(1)">', "two\nlines"): {
        "msgtype": "m.text",
        "body": '<img src=x onerror="alert(1)">: two\nlines',
        "format": "org.matrix.custom.html",
        "formatted_body": "<strong>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</strong>: two<br>lines",
        "m.mentions": {},
    },
    ("Alice", "see [docs](https://acme.example/docs) *now*"): {
        "msgtype": "m.text",
        "body": "Alice: see [docs](https://acme.example/docs) *now*",
        "format": "org.matrix.custom.html",
        "formatted_body": "<strong>Alice</strong>: see [docs](https://acme.example/docs) *now*",
        "m.mentions": {},
    },
}


@pytest.mark.parametrize(("line", "expected"), TO_MATRIX.items(), ids=[t for _, t in TO_MATRIX])
def test_to_matrix(line: tuple[str, str], expected: dict[str, Any]) -> None:
    assert visitor_content(*line) == expected


# -- from Matrix: a staff member's content → the plain text the visitor reads --------------------

FROM_MATRIX: list[tuple[dict[str, Any], str]] = [
    ({"msgtype": "m.text", "body": "Hi Ann, how can I help?"}, "Hi Ann, how can I help?"),
    ({"msgtype": "m.text", "body": "  spaced  \n"}, "spaced"),
    # a rich reply's quoted fallback goes; the person's own text stays
    (
        {
            "msgtype": "m.text",
            "body": "> <@sitechat:example.org> Ann: where is my order?\n> second line\n\nIt ships today",
        },
        "It ships today",
    ),
    # a quote the person typed (no blank line after it) is theirs
    ({"msgtype": "m.text", "body": "> you said\nyes"}, "> you said\nyes"),
    # what looks like HTML in a body without formatted_body is just text
    ({"msgtype": "m.text", "body": "use <b> & **x**"}, "use <b> & **x**"),
    # the HTML is what the person saw (the body may hold their Markdown): the text comes from it
    (
        {"body": "use **x**", "format": "org.matrix.custom.html", "formatted_body": "use <b>x</b>"},
        "use x",
    ),
    # HTML only: sanitised to text, links kept as URLs, reply quote and scripts gone, entities decoded
    (
        {
            "msgtype": "m.text",
            "body": "",
            "format": "org.matrix.custom.html",
            "formatted_body": (
                "<mx-reply><blockquote>quoted</blockquote></mx-reply><p>Hi <b>Ann</b> &amp; co</p>"
                '<p>See <a href="https://acme.example/docs?a=1&amp;b=2" onclick="evil()">the docs</a> or '
                '<a href="https://acme.example/">https://acme.example/</a></p>'
                "<ul><li>one</li><li>two</li></ul><script>alert(1)</script>&lt;not a tag&gt;"
            ),
        },
        "Hi Ann & co\nSee the docs (https://acme.example/docs?a=1&b=2) or https://acme.example/\n• one\n• two\n"
        "<not a tag>",
    ),
    (
        {"body": "", "format": "org.matrix.custom.html", "formatted_body": '<a href="javascript:alert(1)">x</a>'},
        "x",
    ),
    ({"body": "", "format": "org.matrix.custom.html", "formatted_body": "line<br/>break"}, "line\nbreak"),
    # a file says nothing but its caption (the file itself goes as an attachment, never as a homeserver link)
    ({"msgtype": "m.file", "body": "invoice.pdf", "url": "mxc://example.org/AbC123"}, ""),
    ({"msgtype": "m.image", "body": "Here it is", "filename": "pic.png", "url": "mxc://example.org/x"}, "Here it is"),
    ({"msgtype": "m.text"}, ""),
]


@pytest.mark.parametrize(("content", "expected"), FROM_MATRIX, ids=[str(i) for i in range(len(FROM_MATRIX))])
def test_from_matrix(content: dict[str, Any], expected: str) -> None:
    assert staff_text(content) == expected


# -- from Matrix, formatted: formatted_body → (plain text, the sanitized subset or None) ----------

A = 'target="_blank" rel="noopener noreferrer nofollow"'
FORMATTED_FROM_MATRIX: dict[str, tuple[str, str | None]] = {
    "just <b>bold</b>": ("just bold", "just <strong>bold</strong>"),
    "<p>one</p><p>two</p>": ("one\ntwo", None),
    "<i>it</i> <s>x</s> <del>y</del> <code>*z*</code>": (
        "it x y *z*",
        "<em>it</em> <del>x</del> <del>y</del> <code>*z*</code>",
    ),
    "<strong>all <em>nested <del>marks</del></em></strong>": (
        "all nested marks",
        "<strong>all <em>nested <del>marks</del></em></strong>",
    ),
    '<pre><code class="language-python">x = 1\n</code></pre>': ("x = 1", "<pre><code>x = 1\n</code></pre>"),
    "<blockquote>q</blockquote><p>a</p>": ("q\na", "<blockquote>q</blockquote><p>a</p>"),
    "<ol start='3'><li>a</li></ol><ul><li>b</li></ul>": ("1. a\n• b", "<ol><li>a</li></ol><ul><li>b</li></ul>"),
    '<a href="https://acme.example/?a=1&amp;b=2">docs</a>': (
        "docs (https://acme.example/?a=1&b=2)",
        f'<a href="https://acme.example/?a=1&amp;b=2" {A}>docs</a>',
    ),
    # a pill is the person's name, never a link
    '<a href="https://matrix.to/#/@alice:example.org">Alice</a>: hi': ("Alice: hi", None),
    '<a href="https://matrix.to/#/%40bob%3Aexample.org">Bob</a> <b>hey</b>': ("Bob hey", "Bob <strong>hey</strong>"),
    '<a href="https://matrix.to/#/#room:example.org">#room</a>': ("#room", None),
    "<mx-reply><blockquote>quoted <b>fallback</b></blockquote></mx-reply>the <b>answer</b>": (
        "the answer",
        "the <strong>answer</strong>",
    ),
    # hostile HTML: inert
    '<a href="javascript:alert(1)">x</a> <b>y</b>': ("x y", "x <strong>y</strong>"),
    '<script>alert(1)</script><img src="mxc://x/y" onerror="alert(1)"><b>ok</b>': ("ok", "<strong>ok</strong>"),
    '<p style="color:red" onclick="x()">styled</p><font color="red">font</font>': ("styled\nfont", None),
    "<iframe src=https://evil.example>f</iframe><svg><script>1</script></svg><b>s</b>": ("fs", "f<strong>s</strong>"),
    '<span data-mx-spoiler="">secret</span> <h1>Head</h1>': ("secret\nHead", "secret <p><strong>Head</strong></p>"),
    "&lt;b&gt;not a tag&lt;/b&gt; <b>&amp;</b>": (
        "<b>not a tag</b> &",
        "&lt;b&gt;not a tag&lt;/b&gt; <strong>&amp;</strong>",
    ),
}


CASES = FORMATTED_FROM_MATRIX.items()


@pytest.mark.parametrize(("formatted", "expected"), CASES, ids=range(len(FORMATTED_FROM_MATRIX)))
def test_formatted_from_matrix(formatted: str, expected: tuple[str, str | None]) -> None:
    content = {"msgtype": "m.text", "body": "the body", "format": "org.matrix.custom.html", "formatted_body": formatted}
    assert staff_message(content) == expected


# -- to Matrix, formatted: a Slack agent's line with its HTML ------------------------------------

FORMATTED_TO_MATRIX: dict[tuple[str, str, str], tuple[str, str]] = {
    ("Alice", "Hi Ann", "<p>Hi <strong>Ann</strong></p>"): (
        "Alice: Hi Ann",
        "<p><strong>Alice</strong>: Hi <strong>Ann</strong></p>",
    ),
    ("Alice", "• a", "<ul><li>a</li></ul>"): ("Alice: • a", "<strong>Alice</strong>: <ul><li>a</li></ul>"),
    ("<b>Al</b>", "x", "<em>x</em>"): ("<b>Al</b>: x", "<strong>&lt;b&gt;Al&lt;/b&gt;</strong>: <em>x</em>"),
}


@pytest.mark.parametrize(("line", "expected"), FORMATTED_TO_MATRIX.items(), ids=range(len(FORMATTED_TO_MATRIX)))
def test_formatted_to_matrix(line: tuple[str, str, str], expected: tuple[str, str]) -> None:
    author, text, html = line
    [content] = visitor_contents(author, text, html)
    assert (content["body"], content["formatted_body"]) == expected
    assert content["m.mentions"] == {} and content["format"] == "org.matrix.custom.html"


# -- relations ----------------------------------------------------------------------------------

REPLY_TARGETS: list[tuple[dict[str, Any], str | None]] = [
    ({"body": "x", "m.relates_to": thread_relation("$root", "$last")}, "$root"),
    ({"body": "x", "m.relates_to": {"m.in_reply_to": {"event_id": "$root"}}}, "$root"),  # a client without threads
    ({"body": "* x", "m.relates_to": {"rel_type": "m.replace", "event_id": "$root"}}, None),  # an edit
    ({"key": "👍", "m.relates_to": {"rel_type": "m.annotation", "event_id": "$root"}}, None),
    ({"body": "x"}, None),
    ({"body": "x", "m.relates_to": "nonsense"}, None),
    ({"body": "x", "m.relates_to": {"rel_type": "m.thread"}}, None),
]


@pytest.mark.parametrize(("content", "expected"), REPLY_TARGETS)
def test_reply_target(content: dict[str, Any], expected: str | None) -> None:
    assert reply_target(content) == expected


def test_thread_relation_and_refs() -> None:
    assert thread_relation("$root", "$last") == {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": "$last"},
    }
    ref = thread_ref("!room:example.org", "$ev:example.org")
    assert ref == "!room:example.org|$ev:example.org"
    assert split_ref(ref) == ("!room:example.org", "$ev:example.org")
    with pytest.raises(ValueError):
        split_ref("C0123:1712.0001")


STAFF: list[tuple[str, list[str], bool]] = [
    ("@alice:example.org", [], True),  # no list: anybody but the bot
    ("@alice:example.org", ["@alice:example.org"], True),
    ("@bob:example.org", ["@alice:example.org"], False),
    ("@bob:example.org", [":example.org"], True),
    ("@bob:example.org", ["example.org"], True),
    ("@bob:evil-example.org", [":example.org"], False),
    ("@bob:sub.example.org", [":example.org"], False),
    ("@mallory:evil.org", ["@alice:example.org", ":example.org"], False),
]


@pytest.mark.parametrize(("sender", "staff", "expected"), STAFF)
def test_is_staff(sender: str, staff: list[str], expected: bool) -> None:
    assert is_staff(sender, staff) is expected


def _conversation(**kw: Any) -> Conversation:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    values: dict[str, Any] = dict(
        id=ConversationId("c1"),
        site_id="acme",
        topic="sales",
        status=Status.OPEN,
        visitor=Visitor(name="Ann <b>", email="ann@example.com"),
        created_at=now,
        last_activity_at=now,
        locale="en-GB",
        timezone="Europe/London",
        pages=(
            PageView("https://acme.example/", "Home", "https://search.example/"),
            PageView("https://acme.example/pricing", "Pricing"),
        ),
    )
    values.update(kw)
    return Conversation(**values)


def test_root_shows_the_visitor_context_inertly() -> None:
    content = root_content(_conversation(), "Acme", "Sales")
    assert "m.relates_to" not in content and content["m.mentions"] == {}
    body = content["body"]
    for expected in (
        "Chat from Ann <b> on Acme",
        "Visitor: Ann <b> <ann@example.com>",
        "Site: Acme",
        "Topic: Sales",
        "Page: Pricing — https://acme.example/pricing",
        "Came from: https://search.example/",
        "Pages seen (2): Home → Pricing",
        "Locale: en-GB · Europe/London",
        "Status: Open",
    ):
        assert expected in body, (expected, body)
    assert "<b>" not in content["formatted_body"] and "Ann &lt;b&gt;" in content["formatted_body"]
    closed = root_content(_conversation(status=Status.CLOSED, rating_score=4, rating_comment="great"), "Acme", None)
    assert "Status: Rated 4/5: great" in closed["body"] and "Topic" not in closed["body"]


def test_edit_relates_to_the_root_not_the_thread() -> None:
    new = root_content(_conversation(claimed_by="Alice"), "Acme", "Sales")
    edit = edit_content("$root", new)
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$root"}
    assert edit["m.new_content"] == new
    assert edit["body"] == "* " + new["body"] and edit["m.mentions"] == {}


def test_notice() -> None:
    relation = thread_relation("$r", "$l")
    assert notice_content("Rating: 4/5", relation) == {
        "msgtype": "m.notice",
        "body": "Rating: 4/5",
        "m.mentions": {},
        "m.relates_to": relation,
    }


def test_root_lines_stay_readable() -> None:
    long_url = "https://acme.example/" + "x" * 2000
    content = root_content(_conversation(pages=(PageView(long_url),)), "Acme", None)
    page_line = next(line for line in content["body"].split("\n") if line.startswith("Page: "))
    assert len(page_line) == len("Page: ") + 500 and page_line.endswith("…")


# -- long lines: (text length, lines) → how many events they take -------------------------------

LONG_LINES: dict[str, tuple[str, int, int]] = {
    "short": ("Hello", 1, 1),
    "exactly one event": ("x" * MESSAGE_CHUNK, 1, 1),
    "one over": ("x" * (MESSAGE_CHUNK + 1), 2, 1),
    "a notice holds twice as much": ("x" * NOTICE_CHUNK, 2, 1),
    "lines kept whole": (("y" * 3000 + "\n") * 3, 3, 2),
}


@pytest.mark.parametrize(("text", "lines", "notices"), LONG_LINES.values(), ids=list(LONG_LINES))
def test_long_text_is_split_never_cut(text: str, lines: int, notices: int) -> None:
    as_lines = visitor_contents("Ann", text)
    assert len(as_lines) == lines
    assert "".join(c["body"].removeprefix("Ann: ") for c in as_lines).replace("\n", "") == text.replace("\n", "")
    assert all(c == visitor_content("Ann", c["body"].removeprefix("Ann: ")) for c in as_lines)
    as_notices = notice_contents(text)
    assert len(as_notices) == notices
    assert all(c["msgtype"] == "m.notice" and c["m.mentions"] == {} for c in as_notices)
