"""Text between the bridge's neutral form (plain ``text`` plus optional subset ``html``) and Slack,
both ways. Pure functions; the conversions themselves live in ``rich_text.py`` and ``mrkdwn.py``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.html_subset import has_formatting, plain_text
from adapters.slack import rich_text
from adapters.slack.mrkdwn import html_mrkdwn, mrkdwn_html, references
from adapters.slack.rich_text import Names, rich_text_html

_ANGLE = re.compile(r"<([^<>]*)>")


def escape(text: str) -> str:
    """Make text inert in Slack: no mention, link or special command can be formed from it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mentioned_users(text: str, blocks: Sequence[Any] = ()) -> set[str]:
    """The user ids a message mentions, in its text or its blocks (their names are looked up first)."""
    in_text = {m.group(1)[1:].split("|", 1)[0] for m in _ANGLE.finditer(text) if m.group(1).startswith("@")}
    return in_text | rich_text.mentioned_users(blocks)


@dataclass(frozen=True)
class Formatted:
    """A message in the neutral form: ``text`` plain (marks removed), ``html`` the subset, or None when
    the message has no formatting worth keeping."""

    text: str
    html: str | None = None


def agent_message(text: str, blocks: Sequence[Any] | None, user_names: Mapping[str, str]) -> Formatted:
    """What an agent wrote, from the ``rich_text`` blocks when the message has them, else from its mrkdwn
    ``text``: mentions by name (``@Alice``, ``#general``, ``@here``), real emoji, links kept."""
    given = references(text)
    names = Names({**given.users, **{k: v for k, v in user_names.items() if v}}, given.channels, given.groups)
    markup = rich_text_html(blocks, names) if blocks else None
    if markup is None:
        markup = mrkdwn_html(text, names)
    return Formatted(plain_text(markup), markup if has_formatting(markup) else None)


def to_plain(text: str, user_name: Callable[[str], str] | Mapping[str, str]) -> str:
    """An agent's mrkdwn as the visitor reads it in plain text."""
    names = {
        uid: (user_name.get(uid) if isinstance(user_name, Mapping) else user_name(uid)) or uid
        for uid in mentioned_users(text)
    }
    return agent_message(text, None, names).text


def line_mrkdwn(text: str, html: str | None) -> str:
    """A line the bridge posts for someone (a visitor, a Matrix staff member) as Slack text: their
    formatting as mrkdwn when it has any, else the plain text escaped. Never a mention or a link the
    HTML did not have."""
    return html_mrkdwn(html) if html else escape(text)


def display_name(name: str, limit: int = 80) -> str:
    """A ``username`` override: one line, no control characters, no ``<``/``>`` (nothing that could read as
    a mention or a link), Slack's 80-character limit."""
    cleaned = " ".join("".join(ch if ch.isprintable() and ch not in "<>" else " " for ch in name).split())
    return (cleaned or "Visitor")[:limit]
