"""The visitor answers a follow-up mail (CONTRACT §8): the reply comes back into the thread as the visitor's
message, stored and relayed like one written in the widget.

The mail adapter's SMTP listener asks ``refusal`` at ``RCPT TO`` — an address that is no conversation's
(``bridge/mail_links.py``), or mail from anyone but the conversation's visitor, is refused there (SMTP 550),
before a byte of it is taken — and hands the text, quoted history and signature stripped, to ``receive``.
The sender is compared with the address the visitor gave, case aside. That address is the visitor's own
word and a sender can be forged, so the unguessable Reply-To address is what keeps strangers out.

**A closed chat opens again.** A reply to a conversation closed meanwhile (by inactivity, by an agent, by
the visitor) reopens it: the visitor wrote, so someone should answer, in the thread where the context is.
The thread is told, the root shows it open, and the widget sees the chat open again. Offline messages
are never reopened (they have no Reply-To address).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bridge.follow_up import MailKeys
from bridge.live import StatusChanged
from bridge.mail_links import conversation_of
from bridge.model import Conversation, Message, Status
from bridge.outbound import Notice, RootState
from bridge.store import conversations as q
from bridge.work import Core, Work

#: the longest visitor message (CONTRACT §3): a longer mail is cut
MAX_TEXT = 4000


class Refusal(StrEnum):
    #: no conversation has this address
    UNKNOWN = "unknown"
    #: the conversation's, but the sender is not its visitor
    SENDER = "sender"


class MailInbox(Protocol):
    async def refusal(self, recipient: str, sender: str) -> Refusal | None: ...

    async def receive(self, recipient: str, sender: str, text: str, mail_id: str) -> bool: ...


@runtime_checkable
class ReceivesMail(Protocol):
    """An endpoint that takes mail in: the composition root hands it the core's ``MailReplies``."""

    def use_mail_inbox(self, inbox: MailInbox) -> None: ...


PostVisitorMessage = Callable[..., Awaitable[tuple[Message, bool]]]


def client_msg_id(mail_id: str) -> str:
    """The same mail delivered twice (a retry of the sending server) is stored once."""
    return "mail:" + hashlib.sha256(mail_id.encode("utf-8", "replace")).hexdigest()[:40]


def same_address(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return a.strip().strip("<>").lower() == b.strip().strip("<>").lower()


class MailReplies:
    def __init__(self, core: Core, keys: MailKeys, domain: str, post: PostVisitorMessage) -> None:
        self.core = core
        self.keys = keys
        self.domain = domain
        self.post = post

    async def _conversation(self, recipient: str) -> Conversation | None:
        cid = conversation_of(await self.keys.get(), recipient, self.domain)
        if cid is None:
            return None
        async with self.core.db.read() as conn:
            conv = await q.get_conversation(conn, cid)
        return conv if conv is not None and conv.kind == "chat" else None

    async def refusal(self, recipient: str, sender: str) -> Refusal | None:
        conv = await self._conversation(recipient)
        if conv is None:
            return Refusal.UNKNOWN
        return None if same_address(sender, conv.visitor.email) else Refusal.SENDER

    async def receive(self, recipient: str, sender: str, text: str, mail_id: str) -> bool:
        """Store the reply as the visitor's message (once per ``mail_id``); False when it is refused or holds
        nothing once stripped."""
        conv = await self._conversation(recipient)
        text = text.strip()[:MAX_TEXT].strip()
        if conv is None or not same_address(sender, conv.visitor.email) or not text:
            return False
        _, created = await self.post(conv.id, client_msg_id(mail_id), text, origin="email", reopen=True)
        return created


async def reopen(work: Work, conv: Conversation) -> None:
    """The visitor wrote to a closed chat: open again, and everyone told."""
    await q.set_fields(work.conn, conv.id, status=Status.OPEN.value, closed_at=None, last_activity_at=work.now)
    await work.enqueue_all(conv.id, Notice(f"{conv.visitor_name} wrote back by email: the chat is open again."))
    await work.enqueue_all(conv.id, RootState())
    work.signal(conv.id, StatusChanged(Status.OPEN))
