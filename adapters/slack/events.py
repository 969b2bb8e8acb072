"""Which Slack message events are replies from people in a conversation's thread. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# message subtypes that are still a person writing; everything else (edits, deletes, joins) is not a reply
PERSON_SUBTYPES = {None, "thread_broadcast", "file_share"}


@dataclass(frozen=True)
class ThreadReply:
    channel: str
    thread_ts: str
    ts: str
    user: str
    text: str
    files: tuple[dict[str, Any], ...] = ()
    #: the ``rich_text`` blocks Slack's clients send beside ``text`` (what the person saw)
    blocks: tuple[Any, ...] = ()


def thread_reply(event: dict[str, Any], *, own_user_id: str | None, own_bot_id: str | None) -> ThreadReply | None:
    if event.get("subtype") not in PERSON_SUBTYPES:
        return None
    if event.get("bot_id") or event.get("bot_profile"):
        return None  # our own posts and other bots' — no echo loops
    user = event.get("user")
    if not user or user == own_user_id:
        return None
    thread_ts, ts, channel = event.get("thread_ts"), event.get("ts"), event.get("channel")
    if not (thread_ts and ts and channel) or thread_ts == ts:
        return None  # not in a thread: a top-level message in the channel is not for a visitor
    return ThreadReply(
        channel=str(channel),
        thread_ts=str(thread_ts),
        ts=str(ts),
        user=str(user),
        text=str(event.get("text") or ""),
        files=tuple(event.get("files") or ()),
        blocks=_blocks(event),
    )


def thread_ref(channel: str, ts: str) -> str:
    return f"{channel}:{ts}"


def split_ref(ref: str) -> tuple[str, str]:
    channel, _, ts = ref.partition(":")
    return channel, ts


@dataclass(frozen=True)
class ThreadChange:
    """A person edited (``text`` set) or deleted (``text`` None) a reply in a thread."""

    channel: str
    thread_ts: str
    ts: str  # the reply's own ts
    event_ts: str  # the change's ts: one change, one id
    text: str | None
    blocks: tuple[Any, ...] = ()


def thread_change(event: dict[str, Any], *, own_user_id: str | None) -> ThreadChange | None:
    subtype = event.get("subtype")
    if subtype not in ("message_changed", "message_deleted"):
        return None
    inner = event.get("message") if subtype == "message_changed" else event.get("previous_message")
    if not isinstance(inner, dict) or inner.get("bot_id") or inner.get("user") in (None, own_user_id):
        return None
    thread_ts, ts, channel = inner.get("thread_ts"), inner.get("ts"), event.get("channel")
    if not (thread_ts and ts and channel) or thread_ts == ts:
        return None
    if subtype == "message_changed" and inner.get("text") == (event.get("previous_message") or {}).get("text"):
        return None  # an unfurl or a reaction count changed, not the words
    return ThreadChange(
        channel=str(channel),
        thread_ts=str(thread_ts),
        ts=str(ts),
        event_ts=str(event.get("event_ts") or event.get("ts") or ""),
        text=str(inner.get("text") or "") if subtype == "message_changed" else None,
        blocks=_blocks(inner) if subtype == "message_changed" else (),
    )


def _blocks(message: dict[str, Any]) -> tuple[Any, ...]:
    blocks = message.get("blocks")
    return tuple(blocks) if isinstance(blocks, list) else ()
