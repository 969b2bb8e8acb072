"""Email: transcripts mailed to visitors, through the same outbox as the team chats."""

from __future__ import annotations

from adapters.email.endpoint import EmailEndpoint
from adapters.plugin import Plugin
from bridge.endpoint import StateStore
from config.parts import EmailSettings


def build(email: EmailSettings | None, state: StateStore) -> Plugin | None:
    """The email endpoint when ``SITECHAT_SMTP_URL`` is set (it keeps no state of its own)."""
    if email is None:
        return None
    return Plugin(EmailEndpoint(email.smtp_url.get_secret_value(), email.mail_from))
