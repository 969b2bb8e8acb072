"""Webhook: closed and rated conversations POSTed to the site's own systems, through the outbox."""

from __future__ import annotations

from adapters.plugin import Plugin
from adapters.webhook.endpoint import WebhookEndpoint
from bridge.endpoint import StateStore
from config.parts import WebhookSettings


def build(webhook: WebhookSettings | None, state: StateStore) -> Plugin | None:
    """The webhook endpoint when ``SITECHAT_WEBHOOK_URL`` is set (it keeps no state of its own)."""
    if webhook is None:
        return None
    return Plugin(WebhookEndpoint(webhook.url, webhook.secret.get_secret_value()))
