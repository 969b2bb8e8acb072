"""``bridge/transcript.py``: long texts split for a team chat, and the conversation as text.

What ``split_text(text, limit)`` guarantees (read from its code), for ``limit >= 1``:

- every piece has at most ``limit`` characters;
- the pieces are consecutive stretches of the text, in order: the text is exactly
  ``"\\n" * k_0 + piece_1 + "\\n" * k_1 + … + piece_n + "\\n" * k_n`` for some ``k_i >= 0``,
  so the only characters not in a piece are newlines between pieces (a post does not need
  them); every other character, ``\\r`` and the other line breaks included, is kept;
- no piece is empty unless the text has nothing but newlines (then it is ``[""]``);
- a piece ends at a line boundary unless one line alone is longer than ``limit`` (then it is cut
  into ``limit``-sized parts), so a piece is only ever cut short of ``limit`` where a line ends;
- a text that fits (``len(text) <= limit``) is one piece, only its trailing newlines removed;
- the result is never an empty list: the empty text gives ``[""]``.

``limit`` must be at least 1: nothing fits in 0 characters.

"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.model import Conversation, ConversationId, Message, Participant, Role, Status, Visitor
from bridge.transcript import render_transcript, split_text
from tests.unit import PROPERTY

# (text, limit) → pieces
SPLITS: dict[tuple[str, int], list[str]] = {
    # nothing to split
    ("", 10): [""],
    ("hello", 10): ["hello"],
    ("hello", 5): ["hello"],  # exactly the limit
    ("two\nlines", 9): ["two\nlines"],  # exactly the limit, over two lines
    # trailing newlines are not part of a post
    ("hello\n", 10): ["hello"],
    ("hello\n\n\n", 10): ["hello"],
    # on line boundaries, as many whole lines per piece as fit
    ("ab\ncd\nef", 5): ["ab\ncd", "ef"],  # the newline a piece ends on does not count
    ("ab\ncd\nef", 6): ["ab\ncd", "ef"],  # "ab\ncd\n" is 6, "ef" does not fit after it
    ("ab\ncd\nef", 8): ["ab\ncd\nef"],
    ("ab\ncd\nef", 3): ["ab", "cd", "ef"],
    ("one\ntwo\nthree\nfour", 9): ["one\ntwo", "three", "four"],
    # blank lines inside a piece stay
    ("a\n\nb", 4): ["a\n\nb"],
    ("a\n\nb", 3): ["a", "b"],  # the blank line fits in the first piece, and ends it
    # one very long line is cut hard at the limit
    ("abcdefgh", 3): ["abc", "def", "gh"],
    ("abcdef", 3): ["abc", "def"],
    ("x\nabcdefgh\ny", 3): ["x", "abc", "def", "gh", "y"],
    ("abc", 1): ["a", "b", "c"],
    # other line breaks split too, and are kept: only "\n" is removed
    ("ab\r\ncd", 4): ["ab\r", "cd"],
    ("ab\r\ncd", 10): ["ab\r\ncd"],
}


@pytest.mark.parametrize(("case", "pieces"), SPLITS.items(), ids=repr)
def test_split_text(case: tuple[str, int], pieces: list[str]) -> None:
    text, limit = case
    assert split_text(text, limit) == pieces


def pieces_rebuild(text: str, pieces: list[str]) -> bool:
    """The text is the pieces in order, with zero or more removed newlines before, between and after."""
    pattern = "\n*" + "".join(re.escape(p) + "\n*" for p in pieces)
    return re.fullmatch(pattern, text) is not None


# texts made of short and long lines, blank lines and other line breaks, where splitting happens
line_chars = st.characters(codec="utf-8", exclude_characters="\n")
lines = st.one_of(st.text(line_chars, max_size=12), st.text(st.sampled_from("ab \r"), max_size=40))
texts = st.lists(lines, max_size=12).map("\n".join) | st.text(st.sampled_from("ab\n\r"), max_size=60)
limits = st.integers(min_value=1, max_value=30)


@pytest.mark.parametrize(
    ("text", "limit", "pieces"),
    [
        ("hello\n", 5, ["hello"]),
        ("abcd\n", 2, ["ab", "cd"]),
        ("\n0", 1, ["0"]),
        ("x\nabcdefgh\ny", 4, ["x", "abcd", "efgh", "y"]),
    ],
)
def test_split_text_never_posts_an_empty_piece(text: str, limit: int, pieces: list[str]) -> None:
    """Slack refuses an empty post: a part that can never be delivered would hold up the thread."""
    assert split_text(text, limit) == pieces


@PROPERTY
@given(text=texts, limit=limits)
def test_split_pieces_fit_and_lose_only_newlines_between_them(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert pieces
    assert all(len(p) <= limit for p in pieces)
    assert pieces_rebuild(text, pieces), pieces
    assert all(p for p in pieces) or pieces == [""]


@PROPERTY
@given(text=texts, limit=limits)
def test_split_keeps_every_character_but_newlines_in_order(text: str, limit: int) -> None:
    """A simpler statement of the same guarantee, independent of how the pieces are matched."""
    assert "".join(split_text(text, limit)).replace("\n", "") == text.replace("\n", "")


@PROPERTY
@given(text=texts, limit=limits)
def test_split_a_text_that_fits_is_one_piece(text: str, limit: int) -> None:
    if len(text) <= limit:
        assert split_text(text, limit) == [text.rstrip("\n")]


@PROPERTY
@given(text=texts, extra=st.integers(min_value=0, max_value=5))
def test_split_never_cuts_a_line_that_fits(text: str, extra: int) -> None:
    """With a limit at least as long as every line, every piece is made of whole lines."""
    limit = max((len(line) for line in text.splitlines(keepends=True)), default=0) + extra or 1
    whole = set(text.splitlines())
    for piece in split_text(text, limit):
        assert all(line in whole for line in piece.splitlines()), piece


# --- render_transcript --------------------------------------------------------------------------

START = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
VISITOR = Participant(Role.VISITOR, "Ada")
AGENT = Participant(Role.AGENT, "Grace", remote_id="slack:U1")
SYSTEM = Participant(Role.SYSTEM, "sitechat")


def conversation(name: str | None = "Ada", email: str | None = None) -> Conversation:
    return Conversation(
        id=ConversationId("c1"),
        site_id="main",
        topic=None,
        status=Status.CLOSED,
        visitor=Visitor(name=name, email=email),
        created_at=START,
        last_activity_at=START,
    )


def message(seq: int, author: Participant, text: str, minute: int, **changes: object) -> Message:
    at = START.replace(minute=minute)
    return Message(f"m{seq}", ConversationId("c1"), seq, author, text, at, **changes)  # type: ignore[arg-type]


HEADER = "Transcript — Example — Ada\nStarted 2024-05-06 09:30 UTC, closed by Grace.\n\n"

# (conversation, messages) → transcript
TRANSCRIPTS: dict[str, tuple[Conversation, list[Message], str]] = {
    "no messages": (conversation(), [], HEADER + "(no messages)"),
    "one line each": (
        conversation(),
        [message(1, VISITOR, "Hello?", 31), message(2, AGENT, "Hi Ada!", 32)],
        HEADER + "[09:31] Ada: Hello?\n[09:32] Grace: Hi Ada!",
    ),
    "deleted messages are hidden": (
        conversation(),
        [message(1, VISITOR, "my password is hunter2", 31, deleted=True), message(2, VISITOR, "oops", 32)],
        HEADER + "[09:32] Ada: oops",
    ),
    "only deleted messages count as none": (
        conversation(),
        [message(1, VISITOR, "gone", 31, deleted=True)],
        HEADER + "(no messages)",
    ),
    "edited messages are marked": (
        conversation(),
        [message(1, AGENT, "It ships Tuesday", 33, edited_at=START.replace(minute=40))],
        HEADER + "[09:33] Grace: It ships Tuesday (edited)",
    ),
    "the system author is shown as a dash": (
        conversation(),
        [message(1, SYSTEM, "Grace joined", 34)],
        HEADER + "[09:34] —: Grace joined",
    ),
    "multi-line bodies are indented": (
        conversation(),
        [message(1, VISITOR, "first\nsecond\n\nfourth", 35)],
        HEADER + "[09:35] Ada: first\n    second\n    \n    fourth",
    ),
    "edited multi-line: the mark goes after the last line": (
        conversation(),
        [message(1, VISITOR, "a\nb", 36, edited_at=START)],
        HEADER + "[09:36] Ada: a\n    b (edited)",
    ),
    "the visitor's address is shown": (
        conversation(email="ada@example.org"),
        [],
        HEADER.replace("— Ada\n", "— Ada <ada@example.org>\n") + "(no messages)",
    ),
    "an anonymous visitor": (
        conversation(name=None),
        [],
        HEADER.replace("— Ada\n", "— Visitor\n") + "(no messages)",
    ),
}


@pytest.mark.parametrize(("conv", "messages", "expected"), TRANSCRIPTS.values(), ids=TRANSCRIPTS.keys())
def test_render_transcript(conv: Conversation, messages: list[Message], expected: str) -> None:
    assert render_transcript(conv, messages, "Example", "by Grace") == expected
