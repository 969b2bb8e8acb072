"""The one formatted form a message may carry besides its plain text (CONTRACT §7): a sanitized HTML
subset — ``p br strong em del code pre blockquote ul ol li a`` and nothing else; an ``a`` only with an
``http``/``https`` ``href``, always with ``rel="noopener noreferrer nofollow"`` and ``target="_blank"``.

Pure functions shared by the team-chat adapters: sanitizing is nh3's (never a pattern of ours), and the
little that is done to nh3's own normalised output (renaming ``<b>`` to ``<strong>``, unwrapping an ``a``
left without its link) is followed by nh3 again. :func:`parse` reads the subset back into a small tree
that renderers of other markups (plain text here, Slack mrkdwn in the Slack adapter) walk.
"""

from __future__ import annotations

import functools
import html as htmllib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

import nh3

TAGS = frozenset({"p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a"})
LINK_REL = "noopener noreferrer nofollow"
#: tags that say more than "a paragraph": a message whose HTML has none of them needs no ``html``
FORMATTING = TAGS - {"p", "br"}
#: other HTML's marks, read as the subset's (``<b>`` is bold as much as ``<strong>``)
RENAMED = {"b": "strong", "i": "em", "s": "del", "strike": "del", "ins": "em", "u": "em", "tt": "code"}
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
#: dropped with everything inside them: never text a person wrote
DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "noscript", "title", "textarea"})
_WIDER = TAGS | set(RENAMED) | HEADINGS
_RENAME = re.compile(r"<(/?)(" + "|".join(sorted(RENAMED)) + r")>")
_HEADING = re.compile(r"<(/?)h[1-6]>")
_LINK_WITHOUT_HREF = re.compile(r'<a target="_blank" rel="' + LINK_REL + r'">(.*?)</a>', re.S)


def _web_link(tag: str, attribute: str, value: str) -> str | None:
    """Only an absolute ``http(s)`` URL stays an ``href`` (nh3 alone keeps relative ones)."""
    if tag == "a" and attribute == "href":
        try:
            parts = urlsplit(value.strip())
        except ValueError:
            return None
        return value.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None
    return value


@functools.cache
def _wide_cleaner(removed: frozenset[str]) -> nh3.Cleaner:
    """The first pass of ``sanitize`` for one set of tags removed with their content (built once each: an
    ``nh3.clean`` call builds its allow-lists anew, several times the cost of the cleaning)."""
    return nh3.Cleaner(
        tags=set(_WIDER),
        clean_content_tags=set(removed),
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
        link_rel=None,
        strip_comments=True,
        attribute_filter=_web_link,
    )


_STRICT = nh3.Cleaner(
    tags=set(TAGS),
    clean_content_tags=set(DROPPED_WITH_CONTENT),
    attributes={"a": {"href"}},
    url_schemes={"http", "https"},
    link_rel=LINK_REL,
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
    attribute_filter=_web_link,
)


def sanitize(markup: str, *, drop: Iterable[str] = ()) -> str:
    """Any HTML as the subset: foreign marks renamed (``b`` → ``strong``, a heading → a bold paragraph),
    every other tag and attribute gone (their text kept), scripts and styles gone with their content,
    links only to web pages. ``drop``: more tags to remove with their content (Matrix's ``mx-reply``)."""
    wide = _wide_cleaner(DROPPED_WITH_CONTENT | frozenset(drop)).clean(markup)
    # nh3's output has no attributes on these tags: the patterns see exactly ``<b>`` and ``</b>``
    renamed = _RENAME.sub(lambda m: f"<{m.group(1)}{RENAMED[m.group(2)]}>", wide)
    renamed = _HEADING.sub(lambda m: "</strong></p>" if m.group(1) else "<p><strong>", renamed)
    return strict(renamed)


def strict(markup: str) -> str:
    """The subset's own cleaning, for HTML already meant to be the subset (built by an adapter)."""
    return _LINK_WITHOUT_HREF.sub(r"\1", _STRICT.clean(markup))


def escape(text: str) -> str:
    """Plain text as subset HTML that shows it as it is (line breaks kept)."""
    return htmllib.escape(text, quote=False).replace("\n", "<br>")


# -- reading the subset back -------------------------------------------------------------------


@dataclass
class Node:
    tag: str  # "" for the root
    href: str | None = None
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    VOID = frozenset({"br"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("")
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TAGS:
            return
        node = Node(tag, dict(attrs).get("href") if tag == "a" else None)
        self._open[-1].children.append(node)
        if tag not in self.VOID:
            self._open.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)


def parse(markup: str) -> Node:
    """Subset HTML (as :func:`strict` leaves it) as a tree; text is unescaped."""
    builder = _TreeBuilder()
    builder.feed(markup)
    builder.close()
    return builder.root


def has_formatting(markup: str) -> bool:
    """True when the HTML says more than its plain text would (a mark, a list, a link…)."""

    def walk(node: Node) -> bool:
        return any(isinstance(c, Node) and (c.tag in FORMATTING or walk(c)) for c in node.children)

    return walk(parse(markup))


_BOUNDARY = "\x00"  # where a block starts or ends: one line break, however many meet
_BOUNDARIES = re.compile(r"[ \t]*\x00[\x00\n]*")


def plain_text(markup: str) -> str:
    """The subset as plain text: marks gone, blocks on lines of their own, list items with a bullet or
    their number, a link as ``label (url)`` (just the URL when that is its label)."""
    return _BOUNDARIES.sub("\n", _plain(parse(markup), 0)).strip()


def link_text(label: str, href: str | None) -> str:
    if not href or label.strip() in ("", href, href.rstrip("/")):
        return href or label
    return f"{label} ({href})"


def _plain(node: Node, depth: int) -> str:
    out: list[str] = []
    number = 0
    for child in node.children:
        if isinstance(child, str):
            out.append(child.replace(_BOUNDARY, ""))
            continue
        match child.tag:
            case "br":
                out.append("\n")
            case "a":
                out.append(link_text(_plain(child, depth), child.href))
            case "pre":
                out.append(_block(child.text().replace(_BOUNDARY, "").strip("\n")))
            case "ul" | "ol":
                out.append(_block(_plain(child, depth + 1)))
            case "li":
                number += 1
                marker = f"{number}." if node.tag == "ol" else "•"
                out.append(_block("  " * max(0, depth - 1) + f"{marker} " + _plain(child, depth)))
            case "p" | "blockquote":
                out.append(_block(_plain(child, depth)))
            case _:
                out.append(_plain(child, depth))
    return "".join(out)


def _block(text: str) -> str:
    return f"{_BOUNDARY}{text}{_BOUNDARY}"
