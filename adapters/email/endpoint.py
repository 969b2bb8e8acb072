"""Transcripts and follow-ups by email: an endpoint whose deliveries are mails, sent with aiosmtplib (and,
with ``SITECHAT_INBOUND_SMTP``, an SMTP listener for the visitors' replies: ``adapters/email/inbound.py``).

It rides the same outbox as the team chats, so an SMTP server that is down delays a transcript
and never loses it. Each mail's Message-ID derives from its delivery, so a resend after a crash
is recognisable as the same mail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import assert_never
from urllib.parse import unquote, urlsplit

import aiosmtplib

from adapters.email.inbound import MailListener
from bridge.endpoint import Inbox, Outgoing, Sent
from bridge.errors import DestinationUnavailable, RetryLater
from bridge.mail_in import MailInbox
from bridge.model import EndpointName
from bridge.outbound import (
    Deletion,
    Edit,
    Erase,
    FilePost,
    FollowUpMail,
    Invite,
    Line,
    Notice,
    OpenThread,
    Reminder,
    RootState,
    Seen,
    Transcript,
    WebhookEvent,
)

log = logging.getLogger(__name__)


def message_id(conversation_id: str, delivery_id: int, mail_from: str) -> str:
    """The same for every resend of one delivery (``make_msgid`` would mix in the time and the pid), so
    a mail sent again after a crash is recognisably the same mail."""
    domain = mail_from.rpartition("@")[2] or "sitechat.invalid"
    return f"<sitechat.{conversation_id}.{delivery_id}@{domain}>"


class EmailEndpoint:
    name = EndpointName("email")
    max_batch = 1

    def __init__(
        self, smtp_url: str, mail_from: str, *, timeout: float = 15.0, listener: MailListener | None = None
    ) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("SITECHAT_SMTP_URL must look like smtp://user:pass@host:587 or smtps://…")
        self.hostname = parts.hostname or "localhost"
        self.use_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.use_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.mail_from = mail_from
        self.timeout = timeout
        #: visitors' replies to follow-up mails (``SITECHAT_INBOUND_SMTP``); None: none come in
        self.listener = listener

    def use_mail_inbox(self, inbox: MailInbox) -> None:
        """Where replies go (``bridge.mail_in``): set by the composition root before ``start``."""
        if self.listener is not None:
            self.listener.inbox = inbox

    async def start(self, inbox: Inbox) -> None:
        if self.listener is not None:
            await self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()

    async def ready(self, destination: str) -> None:
        return None

    def warnings(self) -> list[str]:
        return []

    def known_problems(self) -> list[str]:
        # an SMTP outage shows as postponed deliveries, not before; a listener that could not bind, at once
        return [self.listener.problem] if self.listener is not None and self.listener.problem else []

    async def check(self, destinations: Sequence[str]) -> list[str]:
        try:
            smtp = aiosmtplib.SMTP(hostname=self.hostname, port=self.port, use_tls=self.use_tls, timeout=self.timeout)
            await smtp.connect()
            if self.username and self.password:
                await smtp.login(self.username, self.password)
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError) as exc:
            return [f"email: cannot use the SMTP server {self.hostname}:{self.port} ({exc}); check SITECHAT_SMTP_URL"]
        return []

    async def describe(self, destinations: Sequence[str]) -> list[str]:
        if self.listener is None:
            return ["email: replies to follow-up mails are off (set SITECHAT_INBOUND_SMTP and SITECHAT_INBOUND_DOMAIN)"]
        where = f"{self.listener.host}:{self.listener.port}"
        return [
            f"email: replies to follow-up mails come in on {where} for {self.listener.hostname}; its MX must reach it"
        ]

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        item = batch[0]
        match item.what:
            case Transcript(text, to, html) if to:
                return await self._mail(item, to, text, html)
            case FollowUpMail(to, subject, text, html, reply_to):
                return await self._mail(item, to, text, html, subject=subject, reply_to=reply_to)
            case OpenThread() | Line() | RootState() | Transcript() | Notice() | Edit() | Deletion() | Erase():
                return [Sent(item.delivery_id)]  # nothing else goes by email (a mail sent cannot be taken back)
            case Reminder() | Invite() | Seen() | FilePost():
                return [Sent(item.delivery_id)]  # for the team chats
            case WebhookEvent():
                return [Sent(item.delivery_id)]
            case _:
                assert_never(item.what)

    async def _mail(
        self,
        item: Outgoing,
        to: str,
        text: str,
        html: str | None,
        *,
        subject: str | None = None,
        reply_to: str | None = None,
    ) -> Sequence[Sent]:
        mail = EmailMessage()
        mail["From"] = self.mail_from
        mail["To"] = to
        if reply_to:
            mail["Reply-To"] = reply_to
        mail["Subject"] = subject or f"Your chat with {item.site_name}"
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = message_id(item.conversation.id, item.delivery_id, self.mail_from)
        mail.set_content(text)
        if html:
            mail.add_alternative(html, subtype="html")
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.hostname,
                port=self.port,
                use_tls=self.use_tls,
                start_tls=None,
                username=self.username,
                password=self.password,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            log.warning("email: %s refused; the transcript is not sent", to)
            return [Sent(item.delivery_id, None)] if exc.recipients else []
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise DestinationUnavailable(f"SMTP login refused ({exc.code})") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RetryLater(f"SMTP: {exc}", maybe_sent=isinstance(exc, aiosmtplib.SMTPServerDisconnected)) from exc
        return [Sent(item.delivery_id)]
