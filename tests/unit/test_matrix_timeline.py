"""``adapters/matrix/timeline.py`` and the txn ids of ``outbound.py``: what the bridge asks of
``/sync``, which timeline events are about a conversation, and how sends stay idempotent."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.matrix.format import thread_relation
from adapters.matrix.outbound import txn_id
from adapters.matrix.timeline import (
    Change,
    Sealed,
    ThreadMessage,
    change_of,
    sealed,
    sync_filter,
    thread_message,
    turns_on_encryption,
)

REPLY = {"msgtype": "m.text", "body": "Hi", "m.relates_to": thread_relation("$root", "$last")}


def event(**kw: Any) -> dict[str, Any]:
    return {"type": "m.room.message", "event_id": "$e", "sender": "@sam:hs", "content": REPLY} | kw


# -- a timeline event → the message in a thread it is, or None -----------------------------------

THREAD_MESSAGES: dict[str, tuple[dict[str, Any], ThreadMessage | None]] = {
    "a thread reply": (event(), ThreadMessage("$e", "@sam:hs", REPLY, "$root")),
    "a reply from a client without threads": (
        event(content={"body": "Hi", "m.relates_to": {"m.in_reply_to": {"event_id": "$root"}}}),
        ThreadMessage(
            "$e", "@sam:hs", {"body": "Hi", "m.relates_to": {"m.in_reply_to": {"event_id": "$root"}}}, "$root"
        ),
    ),
    "a message answering nothing": (event(content={"msgtype": "m.text", "body": "Hi"}), None),
    "an edit": (event(content={"body": "* x", "m.relates_to": {"rel_type": "m.replace", "event_id": "$e0"}}), None),
    "a reaction": (event(type="m.reaction"), None),
    "a state event": (event(type="m.room.member"), None),
    "no event id": (event(event_id=None), None),
    "no sender": (event(sender=7), None),
    "content not an object": (event(content="Hi"), None),
}


@pytest.mark.parametrize(("source", "expected"), THREAD_MESSAGES.values(), ids=list(THREAD_MESSAGES))
def test_thread_message(source: dict[str, Any], expected: ThreadMessage | None) -> None:
    assert thread_message(source) == expected


ENCRYPTION: dict[str, tuple[dict[str, Any], bool]] = {
    "turned on": ({"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1"}}, True),
    "not a state event": ({"type": "m.room.encryption", "content": {}}, False),
    "another state key": ({"type": "m.room.encryption", "state_key": "x"}, False),
    "a message": (event(), False),
}


@pytest.mark.parametrize(("source", "expected"), ENCRYPTION.values(), ids=list(ENCRYPTION))
def test_turns_on_encryption(source: dict[str, Any], expected: bool) -> None:
    assert turns_on_encryption(source) is expected


# -- edits and redactions → the change they make ---------------------------------------------------

NEW = {"msgtype": "m.text", "body": "Hi!"}
EDIT = {
    "msgtype": "m.text",
    "body": "* Hi!",
    "m.new_content": NEW,
    "m.relates_to": {"rel_type": "m.replace", "event_id": "$e0"},
}
CHANGES: dict[str, tuple[dict[str, Any], Change | None]] = {
    "an edit": (event(content=EDIT), Change("$e", "@sam:hs", "$e0", NEW)),
    "an edit without new content": (
        event(content={"body": "* x", "m.relates_to": {"rel_type": "m.replace", "event_id": "$e0"}}),
        None,
    ),
    "an edit of nothing": (event(content={**EDIT, "m.relates_to": {"rel_type": "m.replace"}}), None),
    "a thread reply": (event(), None),
    "a redaction (room v11)": (
        {"type": "m.room.redaction", "event_id": "$r", "sender": "@mod:hs", "content": {"redacts": "$e0"}},
        Change("$r", "@mod:hs", "$e0", None),
    ),
    "a redaction (up to v10)": (
        {"type": "m.room.redaction", "event_id": "$r", "sender": "@mod:hs", "redacts": "$e0", "content": {}},
        Change("$r", "@mod:hs", "$e0", None),
    ),
    "a redaction of nothing": ({"type": "m.room.redaction", "event_id": "$r", "sender": "@m:hs", "content": {}}, None),
    "a reaction": (event(type="m.reaction"), None),
    "no sender": (event(content=EDIT, sender=None), None),
}


@pytest.mark.parametrize(("source", "expected"), CHANGES.values(), ids=list(CHANGES))
def test_change_of(source: dict[str, Any], expected: Change | None) -> None:
    assert change_of(source) == expected


# -- an encrypted event nobody decrypted → who sent it, and which thread it answers ------------------

ENVELOPE = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA", "session_id": "s", "sender_key": "k"}
SEALED: dict[str, tuple[dict[str, Any], Sealed | None]] = {
    "a thread reply": (
        event(type="m.room.encrypted", content={**ENVELOPE, "m.relates_to": thread_relation("$root", "$last")}),
        Sealed("$e", "@sam:hs", "$root"),
    ),
    "no relation outside": (event(type="m.room.encrypted", content=ENVELOPE), Sealed("$e", "@sam:hs", None)),
    "an edit": (
        event(
            type="m.room.encrypted", content={**ENVELOPE, "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}
        ),
        Sealed("$e", "@sam:hs", None),
    ),
    "decrypted already": (event(), None),
    "no event id": (event(type="m.room.encrypted", content=ENVELOPE, event_id=3), None),
}


@pytest.mark.parametrize(("source", "expected"), SEALED.values(), ids=list(SEALED))
def test_sealed(source: dict[str, Any], expected: Sealed | None) -> None:
    assert sealed(source) == expected


def test_sync_filter_asks_only_for_the_rooms_timelines_and_typing() -> None:
    assert sync_filter({"!b:hs", "!a:hs"}, 1) == {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "rooms": ["!a:hs", "!b:hs"],
            "timeline": {"limit": 1},
            "ephemeral": {"types": ["m.typing", "m.receipt"]},
            "account_data": {"types": []},
        },
    }
    assert sync_filter(["!a:hs"])["room"]["timeline"] == {"limit": 20}


def test_txn_ids_are_stable_per_delivery_part() -> None:
    """A resend of a delivery must reuse its txn ids (the homeserver then returns the first event)."""
    assert txn_id("ab12", 7, 0) == txn_id("ab12", 7, 0) == "sitechat-ab12-7-0"
    ids = {txn_id("ab12", 7, 0), txn_id("ab12", 7, 1), txn_id("ab12", 7, "redact"), txn_id("ab12", 8, 0)}
    assert len(ids) == 4
    assert txn_id("cd34", 7, 0) != txn_id("ab12", 7, 0)  # another database on the same device
