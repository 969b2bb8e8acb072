"""``bridge/model.py``: the conversation's state as people read it on the thread's root."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.model import Conversation, ConversationId, Status, Visitor

START = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)


def conversation(**changes: Any) -> Conversation:
    fields: dict[str, Any] = {
        "id": ConversationId("c1"),
        "site_id": "main",
        "topic": None,
        "status": Status.OPEN,
        "visitor": Visitor(),
        "created_at": START,
        "last_activity_at": START,
    }
    return Conversation(**(fields | changes))


CLOSED: dict[str, Any] = {"status": Status.CLOSED, "closed_at": START}

# a case name → (how the conversation differs from a fresh open one, its label)
STATE_LABELS: dict[str, tuple[dict[str, Any], str]] = {
    "open": ({}, "Open"),
    "claimed": ({"claimed_by": "Grace"}, "Claimed by Grace"),
    "closed": (CLOSED, "Closed"),
    "closed after a claim: closed wins": (CLOSED | {"claimed_by": "Grace"}, "Closed"),
    "rated without a comment": (CLOSED | {"rating_score": 4}, "Rated 4/5"),
    "rated with a comment": (CLOSED | {"rating_score": 5, "rating_comment": "Quick!"}, "Rated 5/5: Quick!"),
    "an empty comment is no comment": (CLOSED | {"rating_score": 3, "rating_comment": ""}, "Rated 3/5"),
    "the lowest rating still shows": (CLOSED | {"rating_score": 1}, "Rated 1/5"),
    "a rating outranks a claim": (CLOSED | {"claimed_by": "Grace", "rating_score": 2}, "Rated 2/5"),
    "an offline message": ({"kind": "offline"}, "Offline message"),
    "an offline message, closed and rated: still an offline message": (
        CLOSED | {"kind": "offline", "rating_score": 5},
        "Offline message",
    ),
}


@pytest.mark.parametrize(("changes", "label"), STATE_LABELS.values(), ids=STATE_LABELS.keys())
def test_state_label(changes: dict[str, Any], label: str) -> None:
    assert conversation(**changes).state_label == label
