"""``adapters/slack/posts.py``: which deliveries go out together, and how texts are cut into Slack posts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.slack import blocks
from adapters.slack.format import escape, unescape
from adapters.slack.posts import (
    MAX_POST_CHARS,
    Post,
    escaped_length,
    groups,
    line_posts,
    part_count,
    split_escaped,
    text_posts,
)
from bridge.endpoint import Outgoing
from bridge.model import Conversation, ConversationId, Message, PageView, Participant, Role, Status, Visitor
from bridge.outbound import Line, Notice, Outbound, RootState, Transcript
from tests.unit import PROPERTY

# ---------------------------------------------------------------------- splitting one text

# (text, limit) → pieces: their escaped forms fit the limit; joined, they are the text again
SPLITS: dict[tuple[str, int], list[str]] = {
    ("", 10): [""],
    ("short", 10): ["short"],
    ("exactly10!", 10): ["exactly10!"],
    ("a" * 25, 10): ["a" * 10, "a" * 10, "a" * 5],
    # after a line break in the second half of the room, else after a space there, else anywhere
    ("line one\nline two", 12): ["line one\n", "line two"],
    ("hello world again", 12): ["hello world ", "again"],
    ("a b" + "c" * 20, 10): ["a bccccccc", "cccccccccc", "ccc"],
    # the limit is on what Slack receives: escaped text
    ("&&&", 10): ["&&", "&"],
    ("<<<<<", 8): ["<<", "<<", "<"],
    ("ab<", 5): ["ab", "<"],
    ("x&y", 5): ["x", "&", "y"],
}


@pytest.mark.parametrize(("case", "expected"), SPLITS.items(), ids=[repr(k) for k in SPLITS])
def test_split_escaped(case: tuple[str, int], expected: list[str]) -> None:
    text, limit = case
    assert split_escaped(text, limit) == expected


@PROPERTY
@given(text=st.text(alphabet=st.sampled_from("ab &<>\n\u00e9\U0001f389"), max_size=300), limit=st.integers(5, 60))
def test_split_escaped_keeps_every_character_within_the_limit(text: str, limit: int) -> None:
    pieces = split_escaped(text, limit)
    assert "".join(pieces) == text
    assert all(escaped_length(p) <= limit for p in pieces)
    assert all(pieces) or pieces == [""]


def test_escaped_length_is_the_length_slack_receives() -> None:
    for text in ("", "plain", "a & b", "<@U1>", "&amp;"):
        assert escaped_length(text) == len(escape(text))


# ---------------------------------------------------------------------- lines of one author into posts

# (delivery id, line) of one author, limit 10 → posts
LINES: dict[str, tuple[list[tuple[int, str]], list[Post]]] = {
    "one line": ([(1, "hi")], [Post((1,), 0, "hi")]),
    "as many whole lines as fit": (
        [(1, "aaa"), (2, "bbb"), (3, "ccc")],
        [Post((1, 2), 0, "aaa\nbbb"), Post((3,), 0, "ccc")],
    ),
    "exactly full": ([(1, "aaaa"), (2, "bbbbb")], [Post((1, 2), 0, "aaaa\nbbbbb")]),
    "escaped before measuring": ([(1, "a<b<"), (2, "c")], [Post((1,), 0, "a&lt;b&lt;"), Post((2,), 0, "c")]),
    "a line too long alone is split into numbered parts, alone": (
        [(1, "ab"), (2, "x" * 25), (3, "cd")],
        [
            Post((1,), 0, "ab"),
            Post((2,), 0, "x" * 10),
            Post((2,), 1, "x" * 10),
            Post((2,), 2, "x" * 5),
            Post((3,), 0, "cd"),
        ],
    ),
}


@pytest.mark.parametrize(("lines", "expected"), LINES.values(), ids=list(LINES))
def test_line_posts(lines: list[tuple[int, str]], expected: list[Post]) -> None:
    assert line_posts(lines, 10) == expected


@PROPERTY
@given(lines=st.lists(st.text(alphabet="ab &<", max_size=40), min_size=1, max_size=12), limit=st.integers(6, 30))
def test_line_posts_keep_every_line_in_order_once(lines: list[str], limit: int) -> None:
    posts = line_posts(list(enumerate(lines)), limit)
    assert all(len(p.text) <= limit for p in posts)
    # read back: a post of whole lines holds them joined by line breaks; parts of one line follow each other
    rebuilt: dict[int, str] = {}
    for post in posts:
        if len(post.ids) == 1:
            rebuilt[post.ids[0]] = rebuilt.get(post.ids[0], "") + unescape(post.text)
        else:
            assert post.part == 0
            for did, line in zip(post.ids, unescape(post.text).split("\n"), strict=True):
                rebuilt[did] = line
    assert [rebuilt[i] for i in range(len(lines))] == lines
    assert [i for p in posts for i in p.ids if p.part == 0] == list(range(len(lines)))


def test_the_bridges_long_texts_are_split_into_numbered_parts() -> None:
    assert text_posts(7, "x" * 25, 10) == [Post((7,), 0, "x" * 10), Post((7,), 1, "x" * 10), Post((7,), 2, "x" * 5)]
    assert text_posts(7, "Rated <5>", 100) == [Post((7,), 0, "Rated &lt;5&gt;")]


# ---------------------------------------------------------------------- which deliveries go together

NOW = datetime(2025, 1, 1, tzinfo=UTC)
CONV = Conversation(ConversationId("c1"), "acme", None, Status.OPEN, Visitor("Ann"), NOW, NOW)
ANN = Participant(Role.VISITOR, "Ann")
BOB = Participant(Role.AGENT, "Bob")


def _item(did: int, what: Outbound, maybe_sent: bool = False) -> Outgoing:
    return Outgoing(did, what, CONV, "Acme", None, "C1", None, maybe_sent)


def _line(did: int, who: Participant, text: str = "hi", maybe_sent: bool = False) -> Outgoing:
    message = Message(f"m{did}", CONV.id, did, who, text, NOW)
    return _item(did, Line(message), maybe_sent)


# batch → delivery ids per group
GROUPS: dict[str, tuple[list[Outgoing], list[list[int]]]] = {
    "one author's lines combine": ([_line(1, ANN), _line(2, ANN), _line(3, ANN)], [[1, 2, 3]]),
    "another author starts a new post": ([_line(1, ANN), _line(2, BOB), _line(3, ANN)], [[1], [2], [3]]),
    "a line in doubt stands alone": ([_line(1, ANN), _line(2, ANN, maybe_sent=True), _line(3, ANN)], [[1], [2], [3]]),
    "root updates combine": ([_item(1, RootState()), _item(2, RootState())], [[1, 2]]),
    "a notice never combines": ([_line(1, ANN), _item(2, Notice("n")), _item(3, Notice("m"))], [[1], [2], [3]]),
}


@pytest.mark.parametrize(("batch", "expected"), GROUPS.values(), ids=list(GROUPS))
def test_groups(batch: list[Outgoing], expected: list[list[int]]) -> None:
    assert [[o.delivery_id for o in g] for g in groups(batch)] == expected


@pytest.mark.parametrize(
    ("what", "parts"),
    [
        (Line(Message("m", CONV.id, 1, ANN, "short", NOW)), 1),
        (Line(Message("m", CONV.id, 1, ANN, "<" * 1500, NOW)), 2),  # 6,000 characters once escaped
        (Transcript("t" * (MAX_POST_CHARS * 2 + 1)), 3),
        (Notice("short"), 1),
        (RootState(), 1),
    ],
)
def test_part_count(what: Outbound, parts: int) -> None:
    assert part_count(_item(1, what)) == parts


# ---------------------------------------------------------------------- the root within Slack's block limits


def test_root_blocks_and_text_stay_within_slacks_limits_whatever_the_input() -> None:
    huge = "<&>" * 3000
    conv = Conversation(
        ConversationId("c1"),
        "acme",
        "sales",
        Status.OPEN,
        Visitor(huge, "a" * 300 + "@example.com", huge),
        NOW,
        NOW,
        locale=huge,
        timezone=huge,
        pages=tuple(PageView("https://x.example/" + huge, huge, "https://r.example/" + huge) for _ in range(20)),
        rating_score=4,
        rating_comment=huge,
    )
    root = blocks.root_blocks(conv, huge, huge)
    assert len(root) <= 50
    sections = [b for b in root if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections if "text" in b)
    assert all(len(f["text"]) <= 2000 for b in sections for f in b.get("fields", ()))
    assert all(len(e["text"]) <= 3000 for b in root if b["type"] == "context" for e in b["elements"])
    assert blocks.text_length(root) <= blocks.BLOCKS_TEXT_BUDGET < 13_000
    assert len(blocks.root_text(conv, huge)) <= MAX_POST_CHARS
