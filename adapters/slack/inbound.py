"""What Slack sends us, as core events: thread replies, edits, deletions, Claim/Close (``/sitechat``: desk.py).

Every event is stored before Slack gets its answer (bolt runs with ``process_before_response``), so a
2xx always means "kept"; what cannot be stored in time is answered 503 and Slack retries it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from adapters.slack import blocks
from adapters.slack.downloads import SlackDownloads
from adapters.slack.events import ThreadChange, thread_change, thread_ref, thread_reply
from adapters.slack.failures import describe
from adapters.slack.format import agent_message, mentioned_users
from adapters.slack.session import SlackSession
from adapters.slack.users import UserDirectory
from bridge.commands import Reply, interpret
from bridge.endpoint import Inbox, StateStore
from bridge.events import (
    Action,
    ActionRequested,
    InboundEvent,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    Rejected,
)
from bridge.model import Attachment, EndpointName, Participant, RemoteId, Role, ThreadRef

log = logging.getLogger(__name__)

#: matches every id and type: the listeners that acknowledge what we do not use
ANY = re.compile(".*")
#: a reply that starts so keeps Slack's mentions as they came (``<@U…>``): the person to bring in is the
#: Slack member mentioned, not whoever shares their name (``adapters/slack/people.py``)
INVITE = re.compile(r"\s*!invite\b", re.IGNORECASE)


class ThreadNotReady(Exception):
    """A reply under one of our roots that the store does not know yet."""


class EventRateLimits:
    """Slack's ``app_rate_limited``: above 30,000 events an hour per workspace it drops the app's events
    for the rest of that minute and says so once. Replies of that minute never reach the bridge, so it is
    told — a warning in the log, and for ``remember`` seconds after the last one in /readyz (from memory)
    and in doctor (from ``state``, the endpoint's durable state, which doctor's process reads too)."""

    KEY = "app_rate_limited"

    def __init__(self, clock: Callable[[], float], state: StateStore | None = None, remember: float = 3600.0) -> None:
        self._clock = clock
        self._state = state
        self._remember = remember
        #: how many times Slack said so since the process started
        self.count = 0
        self._last: _Limited | None = None

    async def record(self, body: dict[str, Any]) -> None:
        now = self._clock()
        minute = body.get("minute_rate_limited")
        self.count += 1
        self._last = _Limited(self.count, now, float(minute) if isinstance(minute, int | float) else now)
        log.warning(
            "Slack app_rate_limited: Slack dropped this app's events for the minute starting %s (over 30,000 "
            "events an hour in the workspace); replies written in Slack then did not reach the bridge (%d so far)",
            _utc(self._last.minute),
            self.count,
        )
        if self._state is not None:
            try:
                # a short wait at most: Slack wants its answer within 3 s, whatever the database does
                async with asyncio.timeout(1.0):
                    earlier = _Limited.parse(await self._state.get(self.KEY))
                    count = earlier.count + 1 if earlier and now - earlier.at <= self._remember else 1
                    await self._state.put(self.KEY, _Limited(count, now, self._last.minute).dump())
            except Exception as exc:
                log.warning("app_rate_limited not recorded for doctor (%s)", describe(exc))

    def known_problems(self) -> list[str]:
        """This process's own knowledge, without I/O (for /readyz)."""
        return self._problem(self._last)

    async def recorded_problems(self) -> list[str]:
        """What any instance recorded (for doctor, which never takes events itself)."""
        if self._state is None:
            return []
        try:
            recorded = await self._state.get(self.KEY)
        except Exception as exc:  # doctor says what is wrong with the database itself
            log.warning("app_rate_limited records not readable (%s)", describe(exc))
            return []
        return self._problem(_Limited.parse(recorded))

    def _problem(self, last: _Limited | None) -> list[str]:
        if last is None or self._clock() - last.at > self._remember:
            return []
        times = f"{last.count} time{'s' if last.count != 1 else ''}"
        return [
            f"Slack: event deliveries rate limited (app_rate_limited) {times}, last for the minute starting "
            f"{_utc(last.minute)}; replies written in Slack during such a minute did not reach the bridge. Slack "
            "allows 30,000 events an hour per workspace: subscribe the app only to the events it needs "
            "(message.channels, message.groups, user_change)"
        ]


