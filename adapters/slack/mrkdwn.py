"""Slack mrkdwn and the bridge's HTML subset, both ways. Pure.

To HTML: an agent's ``text`` when the message has no ``rich_text`` blocks. Slack's text is escaped
(``&amp; &lt; &gt;``) so that a raw ``<`` always starts one of its tokens (a link, a mention): the
tokens and code are taken out first, the marks read from what is left, and the entities decoded once,
as the last step before the text is escaped again for HTML.

From HTML: a Matrix staff reply as mrkdwn for Slack. Every piece of text is escaped (``& < >``), so
the only links and no mentions at all are the ones the HTML had.
"""

from __future__ import annotations

import html
import re

from adapters.html_subset import Node, parse, strict
from adapters.slack.rich_text import ListItem, Names, emoji_for, lists_html

_FENCE = "```"
_ANGLE = re.compile(r"<([^<>\n]*)>")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_SHORTCODE = re.compile(r":([a-z0-9_+\-']+):(?::skin-tone-([2-6]):)?")
_EMPHASIS = re.compile(r"(?<!\w)([*_~])(?=\S)([^\n]*?\S)\1(?!\w)")
_MARK_TAGS = {"*": "strong", "_": "em", "~": "del"}
_PLACEHOLDER = re.compile(r"\x01(\d+)\x02")
_QUOTE = re.compile(r"^(?:&gt;|>) ?")
_LIST_ITEM = re.compile(r"^([ \t]*)(?:([•◦▪▫‣\-])|(\d{1,3})[.)])[ \t]+(?=\S)")
_REFERENCE = re.compile(r"<([@#]|!subteam\^)([A-Z0-9]+)(?:\|([^<>]*))?>")


