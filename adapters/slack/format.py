"""Text between the neutral plain form and Slack's mrkdwn, both ways. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import emoji

_ANGLE = re.compile(r"<([^<>]*)>")
_SHORTCODE = re.compile(r":[a-z0-9_+\-']+:")


def escape(text: str) -> str:
    """Make text inert in Slack: no mention, link or special command can be formed from it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mentioned_users(text: str) -> set[str]:
    return {m.group(1)[1:].split("|", 1)[0] for m in _ANGLE.finditer(text) if m.group(1).startswith("@")}


def to_plain(text: str, user_name: Callable[[str], str] | Mapping[str, str]) -> str:
    """An agent's mrkdwn as the visitor should read it: names for mentions, links as ``label (url)``, emoji."""
    lookup = user_name.get if isinstance(user_name, Mapping) else user_name

    def angle(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            name = label or lookup(target[1:]) or target[1:]
            return f"@{name}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            if label:
                return label
            special = target[1:].split("^", 1)[0]
            return f"@{special}" if special in ("here", "channel", "everyone") else ""
        if target.startswith("mailto:"):
            return label or target.removeprefix("mailto:")
        if label and label != target:
            return f"{label} ({target})"
        return target

    plain = _ANGLE.sub(angle, text)
    plain = _SHORTCODE.sub(lambda m: emoji.emojize(m.group(0), language="alias"), plain)
    return unescape(plain)


def display_name(name: str, limit: int = 80) -> str:
    """A ``username`` override: one line, no control characters, no ``<``/``>`` (nothing that could read as
    a mention or a link), Slack's 80-character limit."""
    cleaned = " ".join("".join(ch if ch.isprintable() and ch not in "<>" else " " for ch in name).split())
    return (cleaned or "Visitor")[:limit]
