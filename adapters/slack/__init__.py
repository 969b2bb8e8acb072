"""Slack: one thread per conversation in a channel, agents answer in the thread."""

from __future__ import annotations

from adapters.plugin import Plugin
from adapters.slack.endpoint import SlackEndpoint
from bridge.endpoint import StateStore
from config.settings import Settings


def build(settings: Settings, state: StateStore) -> Plugin | None:
    """The Slack endpoint when ``SLACK_BOT_TOKEN`` is set; in HTTP mode with its ``POST /slack/events``."""
    if settings.slack_bot_token is None:
        return None
    endpoint = SlackEndpoint(
        bot_token=settings.slack_bot_token.get_secret_value(),
        api_url=settings.slack_api_url,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None,
        app_token=settings.slack_app_token.get_secret_value() if settings.slack_app_token else None,
    )
    return plugin(endpoint)


def plugin(endpoint: SlackEndpoint) -> Plugin:
    return Plugin(endpoint, endpoint.routes())
