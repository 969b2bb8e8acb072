"""``!sitechat`` in Matrix: the core's team desk (``bridge.team_desk``) for a room message outside any
conversation's thread, answered as an ``m.notice`` in the room (a reply to the command, not a thread).

Only staff (``MATRIX_STAFF``, as for replies) may use it; anyone else is told so. The answer is plain
``body`` and a ``formatted_body`` built from escaped text (then cleaned to the HTML subset), with each
open conversation linked to its thread's root (``https://matrix.to/#/{room}/{event}``) and an empty
``m.mentions``: the names in it (visitors', agents') ping nobody.

The answer's transaction id comes from the command's event id: a command replayed after a crash (its
sync token not yet saved) gets the same event back from the homeserver, not a second answer.
"""

from __future__ import annotations

import asyncio
import html as htmllib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from adapters.html_subset import escape, strict
from adapters.matrix.format import is_staff, matrix_to, split_ref
from adapters.matrix.responses import describe
from bridge.desk_answers import DeskAnswer, DeskHelp, OpenConversation, OpenList, PresenceSet, StatsReport
from bridge.desk_text import minutes, presence_lines, site_line, stats_lines
from bridge.endpoint import Desk
from bridge.model import Participant, ThreadRef

log = logging.getLogger(__name__)

COMMAND = "!sitechat"
#: an answer that takes longer holds up the sync loop no further (the agent may ask again)
ANSWER_SECONDS = 20.0
NOT_STAFF = "Only the team can use !sitechat (MATRIX_STAFF lists who may)."

#: posts ``content`` into ``room`` with the transaction id given; returns the event id
Post = Callable[[str, dict[str, Any], str], Awaitable[str]]


@dataclass(frozen=True)
class DeskCommand:
    """``!sitechat …`` typed in a room, outside any thread."""

    event_id: str
    sender: str
    #: what followed the command word (``open``, ``stats 7d``…; empty: help)
    line: str


def desk_line(body: str) -> str | None:
    """What follows ``!sitechat`` in a message's text, or None when the message is no such command
    (``!sitechatty`` is not; the command word is case-insensitive, as people type it)."""
    first = body.strip().split(maxsplit=1)
    if not first or first[0].lower() != COMMAND:
        return None
    return first[1].strip() if len(first) > 1 else ""


def desk_command(source: dict[str, Any]) -> DeskCommand | None:
    """The event as ``!sitechat`` typed outside any thread, or None. A message in a thread (or a reply,
    or an edit) is not: in a conversation's thread, ``!`` lines are the thread's commands."""
    event_id, sender, content = source.get("event_id"), source.get("sender"), source.get("content")
    if (
        source.get("type") != "m.room.message"
        or not isinstance(event_id, str)
        or not isinstance(sender, str)
        or not isinstance(content, dict)
        or content.get("msgtype") != "m.text"
        or "m.relates_to" in content
        or "m.new_content" in content
    ):
        return None
    body = content.get("body")
    line = desk_line(body) if isinstance(body, str) else None
    return DeskCommand(event_id, sender, line) if line is not None else None


# -- rendering (pure) --------------------------------------------------------------------------


def thread_link(thread: ThreadRef | None) -> str | None:
    """The link to a thread's root, from this endpoint's thread ref; None when it has no thread here."""
    if thread is None:
        return None
    try:
        room_id, root = split_ref(thread)
    except ValueError:
        return None
    return matrix_to(room_id, root)


def conversation_line(conv: OpenConversation, link: str | None, now: datetime) -> tuple[str, str]:
    """One open conversation as (plain, HTML): visitor, site (and topic), how long, who claimed, the link."""
    where = conv.site_name + (f" · {conv.topic_label}" if conv.topic_label else "")
    if conv.waiting_since is not None:
        state = f"waiting {minutes(now - conv.waiting_since)}"
    else:
        state = f"open {minutes(now - conv.started_at)}"  # the last word was the team's, or none yet
    claimed = f"claimed by {conv.claimed_by}" if conv.claimed_by else "not claimed"
    plain = f"• {conv.visitor_name} — {where} — {state} · {claimed} · {link or '(no thread here)'}"
    thread = f'<a href="{htmllib.escape(link, quote=True)}">thread</a>' if link else "(no thread here)"
    who, rest = escape(conv.visitor_name), escape(f"{where} — {state} · {claimed}")
    html = f"<strong>{who}</strong> — {rest} · {thread}"
    return plain, html


