"""Pure converters between the bridge's plain text and Matrix event content. No I/O.

Outbound, everything the bot posts is untrusted text (a visitor's, or a Slack agent's on a mirrored
site): ``body`` stays plain, ``formatted_body`` (when sent) is built only from HTML-escaped text, and
every event carries an empty ``m.mentions`` so nobody is pinged by what a visitor typed (``@room``,
a staff member's display name).

Inbound, a staff member's event becomes plain text for the visitor: ``body`` when there is one
(minus the quoted reply fallback), otherwise the HTML sanitised down to its text with links kept as
URLs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

import nh3

from bridge.model import Conversation
from bridge.transcript import split_text
from bridge.visitor_context import visitor_facts

THREAD = "m.thread"
REPLACE = "m.replace"
#: a thread ref is "room id|root event id"; neither kind of id may contain "|"
REF_SEPARATOR = "|"
#: message types that are a person talking; m.notice is, by convention, another bot
PERSON_TYPES = frozenset({"m.text", "m.emote", "m.image", "m.file", "m.video", "m.audio"})
FILE_TYPES = frozenset({"m.image", "m.file", "m.video", "m.audio"})
#: a root line's longest value (a page URL, a referrer): the root stays a summary
FIELD_LIMIT = 500
#: a person's line per event; a longer one (a mirrored Slack post) is split. Matrix allows 64 KiB
#: per event, and body + escaped formatted_body of 4,000 characters stay far below it.
MESSAGE_CHUNK = 4000
NOTICE_CHUNK = 8000  # body only, so twice as much fits


# -- thread refs -------------------------------------------------------------------------------


def thread_ref(room_id: str, root_event_id: str) -> str:
    return f"{room_id}{REF_SEPARATOR}{root_event_id}"


def split_ref(ref: str) -> tuple[str, str]:
    """(room id, root event id) of a thread ref made by :func:`thread_ref`."""
    room_id, sep, root = ref.partition(REF_SEPARATOR)
    if not sep or not room_id or not root:
        raise ValueError(f"not a Matrix thread ref: {ref!r}")
    return room_id, root


# -- to Matrix ---------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "<br>")


def thread_relation(root: str, last: str) -> dict[str, Any]:
    """An ``m.thread`` reply to ``root``; clients without threads show it as a reply to ``last``
    (``is_falling_back`` keeps thread-aware clients from drawing a quote box on every line)."""
    return {"rel_type": THREAD, "event_id": root, "is_falling_back": True, "m.in_reply_to": {"event_id": last}}


def visitor_content(author: str, text: str, relation: dict[str, Any] | None = None) -> dict[str, Any]:
    """A line the bot posts on someone's behalf (a visitor, or a Slack agent): ``Ann: …``."""
    content: dict[str, Any] = {
        "msgtype": "m.text",
        "body": f"{author}: {text}",
        "format": "org.matrix.custom.html",
        "formatted_body": f"<strong>{_escape(author)}</strong>: {_escape(text)}",
        "m.mentions": {},
    }
    if relation is not None:
        content["m.relates_to"] = relation
    return content


def notice_content(text: str, relation: dict[str, Any] | None = None) -> dict[str, Any]:
    """A line from the bridge itself (transcript, rating, help, reminder): plain text only."""
    content: dict[str, Any] = {"msgtype": "m.notice", "body": text, "m.mentions": {}}
    if relation is not None:
        content["m.relates_to"] = relation
    return content


def visitor_contents(author: str, text: str) -> list[dict[str, Any]]:
    """A person's line as the events it takes, in order (long ones over several)."""
    return [visitor_content(author, chunk) for chunk in split_text(text, MESSAGE_CHUNK)]


def notice_contents(text: str) -> list[dict[str, Any]]:
    """The bridge speaking (a transcript, a notice) as the events it takes, in order."""
    return [notice_content(chunk) for chunk in split_text(text, NOTICE_CHUNK)]


