"""The conversation as text, for the thread on close and for email."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.model import Attachment, Conversation, Message, Role


def render_transcript(conv: Conversation, messages: Sequence[Message], site_name: str, closed_by: str) -> str:
    """Plain text, one line per message, times in UTC (the team may be anywhere)."""
    visitor = conv.visitor_name + (f" <{conv.visitor.email}>" if conv.visitor.email else "")
    lines = [
        f"Transcript — {site_name} — {visitor}",
        f"Started {conv.created_at:%Y-%m-%d %H:%M} UTC, closed {closed_by}.",
        "",
    ]
    shown = [m for m in messages if not m.deleted]
    if not shown:
        lines.append("(no messages)")
    for m in shown:
        who = m.author.name if m.author.role is not Role.SYSTEM else "—"
        edited = " (edited)" if m.edited_at else ""
        body = "\n".join(filter(None, [m.text, *(file_line(a) for a in m.attachments)])).replace("\n", "\n    ")
        lines.append(f"[{m.created_at:%H:%M}] {who}: {body}{edited}")
    return "\n".join(lines)


def file_line(file: Attachment) -> str:
    """A file as the transcript lists it: its name and size (the bytes stay with the bridge)."""
    return f"[file: {file.name}, {human_size(file.size)}]"


def human_size(size: int) -> str:
    """``812 B``, ``4.2 KB``, ``1.5 MB``: a file's size as people read it."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def visitor_zone(conv: Conversation) -> tzinfo:
    """The visitor's time zone as the browser said it; UTC when it said nothing usable."""
    try:
        return ZoneInfo(conv.timezone) if conv.timezone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def render_transcript_html(conv: Conversation, messages: Sequence[Message], site_name: str) -> str:
    """The same conversation for the visitor's mail: names in bold, times in the visitor's time zone.
    Every value is escaped: what people typed is text, never markup."""
    zone = visitor_zone(conv)
    started = conv.created_at.astimezone(zone)
    rows = []
    for m in (m for m in messages if not m.deleted):
        who = escape(m.author.name) if m.author.role is not Role.SYSTEM else "—"
        at = m.created_at.astimezone(zone)
        edited = " <em>(edited)</em>" if m.edited_at else ""
        body = "<br>".join(escape(line) for line in filter(None, [m.text, *map(file_line, m.attachments)]))
        body = body.replace("\n", "<br>")
        rows.append(
            f'<tr><td style="color:#6b7280;padding:4px 8px;vertical-align:top">{at:%H:%M}</td>'
            f'<td style="padding:4px 8px"><strong>{who}</strong>: {body}{edited}</td></tr>'
        )
    table = "".join(rows) or '<tr><td colspan="2">(no messages)</td></tr>'
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f'<h1 style="font-size:18px">Your chat with {escape(site_name)}</h1>'
        f"<p>Started {started:%Y-%m-%d %H:%M} ({escape(str(zone))})</p>"
        f"<table>{table}</table></body></html>"
    )


def split_text(text: str, limit: int) -> list[str]:
    """Split on line boundaries into pieces of at most ``limit`` characters; never drop a character but
    newlines between pieces, and never give an empty piece unless the text is empty (Slack refuses one)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        if len(current) + len(line.rstrip("\n")) > limit:
            if current.strip("\n"):
                pieces.append(current)
            current = ""  # what is left are newlines only: they fall between pieces
        current += line
        while len(current.rstrip("\n")) > limit:  # one very long line: hard-split it
            head = current[:limit]
            if head.strip("\n"):
                pieces.append(head)
                current = current[limit:]
            else:  # only newlines before the cut: they fall between pieces, like the ones a piece ends on
                current = current.lstrip("\n")
    if current.strip("\n") or not pieces:
        pieces.append(current)
    elif pieces and current:
        pieces[-1] += current  # only newlines left: they end the last piece
    return [p.rstrip("\n") for p in pieces]
