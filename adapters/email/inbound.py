"""The bridge's own SMTP listener (``SITECHAT_INBOUND_SMTP``, aiosmtpd on the running event loop): visitors'
replies to follow-up mails come in here and go to the core (``bridge.mail_in``), which puts them into the
thread as the visitor's message.

Point the MX of ``SITECHAT_INBOUND_DOMAIN`` at it (directly, or through a relay that keeps the sender).
What is refused, with a 5xx the sending server reports back to its user: an address that is no
conversation's (550 5.1.1), a sender — the envelope's or the ``From`` header's — that is not the
conversation's visitor (550 5.7.1), the null sender of a bounce (550 5.7.1), and more than ``MAX_BYTES``
(552, by aiosmtpd). Automatic mail (``Auto-Submitted``, out-of-office replies) is taken and dropped, so
the sending server does not retry it and the thread does not read "I am away until Monday". When the
database cannot answer, it is 451 (try again later): the sending server retries, nothing is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses

from aiosmtpd.smtp import SMTP, Envelope, Session

from adapters.email.reply_text import mail_body, reply_text
from bridge.mail_in import MailInbox, Refusal

log = logging.getLogger(__name__)

#: the largest mail taken (a reply with a photo in it); larger is refused with 552
MAX_BYTES = 10 * 1024 * 1024
TRY_LATER = "451 4.3.0 Cannot take mail right now; try again later"
REFUSALS = {
    Refusal.UNKNOWN: "550 5.1.1 No such conversation here",
    Refusal.SENDER: "550 5.7.1 Only the visitor of this conversation may write to it",
}


def automatic(mail: Message) -> bool:
    """Mail a machine sent (an out-of-office reply, a mailing list's): RFC 3834 and the usual headers."""
    submitted = str(mail.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(mail.get("Precedence", "")).strip().lower()
    return (
        submitted != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or any(mail.get(h) is not None for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"))
    )


def from_address(mail: Message) -> str | None:
    found = [address for _, address in getaddresses([str(mail.get("From", ""))]) if "@" in address]
    return found[0] if len(found) == 1 else None


class MailListener:
    """An SMTP server on ``host:port``; ``inbox`` (the core's) decides what is taken."""

    def __init__(self, host: str, port: int, *, hostname: str | None = None) -> None:
        self.host = host
        self.port = port
        self.hostname = hostname
        self.inbox: MailInbox | None = None
        self.problem: str | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._smtp, self.host, self.port)
            self.problem = None
        except OSError as exc:
            self.problem = f"email: cannot listen for replies on {self.host}:{self.port} ({exc.strerror or exc})"
            log.error("%s; check SITECHAT_INBOUND_SMTP", self.problem)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def bound_port(self) -> int | None:
        """The port it listens on (``:0`` picks a free one)."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    def _smtp(self) -> SMTP:
        return SMTP(
            self, data_size_limit=MAX_BYTES, enable_SMTPUTF8=True, hostname=self.hostname, timeout=60, ident="sitechat"
        )

    # -- the aiosmtpd handler hooks ----------------------------------------------------------------------

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not envelope.mail_from:
            return "550 5.7.1 Bounces are not taken here"
        refusal = await self._refusal(address, envelope.mail_from)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        content = raw if isinstance(raw, bytes) else raw.encode("utf-8", "replace")
        mail = BytesParser(policy=policy.default).parsebytes(content)
        if automatic(mail):
            return "250 OK: automatic mail is not passed on"
        sender = from_address(mail)
        for recipient in envelope.rcpt_tos:
            refusal = await self._refusal(recipient, sender or "")
            if refusal is not None:
                return refusal
        assert self.inbox is not None and sender is not None  # _refusal said so
        text = reply_text(mail_body(mail))
        mail_id = str(mail.get("Message-ID") or "").strip() or hashlib.sha256(content).hexdigest()
        try:
            for recipient in envelope.rcpt_tos:
                await self.inbox.receive(recipient, sender, text, mail_id)
        except Exception as exc:
            log.warning("email: a reply could not be stored (%s); the sender will retry", type(exc).__name__)
            return TRY_LATER
        return "250 OK"

    async def _refusal(self, recipient: str, sender: str) -> str | None:
        """The SMTP answer that refuses mail from ``sender`` to ``recipient``; None to take it."""
        if self.inbox is None:
            return TRY_LATER  # the bridge is still starting
        if not sender:
            return REFUSALS[Refusal.SENDER]
        try:
            refusal = await self.inbox.refusal(recipient, sender)
        except Exception as exc:
            log.warning("email: cannot check a reply's address (%s)", type(exc).__name__)
            return TRY_LATER
        return REFUSALS[refusal] if refusal is not None else None
