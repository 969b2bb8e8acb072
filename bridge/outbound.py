"""What the core asks an endpoint to do: one frozen dataclass per kind, a closed union.

Adapters handle ``Outbound`` with an exhaustive ``match`` ending in ``typing.assert_never``, so a
new kind is a type error in every adapter until each one handles it. The outbox stores a kind as
its ``KIND`` name plus a small JSON payload (``encode``); the delivery workers turn the row back
into the dataclass (``decode``) with the message and the endpoint's own copy looked up fresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from bridge.model import Attachment, Message, RemoteId


@dataclass(frozen=True)
class OpenThread:
    """Post the thread's root: the visitor's context (and Claim/Close where there are buttons)."""

    KIND: ClassVar[str] = "open_thread"


@dataclass(frozen=True)
class Line:
    """A conversation message in the thread: the visitor's, or the other team chat's staff."""

    KIND: ClassVar[str] = "message"
    message: Message


@dataclass(frozen=True)
class RootState:
    """Show the conversation's current state on the root (claimed, closed, rated, pages seen)."""

    KIND: ClassVar[str] = "root_state"


@dataclass(frozen=True)
class Transcript:
    """The whole conversation as text: into the thread on close or transfer, or mailed to ``to``."""

    KIND: ClassVar[str] = "transcript"
    text: str
    #: the visitor's address when the transcript goes by email; None in a team chat
    to: str | None = None
    #: the same for a mail's HTML part
    html: str | None = None


@dataclass(frozen=True)
class Notice:
    """A line from the bridge itself: a rating, help, an offline message (a reminder is ``Reminder``)."""

    KIND: ClassVar[str] = "notice"
    text: str


@dataclass(frozen=True)
class Edit:
    """A message changed: bring this endpoint's copy (``copy``) up to date with ``message``."""

    KIND: ClassVar[str] = "edit"
    message: Message
    copy: RemoteId | None


@dataclass(frozen=True)
class Deletion:
    """A message was taken back: remove this endpoint's copy of it (``more``: the other posts it became —
    a long text's later parts, the files sent with it)."""

    KIND: ClassVar[str] = "deletion"
    message: Message
    copy: RemoteId | None
    more: tuple[RemoteId, ...] = ()


@dataclass(frozen=True)
class WebhookEvent:
    """Tell the site's own systems what happened (``conversation.closed``, ``conversation.rated``): the
    conversation's export row as it was at that moment, so every retry sends the same body under the
    same ``delivery`` id. Team chats and email have nothing to do with it."""

    KIND: ClassVar[str] = "webhook"
    event: str
    conversation: Mapping[str, Any]
    #: the receiver's idempotency key (``X-Sitechat-Delivery``), fixed when the event is queued
    delivery: str


@dataclass(frozen=True)
class Erase:
    """Remove one of the bridge's own posts from a team chat: its conversation was erased (retention or
    ``sitechat forget``). The delivery is addressed to the thread the post is in; ``copy`` None is that
    thread's root. Already gone counts as done."""

    KIND: ClassVar[str] = "erase"
    copy: RemoteId | None


@dataclass(frozen=True)
class Reminder:
    """A visitor waits for an answer: a line from the bridge that calls the team's attention. ``mention``
    is ``SITECHAT_REMINDER_MENTION`` (``here``, ``channel``, ``none``, a member ``U…`` or a group ``S…``):
    the one place where the bridge's text may notify people, so an adapter renders it as a real mention
    and escapes ``text`` as ever (it holds the visitor's name)."""

    KIND: ClassVar[str] = "reminder"
    text: str
    mention: str = "here"


@dataclass(frozen=True)
class Invite:
    """``!invite USER``: bring someone into the thread with a post that mentions them, so they are notified.
    ``who`` is the person as the team chat where the command was typed writes them (Slack ``<@U…>`` or a
    display name; Matrix ``@user:server``): that endpoint resolves it. ``by`` asked."""

    KIND: ClassVar[str] = "invite"
    who: str
    by: str


@dataclass(frozen=True)
class Seen:
    """The visitor has seen an agent's message: mark the agent's own message (``copy``) where they wrote
    it — Slack: the bot's ``eyes`` reaction; Matrix: the bot's read receipt. Queued once per message."""

    KIND: ClassVar[str] = "seen"
    message: Message
    copy: RemoteId | None


@dataclass(frozen=True)
class FollowUpMail:
    """Agents' replies the visitor has not seen, mailed to them (``bridge/follow_up.py``): ``reply_to`` is the
    conversation's own address at ``SITECHAT_INBOUND_DOMAIN`` (None without it). Team chats have nothing to do."""

    KIND: ClassVar[str] = "follow_up"
    to: str
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None


