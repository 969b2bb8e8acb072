"""The ``rich_text`` blocks Slack's clients attach to what a person typed, made from the message's mrkdwn
``text`` the way the client would: styled text, links, mentions, emoji, quotes, lists, code blocks.

Test support only: it covers what tests type (marks do not nest here), and its text elements hold the
characters as typed — Slack escapes ``& < >`` in ``text`` but not in the blocks.
"""

from __future__ import annotations

import re
from typing import Any

import emoji

JSON = dict[str, Any]

_TOKEN = re.compile(
    r"<(?P<angle>[^<>\n]*)>"
    r"|`(?P<code>[^`\n]+)`"
    r"|(?<!\w)(?P<mark>[*_~])(?P<marked>[^\s*_~](?:[^\n]*?[^\s])?)(?P=mark)(?!\w)"
    r"|:(?P<emoji>[a-z0-9_+\-']+):(?::skin-tone-(?P<tone>[2-6]):)?"
)
_STYLE = {"*": "bold", "_": "italic", "~": "strike"}
_LIST = re.compile(r"^([ \t]*)(?:([•◦\-])|(\d+)\.)[ \t]+")


def _decode(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(value: str, style: JSON | None = None) -> JSON:
    element: JSON = {"type": "text", "text": _decode(value)}
    if style:
        element["style"] = style
    return element


def _angle(inner: str) -> JSON:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return {"type": "user", "user_id": target[1:]}
    if target.startswith("#"):
        return {"type": "channel", "channel_id": target[1:]}
    if target.startswith("!subteam^"):
        return {"type": "usergroup", "usergroup_id": target.split("^", 1)[1]}
    if target.startswith("!date^"):
        return {"type": "date", "timestamp": int(target.split("^")[1]), "fallback": _decode(label)}
    if target.startswith("!"):
        return {"type": "broadcast", "range": target[1:]}
    link: JSON = {"type": "link", "url": _decode(target)}
    if label:
        link["text"] = _decode(label)
    return link


def _inline(line: str) -> list[JSON]:
    elements: list[JSON] = []
    done = 0
    for match in _TOKEN.finditer(line):
        if match.start() > done:
            elements.append(_text(line[done : match.start()]))
        done = match.end()
        if match.group("angle") is not None:
            elements.append(_angle(match.group("angle")))
        elif match.group("code") is not None:
            elements.append(_text(match.group("code"), {"code": True}))
        elif match.group("mark") is not None:
            elements.append(_text(match.group("marked"), {_STYLE[match.group("mark")]: True}))
        else:
            name = match.group("emoji")
            found = emoji.emojize(f":{name}:", language="alias")
            element: JSON = {"type": "emoji", "name": name}
            if found != f":{name}:":
                element["unicode"] = "-".join(f"{ord(c):x}" for c in found if c != "\ufe0f")
            if match.group("tone"):
                element["skin_tone"] = int(match.group("tone"))
            elements.append(element)
    if done < len(line):
        elements.append(_text(line[done:]))
    return elements


def rich_text_blocks(text: str) -> list[JSON]:
    """One ``rich_text`` block for the mrkdwn ``text``."""
    elements: list[JSON] = []
    section: list[str] = []

    def flush() -> None:
        if section:
            elements.append({"type": "rich_text_section", "elements": _inline("\n".join(section))})
            section.clear()

    pieces = text.split("```")
    for index, piece in enumerate(pieces):
        if index % 2 and index < len(pieces) - 1:
            flush()
            elements.append({"type": "rich_text_preformatted", "elements": [_text(piece.strip("\n"))]})
            continue
        for line in piece.split("\n") if piece else []:
            if line.startswith("&gt;"):
                flush()
                elements.append({"type": "rich_text_quote", "elements": _inline(line[4:].lstrip())})
            elif (item := _LIST.match(line)) is not None:
                flush()
                style = "ordered" if item.group(3) else "bullet"
                indent = len(item.group(1).expandtabs(4)) // 4
                entry = {"type": "rich_text_section", "elements": _inline(line[item.end() :])}
                last = elements[-1] if elements else None
                if last and last["type"] == "rich_text_list" and (last["style"], last["indent"]) == (style, indent):
                    last["elements"].append(entry)
                else:
                    elements.append({"type": "rich_text_list", "style": style, "indent": indent, "elements": [entry]})
            else:
                section.append(line)
    flush()
    if not elements:
        elements.append({"type": "rich_text_section", "elements": []})
    return [{"type": "rich_text", "block_id": "rt" + str(abs(hash(text)) % 10_000), "elements": elements}]
