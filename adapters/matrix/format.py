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

from adapters.html_subset import LINK_REL, has_formatting, plain_text, sanitize
from bridge import returning
from bridge.model import Conversation, Returning
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
#: the longest formatted_body sent with a line (far below the 64 KiB of an event)
FORMATTED_LIMIT = 24000


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


def visitor_content(
    author: str, text: str, relation: dict[str, Any] | None = None, html_text: str | None = None
) -> dict[str, Any]:
    """A line the bot posts on someone's behalf (a visitor, or a Slack agent): ``Ann: …``. ``html_text``
    is the line's formatting (a Slack agent's, already the sanitized subset); a visitor's has none."""
    name = f"<strong>{_escape(author)}</strong>: "
    formatted = name + _escape(text)
    if html_text:
        # the name goes into the first paragraph, so it reads "Alice: …" on one line
        formatted = f"<p>{name}{html_text[3:]}" if html_text.startswith("<p>") else name + html_text
    content: dict[str, Any] = {
        "msgtype": "m.text",
        "body": f"{author}: {text}",
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
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


def visitor_contents(author: str, text: str, html_text: str | None = None) -> list[dict[str, Any]]:
    """A person's line as the events it takes, in order (long ones over several; formatting is kept
    when the line fits one event, a longer one goes as plain text)."""
    if html_text and len(text) <= MESSAGE_CHUNK and len(html_text) <= FORMATTED_LIMIT:
        return [visitor_content(author, text, html_text=html_text)]
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
    if conv.returning is not None:
        fields.append((returning.LABEL, returning_value(conv.returning)))
    fields.append(("Status", conv.state_label))
    return [(label, _cut(value)) for label, value in fields]


def returning_value(earlier: Returning) -> str:
    """``3 earlier chats, last rated 4/5 — last chat: https://matrix.to/#/…`` (the link when it was on Matrix)."""
    last = earlier.last_thread("matrix")
    try:
        link = matrix_to(*split_ref(last[1])) if last else None
    except ValueError:
        link = None
    return returning.returning_summary(earlier) + (f" — last chat: {link}" if link else "")


def matrix_to(room_id: str, event_id: str) -> str:
    """A link any Matrix client opens at the event: ``https://matrix.to/#/!room:server/$event?via=server``."""
    server = room_id.partition(":")[2]
    via = f"?via={quote(server, safe='')}" if server else ""
    return f"https://matrix.to/#/{quote(room_id, safe='')}/{quote(event_id, safe='')}{via}"


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


_PILL = re.compile(
    r'<a href="https://matrix\.to/#/(?:@|%40|#|%23)[^"]*" target="_blank" rel="' + LINK_REL + r'">(.*?)</a>', re.S
)


def subset_html(formatted: str) -> str:
    """A ``formatted_body`` as the bridge's HTML subset: the reply quote (``mx-reply``) gone, a pill
    (a link to ``https://matrix.to/#/@user:server``) just the person's name, the rest sanitized."""
    # the pattern reads nh3's own normalised output; removing a link's tags leaves the subset intact
    return _PILL.sub(r"\1", sanitize(formatted, drop={"mx-reply"}))


def html_to_text(formatted: str) -> str:
    """Sanitised HTML → plain text: blocks on lines of their own, links keep their URL."""
    return plain_text(subset_html(formatted))


def file_caption(content: dict[str, Any]) -> str | None:
    """What a staff member wrote with a file, when they wrote something (MSC2530, Matrix 1.10): with a
    ``filename`` that differs from it, ``body`` is a caption; otherwise ``body`` is only the file's name."""
    body, name = content.get("body"), content.get("filename")
    if not isinstance(body, str) or not isinstance(name, str) or not name or body == name or not body.strip():
        return None
    return body


def staff_message(content: dict[str, Any]) -> tuple[str, str | None]:
    """A staff member's message as the visitor gets it: (plain text, subset HTML or None). The HTML, when
    the event has it, is what the person saw (``body`` may hold the Markdown they typed): the text comes
    from it. Empty text = nothing to relay. A file's text is its caption, if it has one (the file itself
    reaches the visitor as an attachment, through the bridge: ``files.py``)."""
    if content.get("msgtype") in FILE_TYPES and file_caption(content) is None:
        return "", None
    body = content.get("body")
    formatted = content.get("formatted_body")
    markup: str | None = None
    text = ""
    if content.get("format") == "org.matrix.custom.html" and isinstance(formatted, str):
        markup = subset_html(formatted)
        text = plain_text(markup)
    if not text and isinstance(body, str):
        text, markup = _strip_reply_fallback(body).strip(), None
    return text, markup if markup and has_formatting(markup) else None


def staff_text(content: dict[str, Any]) -> str:
    """A staff member's message as plain text (see :func:`staff_message`)."""
    return staff_message(content)[0]


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