def _cut(text: str, limit: int = FIELD_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def root_fields(conv: Conversation, site_name: str, topic_label: str | None) -> list[tuple[str, str]]:
    """The visitor's context as (label, value) lines, in reading order, each of a readable length."""
    who = conv.visitor_name + (f" <{conv.visitor.email}>" if conv.visitor.email else "")
    fields = [("Visitor", who)]
    if conv.visitor.external_id:
        fields.append(("Customer id", conv.visitor.external_id))
    fields.append(("Site", site_name))
    if topic_label:
        fields.append(("Topic", topic_label))
    page = conv.current_page
    if page:
        fields.append(("Page", f"{page.title} — {page.url}" if page.title else page.url))
    first = conv.pages[0] if conv.pages else None
    if first and first.referrer:
        fields.append(("Came from", first.referrer))
    if len(conv.pages) > 1:
        trail = " → ".join(p.title or p.url for p in conv.pages[-6:])
        fields.append((f"Pages seen ({len(conv.pages)})", trail))
    where = " · ".join(x for x in (conv.locale, conv.timezone) if x)
    if where:
        fields.append(("Locale", where))
    fields.extend(visitor_facts(conv))
    fields.append(("Status", conv.state_label))
    return [(label, _cut(value)) for label, value in fields]


def root_content(
    conv: Conversation, site_name: str, topic_label: str | None, note_prefix: str = "//"
) -> dict[str, Any]:
    """The thread's root: no relation (Element files everything of the conversation under it)."""
    kind = "Offline message" if conv.kind == "offline" else "Chat"
    title = f"{kind} from {conv.visitor_name} on {site_name}"
    fields = root_fields(conv, site_name, topic_label)
    hint = f"Reply in this thread to answer; start with {note_prefix} for an internal note; !help lists the commands."
    if conv.kind == "offline":
        hint = "The visitor left this message outside office hours; answer by email."
    body = "\n".join([title, *(f"{label}: {value}" for label, value in fields), hint])
    formatted = "<br>".join(
        [
            f"<strong>{_escape(title)}</strong>",
            *(f"<em>{_escape(label)}</em>: {_escape(value)}" for label, value in fields),
            f"<em>{_escape(hint)}</em>",
        ]
    )
    return {
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
        "m.mentions": {},
    }


def edit_content(original_event_id: str, new_content: dict[str, Any]) -> dict[str, Any]:
    """An ``m.replace`` edit; it relates to the edited event itself, never to the thread."""
    fallback = {
        key: (f"* {value}" if key in ("body", "formatted_body") else value)
        for key, value in new_content.items()
        if key != "m.relates_to"
    }
    return {
        **fallback,
        "m.new_content": {k: v for k, v in new_content.items() if k != "m.relates_to"},
        "m.relates_to": {"rel_type": REPLACE, "event_id": original_event_id},
    }


# -- from Matrix -------------------------------------------------------------------------------


def reply_target(content: dict[str, Any]) -> str | None:
    """The event a person's message answers: the thread root of an ``m.thread`` reply, else the
    event a plain rich reply points at (a client without threads replying to the root). None for
    edits and for messages that answer nothing."""
    relation = content.get("m.relates_to")
    if not isinstance(relation, dict):
        return None
    rel_type = relation.get("rel_type")
    if rel_type == THREAD:
        root = relation.get("event_id")
        return root if isinstance(root, str) and root else None
    if rel_type is not None:  # m.replace (an edit), m.annotation, …
        return None
    reply = relation.get("m.in_reply_to")
    target = reply.get("event_id") if isinstance(reply, dict) else None
    return target if isinstance(target, str) and target else None


_QUOTE_LINE = re.compile(r"^>")


def _strip_reply_fallback(body: str) -> str:
    """Drop the ``> <@user> quoted`` block clients put in front of a reply's text."""
    lines = body.split("\n")
    if not lines or not _QUOTE_LINE.match(lines[0]):
        return body
    i = 0
    while i < len(lines) and _QUOTE_LINE.match(lines[i]):
        i += 1
    if i < len(lines) and lines[i].strip() == "":
        return "\n".join(lines[i + 1 :])
    return body  # a quote the person wrote themselves, not a fallback


_KEEP_TAGS = {"a", "br", "p", "div", "li", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "tr"}
_LINK = re.compile(r'<a href="([^"]*)"[^>]*>(.*?)</a>', re.S)
_BREAK = re.compile(r"<br\s*/?>|</(?:p|div|li|blockquote|pre|h[1-6]|tr)>")
_ITEM = re.compile(r"<li>")
_BLANKS = re.compile(r"\n{3,}")


def html_to_text(formatted: str) -> str:
    """Sanitised HTML → plain text: block ends become line breaks, links keep their URL."""
    # nh3 first: it drops the reply quote (mx-reply) and scripts with their content and leaves a
    # tiny, normalised tag set, so the patterns below only ever see nh3's own output.
    safe = nh3.clean(
        formatted,
        tags=_KEEP_TAGS,
        clean_content_tags={"mx-reply", "script", "style"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    )

    def link(match: re.Match[str]) -> str:
        url, label = html.unescape(match.group(1)), match.group(2)
        label_text = html.unescape(nh3.clean(label, tags=set()))
        if url.startswith("mailto:"):
            url = url.removeprefix("mailto:")
        if not url or label_text.strip() in (url, ""):
            return html.escape(url or label_text)
        return f"{label} ({html.escape(url)})"

    text = _LINK.sub(link, safe)
    text = _ITEM.sub("• ", text)
    text = _BREAK.sub("\n", text)
    text = html.unescape(nh3.clean(text, tags=set()))
    return _BLANKS.sub("\n\n", text).strip()


def media_url(homeserver: str, mxc: str) -> str | None:
    """An http(s) URL for an ``mxc://server/id`` (never with a token in it: the visitor sees it)."""
    if not mxc.startswith("mxc://"):
        return None
    server, _, media_id = mxc.removeprefix("mxc://").partition("/")
    if not server or not media_id or "/" in media_id:
        return None
    return f"{homeserver.rstrip('/')}/_matrix/media/v3/download/{quote(server, safe='')}/{quote(media_id, safe='')}"


def staff_text(content: dict[str, Any], homeserver: str | None = None) -> str:
    """A staff member's message as the visitor reads it (plain text). Empty = nothing to relay."""
    body = content.get("body")
    text = _strip_reply_fallback(body).strip() if isinstance(body, str) else ""
    formatted = content.get("formatted_body")
    if not text and content.get("format") == "org.matrix.custom.html" and isinstance(formatted, str):
        text = html_to_text(formatted)
    if content.get("msgtype") in FILE_TYPES:
        url = content.get("url")
        link = media_url(homeserver, url) if homeserver and isinstance(url, str) else None
        if link:
            text = f"{text} {link}".strip()
    return text


def localpart(user_id: str) -> str:
    return user_id.removeprefix("@").split(":", 1)[0] or user_id


def is_staff(sender: str, staff: Iterable[str]) -> bool:
    """True if ``sender`` is listed: an exact user id, or a ``:server`` (whole server part) entry.
    An empty list means everybody (the caller has already excluded the bot itself)."""
    entries: Sequence[str] = [s.strip() for s in staff if s.strip()]
    if not entries:
        return True
    server = sender.split(":", 1)[1] if ":" in sender else ""
    for entry in entries:
        if entry.startswith("@"):
            if entry == sender:
                return True
        elif server and entry.removeprefix(":") == server:
            return True
    return False