@dataclass(frozen=True)
class FilePost:
    """A file for the channel or room itself, in no conversation's thread: the weekly report's picture
    (``sitechat report --post``, ``SITECHAT_REPORT_SCHEDULE``), with ``text`` beside it."""

    KIND: ClassVar[str] = "file_post"
    file: Attachment
    text: str


Outbound = (
    OpenThread
    | Line
    | RootState
    | Transcript
    | Notice
    | Edit
    | Deletion
    | WebhookEvent
    | Erase
    | Reminder
    | Invite
    | Seen
    | FilePost
    | FollowUpMail
)

#: kinds whose delivery is about one stored message (the outbox keeps its id, not its text)
ABOUT_A_MESSAGE: frozenset[str] = frozenset({Line.KIND, Edit.KIND, Deletion.KIND, Seen.KIND})


@dataclass(frozen=True)
class Encoded:
    """An outbound kind as the outbox row keeps it."""

    kind: str
    message_id: str | None
    payload: dict[str, Any] | None


def encode(what: Outbound) -> Encoded:
    match what:
        case OpenThread() | RootState():
            return Encoded(what.KIND, None, None)
        case Line(message) | Edit(message) | Deletion(message) | Seen(message):
            return Encoded(what.KIND, message.id, None)
        case Transcript(text, to, html):
            extra = ({"to": to} if to else {}) | ({"html": html} if html else {})
            return Encoded(what.KIND, None, {"text": text} | extra)
        case Notice(text):
            return Encoded(what.KIND, None, {"text": text})
        case WebhookEvent(event, conversation, delivery):
            return Encoded(what.KIND, None, {"event": event, "conversation": dict(conversation), "id": delivery})
        case Erase(copy):
            return Encoded(what.KIND, None, {"copy": copy} if copy else {})
        case Reminder(text, mention):
            return Encoded(what.KIND, None, {"text": text, "mention": mention})
        case Invite(who, by):
            return Encoded(what.KIND, None, {"who": who, "by": by})
        case FilePost(file, text):
            return Encoded(what.KIND, None, {"file": file.stored(), "text": text})
        case FollowUpMail(to, subject, text, html, reply_to):
            extra = ({"html": html} if html else {}) | ({"reply_to": reply_to} if reply_to else {})
            return Encoded(what.KIND, None, {"to": to, "subject": subject, "text": text} | extra)


class UndecodableDelivery(ValueError):
    """A row the running code cannot turn into a kind (its message is gone, or an unknown kind)."""


def decode(
    kind: str,
    payload: Mapping[str, Any] | None,
    message: Message | None,
    copy: RemoteId | None,
    more: Sequence[RemoteId] = (),
) -> Outbound:
    """The row back as a kind; ``message`` is the delivery's message, ``copy`` this endpoint's copy of it
    and ``more`` the other posts that copy came with (a deletion removes them all)."""
    data = payload or {}
    if kind in ABOUT_A_MESSAGE and message is None:
        raise UndecodableDelivery(f"{kind}: its message is gone")
    match kind:
        case OpenThread.KIND:
            return OpenThread()
        case RootState.KIND:
            return RootState()
        case Line.KIND if message is not None:
            return Line(message)
        case Edit.KIND if message is not None:
            return Edit(message, copy)
        case Deletion.KIND if message is not None:
            return Deletion(message, copy, tuple(r for r in more if r != copy))
        case Seen.KIND if message is not None:
            return Seen(message, copy)
        case Transcript.KIND:
            to, html = data.get("to"), data.get("html")
            return Transcript(str(data.get("text", "")), str(to) if to else None, str(html) if html else None)
        case Notice.KIND:
            return Notice(str(data.get("text", "")))
        case WebhookEvent.KIND:
            row = dict(data.get("conversation") or {})
            return WebhookEvent(str(data.get("event", "")), row, str(data.get("id", "")))
        case Erase.KIND:
            copy = data.get("copy")
            return Erase(RemoteId(str(copy)) if copy else None)
        case Reminder.KIND:
            return Reminder(str(data.get("text", "")), str(data.get("mention", "none")))
        case Invite.KIND:
            return Invite(str(data.get("who", "")), str(data.get("by", "")))
        case FilePost.KIND:
            files = Attachment.from_stored([data.get("file")])
            if not files:
                raise UndecodableDelivery("file_post: no file")
            return FilePost(files[0], str(data.get("text", "")))
        case FollowUpMail.KIND:
            html, reply_to = data.get("html"), data.get("reply_to")
            return FollowUpMail(
                str(data.get("to", "")),
                str(data.get("subject", "")),
                str(data.get("text", "")),
                str(html) if html else None,
                str(reply_to) if reply_to else None,
            )
    raise UndecodableDelivery(f"unknown delivery kind {kind!r}")
