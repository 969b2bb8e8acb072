"""``bridge/returning.py`` and ``Returning`` as the store keeps it: the root's line about earlier chats."""

from __future__ import annotations

import pytest

from adapters.matrix.format import matrix_to, returning_value
from adapters.slack.blocks import returning_block
from bridge.model import Returning, ThreadRef
from bridge.returning import returning_line

LINES: dict[str, tuple[Returning, str]] = {
    "several, rated": (Returning(3, 4), "Returning visitor: 3 earlier chats, last rated 4/5"),
    "one, never rated": (Returning(1), "Returning visitor: 1 earlier chat"),
    "two, the last rated low": (Returning(2, 1), "Returning visitor: 2 earlier chats, last rated 1/5"),
}


@pytest.mark.parametrize(("returning", "line"), LINES.values(), ids=LINES.keys())
def test_returning_line(returning: Returning, line: str) -> None:
    assert returning_line(returning) == line


THREADS = (
    ("matrix", "!room:example.org", ThreadRef("!room:example.org|$root")),
    ("slack", "C0SUPPORT", ThreadRef("C0SUPPORT:1712.0001")),
)
STORED: dict[str, tuple[object, Returning | None]] = {
    "as stored": (
        {"earlier": 2, "last_rating": 5, "last_threads": [list(t) for t in THREADS]},
        Returning(2, 5, THREADS),
    ),
    "no rating, no threads": ({"earlier": 1, "last_rating": None, "last_threads": []}, Returning(1)),
    "nothing stored": (None, None),
    "no earlier chat": ({"earlier": 0}, None),
    "not a count": ({"earlier": "3"}, None),
    "a broken thread is left out": ({"earlier": 1, "last_threads": [["slack", "C0"], 5]}, Returning(1)),
}


@pytest.mark.parametrize(("value", "expected"), STORED.values(), ids=STORED.keys())
def test_returning_as_the_store_keeps_it(value: object, expected: Returning | None) -> None:
    assert Returning.from_stored(value) == expected


def test_it_survives_the_store() -> None:
    returning = Returning(2, 5, THREADS)
    assert Returning.from_stored(returning.stored()) == returning
    assert returning.last_thread("slack") == ("C0SUPPORT", "C0SUPPORT:1712.0001")
    assert returning.last_thread("email") is None


def test_slack_shows_the_line_and_a_link_to_the_last_chat() -> None:
    block = returning_block(Returning(3, 4), "https://acme.slack.com/archives/C0/p1712000100")
    assert block["text"] == {
        "type": "mrkdwn",
        "text": "*Returning visitor: 3 earlier chats, last rated 4/5*"
        " · <https://acme.slack.com/archives/C0/p1712000100|last chat>",
    }
    assert returning_block(Returning(1), None)["text"]["text"] == "*Returning visitor: 1 earlier chat*"


def test_matrix_links_the_last_chat_with_matrix_to() -> None:
    assert (
        matrix_to("!room:example.org", "$root") == "https://matrix.to/#/%21room%3Aexample.org/%24root?via=example.org"
    )
    assert returning_value(Returning(2, 5, THREADS)) == (
        "2 earlier chats, last rated 5/5 — last chat: https://matrix.to/#/%21room%3Aexample.org/%24root?via=example.org"
    )
    assert returning_value(Returning(1)) == "1 earlier chat"
