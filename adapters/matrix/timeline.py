"""What the bridge asks of ``/sync`` and what a timeline event means to it. Pure: no I/O.

Events are read from their raw ``source`` dict rather than nio's parsed classes: nio turns an event
it does not know (a new msgtype, an unusual relation) into a bare ``UnknownEvent``, and the fields
the bridge needs are the same in both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapters.matrix.format import REPLACE, reply_target

#: events per room per sync; a longer gap is backfilled with /messages
TIMELINE_LIMIT = 20


def sync_filter(rooms: Iterable[str], timeline_limit: int = TIMELINE_LIMIT) -> dict[str, Any]:
    """Only what the bridge reads: the configured rooms' timelines, typing and read receipts, nothing else
    (presence and account data would wake the long poll for nothing)."""
    return {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "rooms": sorted(rooms),
            "timeline": {"limit": timeline_limit},
            "ephemeral": {"types": ["m.typing", "m.receipt"]},
            "account_data": {"types": []},
        },
    }


def turns_on_encryption(source: dict[str, Any]) -> bool:
    """The room's ``m.room.encryption`` state event: from here on the room is encrypted for good."""
    return source.get("type") == "m.room.encryption" and source.get("state_key") == ""


@dataclass(frozen=True)
class ThreadMessage:
    """An ``m.room.message`` that answers an earlier event (``root``: the thread it belongs to)."""

    event_id: str
    sender: str
    content: dict[str, Any]
    root: str


def thread_message(source: dict[str, Any]) -> ThreadMessage | None:
    """The event as a message in a thread, or None: not a message, malformed, or answering nothing
    (a message outside any thread is not about a conversation)."""
    event_id = source.get("event_id")
    sender = source.get("sender")
    content = source.get("content")
    if (
        source.get("type") != "m.room.message"
        or not isinstance(event_id, str)
        or not isinstance(sender, str)
        or not isinstance(content, dict)
    ):
        return None
    root = reply_target(content)
    if root is None:
        return None
    return ThreadMessage(event_id, sender, content, root)


@dataclass(frozen=True)
class Change:
    """A person changing an earlier event: an ``m.replace`` edit (``content``: the new content) or a
    redaction (``content`` None)."""

    event_id: str
    sender: str
    original: str
    content: dict[str, Any] | None


def change_of(source: dict[str, Any]) -> Change | None:
    """The event as an edit or a redaction of an earlier one, or None."""
    event_id, sender, content = source.get("event_id"), source.get("sender"), source.get("content")
    if not isinstance(event_id, str) or not isinstance(sender, str) or not isinstance(content, dict):
        return None
    if source.get("type") == "m.room.redaction":
        # room versions up to 10 carry it at the top; 11 and later in the content
        redacts = content.get("redacts") or source.get("redacts")
        return Change(event_id, sender, redacts, None) if isinstance(redacts, str) and redacts else None
    if source.get("type") != "m.room.message":
        return None
    relation = content.get("m.relates_to")
    new = content.get("m.new_content")
    if not isinstance(relation, dict) or relation.get("rel_type") != REPLACE or not isinstance(new, dict):
        return None
    original = relation.get("event_id")
    return Change(event_id, sender, original, new) if isinstance(original, str) and original else None


@dataclass(frozen=True)
class Sealed:
    """An ``m.room.encrypted`` event as it came, readable or not: who sent it and what it answers (a
    thread relation stays outside the ciphertext, so the thread is known even when the text is not)."""

    event_id: str
    sender: str
    #: the thread root (or replied-to event) it answers; None for an edit, a reaction or nothing
    root: str | None


def sealed(source: dict[str, Any]) -> Sealed | None:
    """The event as an encrypted one (not decrypted by the client), or None."""
    event_id, sender, content = source.get("event_id"), source.get("sender"), source.get("content")
    if (
        source.get("type") != "m.room.encrypted"
        or not isinstance(event_id, str)
        or not isinstance(sender, str)
        or not isinstance(content, dict)
    ):
        return None
    return Sealed(event_id, sender, reply_target(content))