def _lines(head: str, rest: Sequence[str]) -> tuple[str, str]:
    plain = "\n".join([head, *rest])
    html = "<br>".join([f"<strong>{escape(head)}</strong>", *(escape(line) for line in rest)])
    return plain, html


def render(answer: DeskAnswer, endpoint: str) -> tuple[str, str]:
    """The answer as (plain ``body``, ``formatted_body`` in the HTML subset). ``endpoint``: this
    endpoint's name, whose threads the open conversations link to."""
    match answer:
        case OpenList():
            plain, html = _open_list(answer, endpoint)
        case StatsReport():
            head, *rest = stats_lines(answer)
            plain, html = _lines(head, rest)
        case PresenceSet():
            head, *rest = presence_lines(answer)
            plain, html = _lines(head, rest)
        case DeskHelp(text, problem):
            plain = "\n".join([*([problem] if problem else []), text])
            html = "<br>".join([*([f"<strong>{escape(problem)}</strong>"] if problem else []), escape(text)])
        case _:
            assert_never(answer)
    return plain, strict(html)


def _open_list(answer: OpenList, endpoint: str) -> tuple[str, str]:
    count = len(answer.conversations) + answer.more
    head = f"Open conversations: {count}" if count else "No open conversations."
    rows = [conversation_line(c, thread_link(c.threads.get(endpoint)), answer.now) for c in answer.conversations]
    more = [f"…and {answer.more} more (the oldest are listed)."] if answer.more > 0 else []
    sites = [site_line(state) for state in answer.sites]
    plain = "\n".join([head, *(p for p, _ in rows), *more, "", "Sites", *sites])
    items = "".join(f"<li>{h}</li>" for _, h in rows)
    html = "".join(
        [
            f"<p><strong>{escape(head)}</strong></p>",
            f"<ul>{items}</ul>" if items else "",
            *(f"<p>{escape(m)}</p>" for m in more),
            "<p><strong>Sites</strong><br>",
            "<br>".join(escape(s) for s in sites),
            "</p>",
        ]
    )
    return plain, html


def answer_content(plain: str, html: str, command_event: str) -> dict[str, Any]:
    """The answer as an ``m.notice`` replying to the command (on the room's timeline, not a thread)."""
    return {
        "msgtype": "m.notice",
        "body": plain,
        "format": "org.matrix.custom.html",
        "formatted_body": html,
        "m.mentions": {},
        "m.relates_to": {"m.in_reply_to": {"event_id": command_event}},
    }


def answer_txn(command_event: str) -> str:
    """The same command always gets the same transaction id (and so, within a day, the same answer)."""
    return f"sitechat-desk-{command_event}"


# -- the I/O shell ---------------------------------------------------------------------------------


class MatrixDesk:
    def __init__(self, endpoint: str, staff: Sequence[str], post: Post) -> None:
        self.endpoint = endpoint
        self._staff = list(staff)
        self._post = post
        self._desk: Desk | None = None

    def use(self, desk: Desk) -> None:
        self._desk = desk

    async def take(self, room_id: str, command: DeskCommand, by: Participant) -> None:
        """Answer the command in the room; what goes wrong is logged (the agent may ask again)."""
        try:
            if not is_staff(command.sender, self._staff):
                plain, html = NOT_STAFF, escape(NOT_STAFF)
            elif self._desk is None:
                plain = html = "The bridge is still starting; ask again in a moment."
            else:
                async with asyncio.timeout(ANSWER_SECONDS):
                    answer = await self._desk.answer(command.line, by, command=COMMAND)
                plain, html = render(answer, self.endpoint)
            content = answer_content(plain, html, command.event_id)
            await self._post(room_id, content, answer_txn(command.event_id))
        except Exception as exc:
            log.warning("Matrix: %s %r in %s not answered (%s)", COMMAND, command.line, room_id, describe(exc))
