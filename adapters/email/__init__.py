"""Email: transcripts mailed to visitors, through the same outbox as the team chats."""

from __future__ import annotations

from adapters.email.endpoint import EmailEndpoint
from adapters.plugin import Plugin
from bridge.endpoint import StateStore
from config.settings import Settings


def build(settings: Settings, state: StateStore) -> Plugin | None:
    """The email endpoint when ``SITECHAT_SMTP_URL`` is set."""
    if settings.smtp_url is None:
        return None
    return Plugin(EmailEndpoint(settings.smtp_url.get_secret_value(), settings.mail_from or ""))