def unescape(text: str) -> str:
    """Slack's three entities, decoded once (``&amp;lt;`` is the text ``&lt;``)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def references(text: str) -> Names:
    """The names a message's text gives its own mentions (``<#C1|general>``, ``<!subteam^S1|@team>``);
    user ids are listed with no name (the directory knows them)."""
    users: dict[str, str] = {}
    channels: dict[str, str] = {}
    groups: dict[str, str] = {}
    for kind, ident, label in _REFERENCE.findall(text):
        target = users if kind == "@" else channels if kind == "#" else groups
        if label or ident not in target:
            target[ident] = unescape(label)
    return Names(users, channels, groups)


def angle_text(inner: str, names: Names) -> tuple[str, str | None]:
    """One ``<…>`` token as (the text people read, the link's URL if it is a web link)."""
    target, _, label = inner.partition("|")
    label = unescape(label)
    if target.startswith("@"):
        return (f"@{label}" if label else names.user(target[1:])), None
    if target.startswith("#"):
        return (f"#{label}" if label else names.channel(target[1:])), None
    if target.startswith("!"):
        special = target[1:].split("^", 1)
        if special[0] == "subteam" and len(special) > 1:
            return (label or names.group(special[1])), None
        if label:
            return label, None
        return (f"@{special[0]}" if special[0] in ("here", "channel", "everyone") else ""), None
    url = unescape(target)
    if target.startswith("mailto:"):
        return label or url.removeprefix("mailto:"), None
    web = url if re.match(r"(?i)https?://", url) else None
    return label or url, web


def mrkdwn_html(text: str, names: Names) -> str:
    """An agent's mrkdwn as subset HTML."""
    out: list[str] = []
    pieces = text.split(_FENCE)
    if len(pieces) % 2 == 0:  # an unclosed fence is just three backticks
        pieces[-2:] = [pieces[-2] + _FENCE + pieces[-1]]
    for index, piece in enumerate(pieces):
        if index % 2:
            code = _ANGLE.sub(lambda m: angle_text(m.group(1), names)[0], piece)
            out.append(f"<pre>{html.escape(unescape(code).strip(chr(10)), quote=False)}</pre>")
        else:
            out.append(_blocks(piece, names))
    return strict("".join(out))


def _blocks(text: str, names: Names) -> str:
    out: list[str] = []
    paragraph: list[str] = []
    quote: list[str] = []
    items: list[ListItem] = []

    def flush(keep: str = "") -> None:
        if paragraph and keep != "p":
            out.append(f"<p>{'<br>'.join(paragraph)}</p>")
            paragraph.clear()
        if quote and keep != "q":
            out.append(f"<blockquote>{'<br>'.join(quote)}</blockquote>")
            quote.clear()
        if items and keep != "l":
            out.append(lists_html(items))
            items.clear()

    for line in text.split("\n"):
        if (found := _QUOTE.match(line)) is not None:
            flush("q")
            quote.append(_inline(line[found.end() :], names))
        elif (item := _LIST_ITEM.match(line)) is not None:
            flush("l")
            indent = len(item.group(1).expandtabs(4)) // 4
            items.append(ListItem(indent, "ol" if item.group(3) else "ul", _inline(line[item.end() :], names)))
        elif line.strip():
            flush("p")
            paragraph.append(_inline(line, names))
        else:
            flush()
    flush()
    return "".join(out)


def _inline(line: str, names: Names) -> str:
    """One line's marks, links, mentions and emoji as HTML (its text escaped once)."""
    taken: list[str] = []

    def take(markup: str) -> str:
        taken.append(markup)
        return f"\x01{len(taken) - 1}\x02"

    def code(match: re.Match[str]) -> str:
        inner = _ANGLE.sub(lambda m: angle_text(m.group(1), names)[0], match.group(1))
        return take(f"<code>{html.escape(unescape(inner), quote=False)}</code>")

    def angle(match: re.Match[str]) -> str:
        label, url = angle_text(match.group(1), names)
        label_html = _text_html(label, emoji=False)
        return take(f'<a href="{html.escape(url, quote=True)}">{label_html}</a>' if url else label_html)

    line = line.replace("\x01", "").replace("\x02", "")
    line = _CODE_SPAN.sub(code, line)
    line = _ANGLE.sub(angle, line)
    rendered = _marks(line)
    return _PLACEHOLDER.sub(lambda m: taken[int(m.group(1))], rendered)


def _marks(text: str) -> str:
    out: list[str] = []
    done = 0
    for match in _EMPHASIS.finditer(text):
        tag = _MARK_TAGS[match.group(1)]
        out.append(_text_html(unescape(text[done : match.start()])))
        out.append(f"<{tag}>{_marks(match.group(2))}</{tag}>")
        done = match.end()
    out.append(_text_html(unescape(text[done:])))
    return "".join(out)


def _text_html(text: str, *, emoji: bool = True) -> str:
    if emoji:
        text = _SHORTCODE.sub(lambda m: emoji_for(m.group(1), int(m.group(2)) if m.group(2) else None), text)
    # placeholders pass through escaping unchanged: they hold no & < >
    return html.escape(text, quote=False)


# -- the subset as mrkdwn ----------------------------------------------------------------------


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_WRAP = {"strong": "*", "em": "_", "del": "~"}
_BLANKS = re.compile(r"\n{3,}")


def html_mrkdwn(markup: str) -> str:
    """Subset HTML as Slack mrkdwn; nothing in it can mention anyone or link anywhere it did not."""
    return _BLANKS.sub("\n\n", _render(parse(markup), 0)).strip("\n")


def _render(node: Node, depth: int) -> str:
    out: list[str] = []
    number = 0
    for child in node.children:
        if isinstance(child, str):
            out.append(escape(child))
            continue

        def inner(c: Node = child) -> str:
            return _render(c, depth)

        match child.tag:
            case "br":
                out.append("\n")
            case "strong" | "em" | "del":
                mark = _WRAP[child.tag]
                content = inner()
                out.append(f"{mark}{content}{mark}" if content.strip() else content)
            case "code":
                out.append(f"`{escape(child.text())}`")
            case "pre":
                out.append(f"\n```\n{escape(child.text().strip(chr(10)))}\n```\n")
            case "a":
                label = inner()
                href = child.href or ""
                if not href:
                    out.append(label)
                else:
                    out.append(f"<{escape(href)}>" if label in ("", escape(href)) else f"<{escape(href)}|{label}>")
            case "blockquote":
                lines = inner().strip("\n").split("\n")
                out.append("\n" + "\n".join(f">{' ' if line else ''}{line}" for line in lines) + "\n")
            case "ul" | "ol":
                out.append("\n" + _render(child, depth + 1).strip("\n") + "\n")
            case "li":
                number += 1
                marker = f"{number}." if node.tag == "ol" else "•"
                out.append("    " * max(0, depth - 1) + f"{marker} " + inner().strip("\n") + "\n")
            case "p":
                out.append("\n" + inner().strip("\n") + "\n")
            case _:
                out.append(inner())
    return "".join(out)
