"""A Slack message's structured ``rich_text`` blocks as the bridge's HTML subset. Pure.

Slack's clients send what a person wrote twice: as mrkdwn in ``text`` and as ``rich_text`` blocks
(sections, lists, quotes, preformatted text; styled text, links, mentions, emoji). The blocks say
exactly what the person saw, so they win; ``text`` is the fallback (``mrkdwn.py``). Text in the
blocks is not escaped the way ``text`` is, so it goes into the HTML escaped once, as any text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import emoji

from adapters.html_subset import strict

#: Slack's ``:skin-tone-N:`` (2 to 6) are the Fitzpatrick modifiers U+1F3FB to U+1F3FF
SKIN_TONES = {2: "\U0001f3fb", 3: "\U0001f3fc", 4: "\U0001f3fd", 5: "\U0001f3fe", 6: "\U0001f3ff"}
_VARIATION_SELECTOR = "\ufe0f"
_HEX_SEQUENCE = re.compile(r"[0-9a-fA-F]{2,6}(?:-[0-9a-fA-F]{2,6})*")
#: style flags and the subset's tag for each, outermost first
_STYLES = (("bold", "strong"), ("italic", "em"), ("strike", "del"), ("code", "code"))


@dataclass(frozen=True)
class Names:
    """How mentions read: user id → display name, channel id → name, user group id → handle."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)

    def user(self, uid: str) -> str:
        return f"@{self.users.get(uid) or uid}"

    def channel(self, cid: str) -> str:
        return f"#{self.channels.get(cid) or cid}"

    def group(self, gid: str) -> str:
        name = self.groups.get(gid) or gid
        return name if name.startswith("@") else f"@{name}"


def emoji_for(name: str, skin_tone: int | None = None, unicode: str | None = None) -> str:
    """The real emoji for a Slack emoji (``wave``, ``wave::skin-tone-2``); ``:name:`` when it is a
    workspace's own (custom emoji have no character)."""
    base, _, tone = name.partition("::skin-tone-")
    if tone.isdigit():
        skin_tone = skin_tone or int(tone)
    chars = ""
    if unicode and _HEX_SEQUENCE.fullmatch(unicode):
        chars = "".join(chr(int(part, 16)) for part in unicode.split("-") if int(part, 16) <= 0x10FFFF)
    if not chars:
        # Slack writes a ZWJ sequence's name with hyphens (man-running), the emoji library with underscores
        for name_tried in dict.fromkeys((base, base.replace("-", "_"))):
            found = emoji.emojize(f":{name_tried}:", language="alias")
            if found != f":{name_tried}:":
                chars = found
                break
        else:
            return f":{base}:"
    modifier = SKIN_TONES.get(skin_tone or 0)
    if modifier and not any(c in SKIN_TONES.values() for c in chars):
        # the modifier follows the first character (a ZWJ sequence's person), replacing its selector
        rest = chars[1:].removeprefix(_VARIATION_SELECTOR)
        chars = chars[0] + modifier + rest
    return chars


def mentioned_users(blocks: Sequence[Any]) -> set[str]:
    """The user ids the blocks mention (to look their names up first)."""
    return {str(e["user_id"]) for e in _inline_elements(blocks) if e.get("type") == "user" and e.get("user_id")}


def rich_text_html(blocks: Sequence[Any], names: Names) -> str | None:
    """The ``rich_text`` blocks as subset HTML; None when there are none (read ``text`` instead)."""
    parts: list[str] = []
    found = False
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") != "rich_text":
            continue
        found = True
        parts.append(_blocks_html([e for e in block.get("elements") or [] if isinstance(e, dict)], names))
    return strict("".join(parts)) if found else None


@dataclass(frozen=True)
class ListItem:
    """One list item on its way to HTML: its depth, ``ul`` or ``ol``, its content (HTML)."""

    indent: int
    tag: str
    content: str


def lists_html(items: Sequence[ListItem]) -> str:
    """Consecutive list items as (nested) ``ul``/``ol`` HTML."""
    out: list[str] = []
    i = 0
    while i < len(items):
        part, i = _list_html(items, i, items[i].indent)
        out.append(part)
    return "".join(out)


