"""Email: transcripts and follow-ups mailed to visitors, through the same outbox as the team chats, and
the visitors' replies taken in by the bridge's own SMTP listener."""

from __future__ import annotations

from adapters.email.endpoint import EmailEndpoint
from adapters.email.inbound import MailListener
from adapters.plugin import Plugin
from bridge.endpoint import StateStore
from config.parts import EmailSettings


def build(email: EmailSettings | None, state: StateStore) -> Plugin | None:
    """The email endpoint when ``SITECHAT_SMTP_URL`` is set (it keeps no state of its own), listening for
    replies on ``SITECHAT_INBOUND_SMTP`` when that is set."""
    if email is None:
        return None
    listener = None
    if email.inbound_smtp is not None:
        host, port = email.inbound_smtp
        listener = MailListener(host, port, hostname=email.inbound_domain)
    return Plugin(EmailEndpoint(email.smtp_url.get_secret_value(), email.mail_from, listener=listener))
