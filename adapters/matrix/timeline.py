"""What the bridge asks of ``/sync`` and what a timeline event means to it. Pure: no I/O.

Events are read from their raw ``source`` dict rather than nio's parsed classes: nio turns an event
it does not know (a new msgtype, an unusual relation) into a bare ``UnknownEvent``, and the fields
the bridge needs are the same in both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapters.matrix.format import reply_target

#: events per room per sync; a longer gap is backfilled with /messages
TIMELINE_LIMIT = 20


def sync_filter(rooms: Iterable[str], timeline_limit: int = TIMELINE_LIMIT) -> dict[str, Any]:
    """Only what the bridge reads: the configured rooms' timelines and typing, nothing else
    (presence and account data would wake the long poll for nothing)."""
    return {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "rooms": sorted(rooms),
            "timeline": {"limit": timeline_limit},
            "ephemeral": {"types": ["m.typing"]},
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