def _list_html(items: Sequence[ListItem], start: int, indent: int) -> tuple[str, int]:
    tag = items[start].tag
    parts = [f"<{tag}>"]
    i = start
    while i < len(items) and items[i].indent == indent and items[i].tag == tag:
        content = items[i].content
        i += 1
        while i < len(items) and items[i].indent > indent:
            nested, i = _list_html(items, i, items[i].indent)
            content += nested
        parts.append(f"<li>{content}</li>")
    parts.append(f"</{tag}>")
    return "".join(parts), i


def _blocks_html(elements: list[dict[str, Any]], names: Names) -> str:
    out: list[str] = []
    pending: list[ListItem] = []
    for element in elements:
        kind = element.get("type")
        inner = [e for e in element.get("elements") or [] if isinstance(e, dict)]
        if kind == "rich_text_list":
            tag = "ol" if element.get("style") == "ordered" else "ul"
            given = element.get("indent")
            indent = given if isinstance(given, int) else 0
            pending.extend(ListItem(indent, tag, _trimmed(_inline_html(_flat([s]), names))) for s in inner)
            continue
        if pending:
            out.append(lists_html(pending))
            pending = []
        if kind == "rich_text_section":
            content = _trimmed(_inline_html(inner, names))
            if content:
                out.append(f"<p>{content}</p>")
        elif kind == "rich_text_quote":
            out.append(f"<blockquote>{_trimmed(_inline_html(_flat(inner), names))}</blockquote>")
        elif kind == "rich_text_preformatted":
            text = "".join(_plain(e, names) for e in _flat(inner)).strip("\n")
            out.append(f"<pre>{html.escape(text, quote=False)}</pre>")
    if pending:
        out.append(lists_html(pending))
    return "".join(out)


def _flat(elements: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inline elements, whether given directly or inside sections (a quote may hold either)."""
    flat: list[dict[str, Any]] = []
    for e in elements:
        if e.get("type") == "rich_text_section":
            flat.extend(x for x in e.get("elements") or [] if isinstance(x, dict))
        else:
            flat.append(e)
    return flat


def _inline_elements(blocks: Sequence[Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(elements: Any) -> None:
        for e in elements if isinstance(elements, list) else []:
            if isinstance(e, dict):
                found.append(e)
                walk(e.get("elements"))

    walk([b for b in blocks if isinstance(b, dict) and b.get("type") == "rich_text"])
    return found


def _trimmed(content: str) -> str:
    """A block's content without the line breaks Slack leaves at its ends."""
    return re.sub(r"^(?:<br>|\s)+|(?:<br>|\s)+$", "", content)


def _plain(element: dict[str, Any], names: Names) -> str:
    """An inline element as the text a person reads."""
    match element.get("type"):
        case "text":
            return str(element.get("text") or "")
        case "link":
            return str(element.get("text") or element.get("url") or "")
        case "user":
            return names.user(str(element.get("user_id") or ""))
        case "usergroup":
            return names.group(str(element.get("usergroup_id") or ""))
        case "channel":
            return names.channel(str(element.get("channel_id") or ""))
        case "broadcast":
            return f"@{element.get('range') or 'here'}"
        case "emoji":
            tone = element.get("skin_tone")
            unicode = element.get("unicode")
            return emoji_for(
                str(element.get("name") or ""),
                tone if isinstance(tone, int) else None,
                unicode if isinstance(unicode, str) else None,
            )
        case "date":
            return str(element.get("fallback") or element.get("text") or "")
        case "color":
            return str(element.get("value") or "")
        case _:
            return str(element.get("text") or "")


def _inline_html(elements: Iterable[dict[str, Any]], names: Names) -> str:
    out: list[str] = []
    for element in elements:
        text = html.escape(_plain(element, names), quote=False).replace("\n", "<br>")
        if element.get("type") == "link":
            url = str(element.get("url") or "")
            text = f'<a href="{html.escape(url, quote=True)}">{text}</a>'
        given = element.get("style")
        style: dict[str, Any] = given if isinstance(given, dict) else {}
        for flag, tag in reversed(_STYLES):
            if style.get(flag):
                text = f"<{tag}>{text}</{tag}>"
        out.append(text)
    return "".join(out)
