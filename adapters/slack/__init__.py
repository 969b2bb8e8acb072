"""Slack: one thread per conversation in a channel, agents answer in the thread."""

from __future__ import annotations

from adapters.plugin import Plugin
from adapters.slack.endpoint import SlackEndpoint
from bridge.endpoint import StateStore
from config.parts import SlackSettings


def build(slack: SlackSettings | None, state: StateStore, *, note_prefix: str = "//") -> Plugin | None:
    """The Slack endpoint when Slack is configured (``SLACK_BOT_TOKEN``); in HTTP mode with its
    ``POST /slack/events``. ``note_prefix``: an agent's note (its files are never fetched)."""
    if slack is None:
        return None
    endpoint = SlackEndpoint(
        bot_token=slack.bot_token.get_secret_value(),
        api_url=slack.api_url,
        signing_secret=slack.signing_secret.get_secret_value() if slack.signing_secret else None,
        app_token=slack.app_token.get_secret_value() if slack.app_token else None,
        posts_per_second=slack.posts_per_second,
        state=state,
        note_prefix=note_prefix,
    )
    return plugin(endpoint)


def plugin(endpoint: SlackEndpoint) -> Plugin:
    return Plugin(endpoint, endpoint.routes())
