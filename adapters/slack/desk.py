"""``/sitechat`` in Slack: the core's team desk (``bridge.team_desk``), answered ephemerally — only the agent
who asked sees it.

Slack wants the command acknowledged within 3 s. An answer ready within ``INLINE_SECONDS`` goes in the
acknowledgement; a slower one (a database under load, many permalinks to ask for) is acknowledged with
nothing to show and posted to the command's ``response_url`` when ready. Either way it is an ``ephemeral``
message in mrkdwn: names people typed are escaped, and each open conversation links to its thread
(``chat.getPermalink``, kept per thread: a message's permalink never changes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar, assert_never

from slack_bolt.app.async_app import AsyncApp

from adapters.slack.failures import describe
from adapters.slack.format import escape
from adapters.slack.permalinks import Permalinks
from adapters.slack.session import SlackSession
from adapters.slack.users import UserDirectory
from bridge.desk_answers import DeskAnswer, DeskHelp, OpenConversation, OpenList, PresenceSet, StatsReport
from bridge.desk_text import minutes, presence_lines, site_line, stats_lines
from bridge.endpoint import Desk
from bridge.model import Participant, Role, ThreadRef

log = logging.getLogger(__name__)
T = TypeVar("T")

COMMAND = "/sitechat"
#: an ephemeral answer stays within Slack's recommended 4,000 characters
MAX_CHARS = 3900
#: permalinks asked for at once
LOOKUPS = 5
#: an answer ready this soon goes in the acknowledgement (Slack wants one within 3 s); a later one follows
#: at the command's ``response_url``
INLINE_SECONDS = 2.0


class SlackDesk:
    def __init__(self, name: str, session: SlackSession, users: UserDirectory, permalinks: Permalinks) -> None:
        self.endpoint = name
        self._session = session
        self._users = users
        self._desk: Desk | None = None
        self._permalinks = permalinks
        self._answering: set[asyncio.Task[Any]] = set()

    def use(self, desk: Desk) -> None:
        self._desk = desk

    def attach(self, app: AsyncApp) -> None:
        """Before the catch-all listeners (bolt tries listeners in the order they were added)."""
        app.command(COMMAND)(self._on_command)

    async def stop(self) -> None:
        for task in list(self._answering):
            task.cancel()
        await asyncio.gather(*self._answering, return_exceptions=True)

    async def _on_command(
        self,
        ack: Callable[..., Awaitable[None]],
        body: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        """Answered in the acknowledgement when the answer is ready within ``INLINE_SECONDS``; otherwise
        acknowledged with nothing to show and answered at the command's ``response_url`` once ready."""
        answering = self._track(self._answer(dict(body)))
        try:
            text = await asyncio.wait_for(asyncio.shield(answering), INLINE_SECONDS)
        except TimeoutError:
            await ack()
            self._track(self._answer_later(answering, respond))
            return
        await ack(text=text, response_type="ephemeral")

    def _track(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(work, name="sitechat-command")
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)
        return task

    async def _answer(self, body: dict[str, Any]) -> str:
        """The answer to the command in ``body`` (mrkdwn), or what went wrong."""
        user_id = str(body.get("user_id") or "")
        try:
            if self._desk is None:
                raise RuntimeError("the bridge is still starting")
            name, avatar = await self._users.lookup(user_id)
            by = Participant(Role.AGENT, name, avatar, f"slack:{user_id}")
            return await self.render(await self._desk.answer(str(body.get("text") or ""), by, command=COMMAND))
        except Exception as exc:
            log.warning("%s %r failed: %s", COMMAND, body.get("text"), describe(exc))
            return f"Sorry, that did not work ({escape(describe(exc))}). Try again in a moment."

    async def _answer_later(self, answering: asyncio.Task[str], respond: Callable[..., Awaitable[Any]]) -> None:
        text = await answering
        try:
            answered = await respond(text=text, response_type="ephemeral")
        except Exception as exc:  # the agent sees nothing; they may type it again
            log.warning("%s: the answer did not reach Slack (%s)", COMMAND, describe(exc))
            return
        if getattr(answered, "status_code", 200) != 200:
            log.warning("%s: Slack refused the answer (%s)", COMMAND, getattr(answered, "body", ""))

    async def render(self, answer: DeskAnswer) -> str:
        """The answer in mrkdwn."""
        match answer:
            case OpenList():
                return await self._open_list(answer)
            case StatsReport():
                head, *rest = stats_lines(answer)
                return "\n".join([f"*{escape(head)}*", *map(escape, rest)])
            case PresenceSet():
                head, *rest = presence_lines(answer)
                return "\n".join([f"*{escape(head)}*", *map(escape, rest)])
            case DeskHelp(text, problem):
                return "\n".join([*([f"*{escape(problem)}*"] if problem else []), escape(text)])
            case _:
                assert_never(answer)

    async def _open_list(self, answer: OpenList) -> str:
        links = await self._links([c.threads.get(self.endpoint) for c in answer.conversations])
        count = len(answer.conversations) + answer.more
        sites = "\n".join(["*Sites*", *(escape(site_line(state)) for state in answer.sites)])
        budget = MAX_CHARS - len(sites) - 60  # room for the sites and the "…and N more" line
        lines = [f"*Open conversations: {count}*" if count else "*No open conversations.*"]
        size = len(lines[0])
        for conv, link in zip(answer.conversations, links, strict=True):
            line = _conversation_line(conv, link, answer)
            if size + 1 + len(line) > budget:
                break
            lines.append(line)
            size += 1 + len(line)
        if (left := count - (len(lines) - 1)) > 0:
            lines.append(f"…and {left} more (the oldest are listed).")
        return "\n".join(lines) + "\n\n" + sites

    async def _links(self, threads: Sequence[ThreadRef | None]) -> list[str | None]:
        gate = asyncio.Semaphore(LOOKUPS)

        async def one(thread: ThreadRef | None) -> str | None:
            if thread is None:
                return None
            async with gate:
                return await self._permalinks.of(thread)

        return list(await asyncio.gather(*(one(t) for t in threads)))


def _conversation_line(conv: OpenConversation, link: str | None, answer: OpenList) -> str:
    where = escape(conv.site_name + (f" · {conv.topic_label}" if conv.topic_label else ""))
    if conv.waiting_since is not None:
        state = f"waiting {minutes(answer.now - conv.waiting_since)}"
    else:
        state = f"open {minutes(answer.now - conv.started_at)}"  # the visitor has the last answer, or wrote nothing
    claimed = f"claimed by {escape(conv.claimed_by)}" if conv.claimed_by else "not claimed"
    thread = f"<{link}|thread>" if link else "(no thread here)"
    return f"• *{escape(conv.visitor_name)}* — {where} — {state} · {claimed} · {thread}"
