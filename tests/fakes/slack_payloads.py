"""Signed requests and payloads shaped like the ones Slack sends to an app.

Shapes follow what Slack sends and what slack-bolt 1.30 needs to route them:

* Events API: bolt routes on ``type == "event_callback"`` and ``event.type``; it takes the team
  from ``authorizations[0]`` (before ``team_id``) and runs its self-event filter against the
  ``auth.test`` answer, comparing ``event.user`` with the bot user and ``event.bot_id`` with
  the bot id.  ``app.event("message")`` sees every subtype, thread replies included.
* Interactivity arrives form-encoded as ``payload=<json>``; bolt routes ``block_actions`` on
  ``actions[0].action_id``.
* Slash commands arrive form-encoded; bolt routes on ``command``.  Beware: bolt's body parser
  treats *any* form body containing the substring "payload" as interactivity, so a slash
  command whose text mentions "payload" reaches no listener (see the self-test).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from tests.fakes.slack_rich_text import rich_text_blocks as typed_rich_text

JSON = dict[str, Any]

DEFAULT_TEAM_ID = "T0TEAM"
DEFAULT_APP_ID = "AAPP"
DEFAULT_BOT_USER_ID = "UBOT"
VERIFICATION_TOKEN = "fake-verification-token"  # deprecated by Slack, still sent in payloads

_last_ts_us = 0
_issued_event_ids: set[str] = set()


def new_ts() -> str:
    """A fresh Slack-style ``ts`` ("1712000000.000100"): unique and increasing in this process."""
    global _last_ts_us
    now_us = int(time.time() * 1_000_000)
    _last_ts_us = max(now_us, _last_ts_us + 1)
    return f"{_last_ts_us // 1_000_000}.{_last_ts_us % 1_000_000:06d}"


def new_event_id() -> str:
    """A fresh Events API id like Slack's "Ev08MFMKH6J2": "Ev" and ten upper-case characters."""
    while True:
        event_id = f"Ev{secrets.token_hex(5).upper()}"
        if event_id not in _issued_event_ids:
            _issued_event_ids.add(event_id)
            return event_id


# ---------------------------------------------------------------------- signing


