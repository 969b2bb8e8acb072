"""A visitor's reply by email as the text of a chat message (CONTRACT §8): the body they wrote, without
the quoted history and signature mail clients add below it. Pure.

The body is the mail's ``text/plain`` part, or its ``text/html`` part as text (quoted blocks kept as ``>``
lines, so they go like any quote). The reply is cut by ``mail-parser-reply`` (the headers mail clients put
above a quote — "On … wrote:", "Am … schrieb …:", "Le … a écrit :", Outlook's "-----Original Message-----"
and "From:/Sent:" blocks, in many languages — and ``-- `` signatures), then by the few rules it lacks:
``>`` quotes without a header, the header lines it misses (Spanish "El … escribió:"), and the lines
phones add ("Sent from my iPhone", "Von meinem iPhone gesendet", "Envoyé de mon iPhone", "Enviado desde mi…").
"""

from __future__ import annotations

import re
from email.message import EmailMessage, Message
from html.parser import HTMLParser

from mailparser_reply.parser import EmailMessage as ParsedReply

LANGUAGES = ["en", "de", "fr", "es"]
#: a line a mail client puts above the quoted mail, when the parser did not know it
_HEADER = re.compile(
    r"^\s*(on\b.*\bwrote|am\b.*\bschrieb.*|le\b.*\ba écrit|el\b.*\bescribió|-{2,}\s*(original message|"
    r"ursprüngliche nachricht|message d'origine|mensaje original)\s*-{2,})\s*:?\s*$",
    re.IGNORECASE,
)
#: what phones and mail apps sign with
_SENT_FROM = re.compile(
    r"^\s*(sent from my\b.*|sent from (outlook|mail|yahoo mail)\b.*|get outlook for\b.*|"
    r"von meinem\b.*\bgesendet\.?|gesendet von meinem\b.*|envoyé de mon\b.*|enviado desde mi\b.*)\s*$",
    re.IGNORECASE,
)
_BLANKS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"\s+")


def reply_text(body: str) -> str:
    """What the visitor wrote, from a mail body: quotes, headers above them and signatures cut."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    try:
        replies = ParsedReply(text=text, languages=list(LANGUAGES), keep_hyphen_lists=True).read().replies
        text = replies[0].body if replies and replies[0].body is not None else text
    except Exception:
        pass
    kept: list[str] = []
    for line in text.split("\n"):
        if _HEADER.match(line) or line.rstrip() in ("--", "-- "):
            break  # everything from here on is the quoted mail or the signature
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    while kept and (not kept[-1].strip() or _SENT_FROM.match(kept[-1])):
        kept.pop()
    return _BLANKS.sub("\n\n", "\n".join(kept)).strip()


def mail_body(mail: Message) -> str:
    """The text of a mail: its first ``text/plain`` part, else its ``text/html`` one as text; attachments aside."""
    plain = html = None
    for part in mail.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = _decoded(part)
        elif kind == "text/html" and html is None:
            html = _decoded(part)
    if plain is not None and plain.strip():
        return plain
    return html_text(html) if html else ""


def _decoded(part: Message) -> str:
    if isinstance(part, EmailMessage):
        try:
            content = part.get_content()
            if isinstance(content, str):
                return content
        except (LookupError, ValueError):
            pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return payload.decode(part.get_content_charset() or "utf-8", "replace")


class _Text(HTMLParser):
    """HTML as the text a person reads: lines at blocks and breaks, ``>`` before quoted lines."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"})
    HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.quoted = 0
        self.hidden = 0

    def _break(self) -> None:
        if self.lines[-1].strip("> "):
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag == "blockquote" or any(k == "class" and v and "gmail_quote" in v for k, v in attrs):
            self.quoted += 1
            self._break()
        elif tag in self.BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "blockquote":
            self.quoted = max(0, self.quoted - 1)
            self._break()
        elif tag in self.BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        text = _SPACES.sub(" ", data)
        if self.hidden or (not text.strip() and not self.lines[-1]):
            return
        if not self.lines[-1]:
            self.lines[-1] = "> " * self.quoted
            text = text.lstrip()
        self.lines[-1] += text


def html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in parser.lines]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