@dataclass(frozen=True)
class _Limited:
    count: int
    at: float  # when the bridge heard it (the clock's seconds)
    minute: float  # the minute Slack dropped (epoch seconds)

    def dump(self) -> str:
        return json.dumps({"count": self.count, "at": self.at, "minute": self.minute})

    @classmethod
    def parse(cls, raw: str | None) -> _Limited | None:
        try:
            data = json.loads(raw) if raw else None
            return cls(int(data["count"]), float(data["at"]), float(data["minute"])) if data else None
        except (ValueError, TypeError, KeyError):
            return None  # written by another version: as if nothing were recorded


class SlackInbound:
    def __init__(
        self,
        name: EndpointName,
        session: SlackSession,
        users: UserDirectory,
        *,
        store_deadline: float,
        clock: Callable[[], float] = time.time,
        state: StateStore | None = None,
        downloads: SlackDownloads | None = None,
        note_prefix: str = "//",
    ) -> None:
        self.name = name
        #: shared files into the bridge's store (None: files are not passed on)
        self._downloads = downloads
        self._note_prefix = note_prefix
        self._session = session
        self._users = users
        #: an event not stored within this many seconds is answered 503 (Slack wants an answer within 3 s)
        self.store_deadline = store_deadline
        self.rate_limits = EventRateLimits(clock, state)
        self._inbox: Inbox | None = None
        self._storing: set[asyncio.Future[bool]] = set()

    def attach(self, app: AsyncApp, inbox: Inbox) -> None:
        """Our listeners on the bolt app; events go to ``inbox``.

        Bolt answers 404 to what no listener takes, and Slack counts that as a failed delivery (and
        turns event delivery off for an app that keeps failing): everything else Slack may send is
        acknowledged and ignored by the catch-all listeners registered last (bolt tries in order).
        """
        self._inbox = inbox
        app.middleware(self._on_envelope)
        app.event("message")(self._on_message)
        app.event("user_change")(self._on_user_change)
        app.action(blocks.CLAIM)(self._on_claim)
        app.action(blocks.CLOSE)(self._on_close)
        app.event(ANY)(self._ignore)
        for register in (app.action, app.view, app.view_closed, app.shortcut, app.options, app.command):
            register(ANY)(self._ack)
        app.error(self._on_error)

    async def stop(self) -> None:
        for task in list(self._storing):
            task.cancel()
        await asyncio.gather(*self._storing, return_exceptions=True)

    def known_problems(self) -> list[str]:
        return self.rate_limits.known_problems()

    async def _ignore(self, **_: Any) -> None:
        return None

    async def _ack(self, ack: Callable[[], Awaitable[None]]) -> None:
        await ack()

    async def _on_envelope(
        self, body: dict[str, Any], response: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse:
        """Envelopes that are no ``event_callback`` and would reach no listener: ``app_rate_limited``."""
        if body.get("type") == "app_rate_limited":
            await self.rate_limits.record(body)
            return BoltResponse(status=200, body="")
        await next()
        return response  # bolt goes on with what the middleware returns

    async def _store(self, event: InboundEvent) -> bool:
        """Hand the event to the core, and fail (→ 503, so Slack retries) if it is not stored in time.

        A store that is late is not cancelled (a transaction cut off mid-commit helps nobody): it
        finishes when it can, and Slack's retry then finds the event stored, or stores it itself.
        """
        assert self._inbox is not None
        task: asyncio.Future[bool] = asyncio.ensure_future(self._inbox.handle(event))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)
        try:
            async with asyncio.timeout(self.store_deadline):
                return await asyncio.shield(task)
        except TimeoutError:
            task.add_done_callback(_log_late_failure)
            raise

    async def _on_error(self, error: Exception) -> BoltResponse:
        """A listener could not take the request (the database is down, say): 503, so Slack retries it."""
        if isinstance(error, TimeoutError):
            log.warning("Slack event not stored within %g s; answered 503 so Slack retries it", self.store_deadline)
        else:
            log.warning("Slack request failed (%s); answered 503 so Slack retries it", describe(error))
        return BoltResponse(
            status=503,
            body=json.dumps({"error": "temporarily_unavailable"}),
            headers={"content-type": "application/json"},
        )

    async def _on_message(self, event: dict[str, Any]) -> None:
        own_user_id = self._session.bot_user_id
        change = thread_change(event, own_user_id=own_user_id)
        if change is not None and self._inbox is not None:
            await self._on_change(change)
            return
        reply = thread_reply(event, own_user_id=own_user_id, own_bot_id=self._session.bot_id)
        if reply is None or self._inbox is None:
            return
        html: str | None = None
        if INVITE.match(reply.text):
            text = reply.text.strip()
        else:
            text, html = await self._formatted(reply.text, reply.blocks)
        files: tuple[Attachment, ...] = ()
        problems: tuple[str, ...] = ()
        # a note's (or a command's) files stay in Slack: only what goes to the visitor is fetched
        if reply.files and isinstance(interpret(text, self._note_prefix), Reply):
            if self._downloads is not None:
                fetched = await self._downloads.fetch(reply.files)
                files, problems = fetched.attachments, fetched.problems
            else:
                problems = tuple(str(f.get("name") or "a file") for f in reply.files)
        name, avatar = await self._users.lookup(reply.user)
        author = Participant(Role.AGENT, name, avatar, f"slack:{reply.user}")
        thread = ThreadRef(thread_ref(reply.channel, reply.thread_ts))
        known = True
        if text.strip() or files or not problems:
            known = await self._store(
                MessageReceived(
                    endpoint=self.name,
                    thread=thread,
                    remote_id=RemoteId(thread_ref(reply.channel, reply.ts)),
                    author=author,
                    text=text,
                    html=html,
                    attachments=files,
                )
            )
        if problems:
            # the words (and the other files) went on; the thread is told what did not, once
            reason = "Not passed on to the visitor: " + "; ".join(problems)
            known = (
                await self._store(
                    Rejected(
                        self.name, thread, RemoteId(f"{thread_ref(reply.channel, reply.ts)}:files"), author, reason
                    )
                )
                and known
            )
        if not known and own_user_id and event.get("parent_user_id") == own_user_id:
            # under a root of ours whose post's answer is not recorded yet (an agent quicker than
            # Slack's answer, or a crash in flight): not ours to drop — 503, and Slack retries it
            raise ThreadNotReady(reply.thread_ts)

    async def _on_user_change(self, event: dict[str, Any]) -> None:
        user = event.get("user")
        if isinstance(user, dict):
            self._users.changed(user)

    async def _on_change(self, change: ThreadChange) -> None:
        thread = ThreadRef(thread_ref(change.channel, change.thread_ts))
        original = RemoteId(thread_ref(change.channel, change.ts))
        remote_id = RemoteId(f"{thread_ref(change.channel, change.ts)}:change:{change.event_ts}")
        if change.text is None:
            await self._store(MessageDeleted(self.name, thread, remote_id, original))
            return
        text, html = await self._formatted(change.text, change.blocks)
        await self._store(MessageEdited(self.name, thread, remote_id, original, text, html))

    async def _formatted(self, text: str, blocks: Sequence[Any]) -> tuple[str, str | None]:
        """An agent's message as plain text and the HTML subset, mentions by the people's names."""
        names = {uid: await self._users.name(uid) for uid in mentioned_users(text, blocks)}
        formatted = agent_message(text, blocks, names)
        return formatted.text, formatted.html

    async def _on_button(self, body: dict[str, Any], action: Action) -> None:
        message = body.get("message") or body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get("channel_id")
        ts = message.get("ts") or body.get("container", {}).get("message_ts")
        user_id = (body.get("user") or {}).get("id")
        if not (channel and ts and user_id) or self._inbox is None:
            return
        name, avatar = await self._users.lookup(user_id)
        action_ts = (body.get("actions") or [{}])[0].get("action_ts", "")
        await self._store(
            ActionRequested(
                endpoint=self.name,
                thread=ThreadRef(thread_ref(channel, ts)),
                remote_id=RemoteId(f"action:{channel}:{ts}:{user_id}:{action.value}:{action_ts}"),
                action=action,
                actor=Participant(Role.AGENT, name, avatar, f"slack:{user_id}"),
            )
        )

    async def _on_claim(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._on_button(body, Action.CLAIM)

    async def _on_close(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._on_button(body, Action.CLOSE)


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _log_late_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("a Slack event answered 503 was not stored either (Slack retries it): %s", describe(exc))