def signature(secret: str, body: str | bytes, timestamp: int) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str,
    body: str | bytes,
    timestamp: int | None = None,
    content_type: str | None = None,
) -> dict[str, str]:
    """Slack's request-signing headers for ``body`` (timestamp: now unless given)."""
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(secret, body, ts),
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def signed_json(secret: str, payload: Mapping[str, Any], timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A JSON body (as the Events API posts it) and its signed headers."""
    body = json.dumps(payload).encode()
    return body, signed_headers(secret, body, timestamp, content_type="application/json")


def signed_form(secret: str, fields: Mapping[str, str], timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A form body (slash commands; interactivity as ``{"payload": json}``) and its signed headers."""
    body = urlencode(dict(fields)).encode()
    return body, signed_headers(secret, body, timestamp, content_type="application/x-www-form-urlencoded")


def interactive_form(payload: Mapping[str, Any]) -> dict[str, str]:
    """The form fields of an interactivity request: ``payload=<json>``."""
    return {"payload": json.dumps(payload)}


# ---------------------------------------------------------------------- Events API


def default_authorizations(team_id: str = DEFAULT_TEAM_ID, bot_user_id: str = DEFAULT_BOT_USER_ID) -> list[JSON]:
    return [
        {
            "enterprise_id": None,
            "team_id": team_id,
            "user_id": bot_user_id,
            "is_bot": True,
            "is_enterprise_install": False,
        }
    ]


def event_callback(
    event: Mapping[str, Any],
    event_id: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    authorizations: list[JSON] | None = None,
    event_time: int | None = None,
) -> JSON:
    """The envelope Slack posts to the Events API request URL (or sends over Socket Mode)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": authorizations if authorizations is not None else default_authorizations(team_id),
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }


def url_verification(challenge: str = "fake-challenge") -> JSON:
    return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}


def rich_text_blocks(text: str) -> list[JSON]:
    """The rich_text block Slack's clients attach to a typed message (made from its mrkdwn ``text``)."""
    return typed_rich_text(text)


def message_event(
    channel: str,
    user: str | None,
    text: str,
    ts: str | None = None,
    thread_ts: str | None = None,
    subtype: str | None = None,
    bot_id: str | None = None,
    app_id: str | None = None,
    files: list[JSON] | None = None,
    blocks: list[JSON] | None = None,
    *,
    team_id: str = DEFAULT_TEAM_ID,
    parent_user_id: str | None = None,
    username: str | None = None,
    channel_type: str = "channel",
) -> JSON:
    """A ``message`` event.  A thread reply carries ``thread_ts`` (≠ ``ts``) and no subtype.

    A person's message gets ``client_msg_id`` and rich_text ``blocks`` (pass ``blocks=[]`` to
    leave them out); a message with ``files`` and no subtype is a ``file_share``.
    """
    ts = ts or new_ts()
    event: JSON = {"type": "message"}
    if subtype is None and files:
        subtype = "file_share"
    if subtype is not None:
        event["subtype"] = subtype
    if user is not None:
        event["user"] = user
    event.update(text=text, ts=ts)
    if bot_id is None and user is not None:
        event["client_msg_id"] = str(uuid.uuid4())
    if bot_id is not None:
        event["bot_id"] = bot_id
    if app_id is not None:
        event["app_id"] = app_id
    if username is not None:
        event["username"] = username
    event["team"] = team_id
    if blocks is None and bot_id is None:
        blocks = rich_text_blocks(text)
    if blocks:
        event["blocks"] = blocks
    if files:
        event["files"] = files
        event["upload"] = False
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        if thread_ts != ts:
            event["parent_user_id"] = parent_user_id or DEFAULT_BOT_USER_ID
    event.update(channel=channel, event_ts=ts, channel_type=channel_type)
    return event


def message_changed_event(
    channel: str,
    ts: str,
    text: str,
    user: str,
    previous_text: str = "",
    thread_ts: str | None = None,
    event_ts: str | None = None,
    bot_id: str | None = None,
) -> JSON:
    """An edit: the new content is under ``event.message`` (with its rich_text blocks, as a client sends
    them), the old under ``previous_message``."""
    event_ts = event_ts or new_ts()
    inner: JSON = {"type": "message", "user": user, "text": text, "ts": ts, "edited": {"user": user, "ts": event_ts}}
    if bot_id is None:
        inner["blocks"] = rich_text_blocks(text)
    previous: JSON = {"type": "message", "user": user, "text": previous_text, "ts": ts}
    if bot_id is not None:
        inner["bot_id"] = previous["bot_id"] = bot_id
    if thread_ts is not None:
        inner["thread_ts"] = previous["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": inner,
        "previous_message": previous,
        "channel": channel,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": "channel",
    }


def message_deleted_event(
    channel: str,
    deleted_ts: str,
    user: str,
    previous_text: str = "",
    thread_ts: str | None = None,
    event_ts: str | None = None,
) -> JSON:
    """A deletion: what was deleted is under ``previous_message``."""
    event_ts = event_ts or new_ts()
    previous: JSON = {"type": "message", "user": user, "text": previous_text, "ts": deleted_ts}
    if thread_ts is not None:
        previous["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": previous,
        "channel": channel,
        "hidden": True,
        "deleted_ts": deleted_ts,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": "channel",
    }


# ---------------------------------------------------------------------- interactivity and commands


def block_actions_payload(
    action_id: str,
    value: str,
    user_id: str,
    user_name: str,
    channel: str,
    message_ts: str,
    block_id: str = "actions",
    *,
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = "sitechat-test",
    api_app_id: str = DEFAULT_APP_ID,
    channel_name: str | None = None,
    thread_ts: str | None = None,
    message: JSON | None = None,
    button_text: str = "Button",
    response_url: str | None = None,
) -> JSON:
    """A Block Kit button click on a message (send it as ``interactive_form(payload)``)."""
    container: JSON = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}",
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel_name or channel.lower()},
        "message": message
        if message is not None
        else {"type": "message", "user": DEFAULT_BOT_USER_ID, "ts": message_ts, "text": ""},
        "state": {"values": {}},
        "response_url": response_url or f"https://hooks.slack.com/actions/{team_id}/1/{secrets.token_hex(12)}",
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": new_ts(),
            }
        ],
    }


def slash_command_form(
    command: str,
    text: str,
    user_id: str,
    channel_id: str,
    *,
    user_name: str = "agent",
    channel_name: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = "sitechat-test",
    api_app_id: str = DEFAULT_APP_ID,
    response_url: str | None = None,
    trigger_id: str | None = None,
) -> dict[str, str]:
    """The form fields of a slash command request (``signed_form(secret, fields)`` to send)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name or channel_id.lower(),
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url or f"https://hooks.slack.com/commands/{team_id}/1/{secrets.token_hex(12)}",
        "trigger_id": trigger_id or f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}",
    }


# ---------------------------------------------------------------------- workspace events


def user_change_event(user: Mapping[str, Any], event_ts: str | None = None) -> JSON:
    """A ``user_change``: someone's profile changed; ``event.user`` is the whole user object, as
    ``users.info`` shows it (``FakeSlack.add_user`` returns one)."""
    return {
        "type": "user_change",
        "user": dict(user),
        "cache_ts": int(time.time()),
        "event_ts": event_ts or new_ts(),
    }
