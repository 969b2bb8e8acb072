"""The core: what happens when a visitor or a team member acts on a conversation.

Every action is one write transaction that stores the change and the deliveries it causes (the
outbox); only after the commit are the widget sockets signalled and the delivery workers woken.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.commands import Command, CommandCall, Note, Reply, help_text, interpret
from bridge.endpoint import Kind
from bridge.events import (
    Action,
    ActionRequested,
    InboundEvent,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    Rejected,
)
from bridge.live import LiveHub, Signal
from bridge.model import (
    Conversation,
    ConversationId,
    Message,
    PageView,
    Participant,
    Role,
    Status,
    ThreadRef,
    Visitor,
)
from bridge.store import conversations as q
from bridge.store import outbox
from bridge.store.database import Database
from bridge.transcript import render_transcript
from config.settings import SiteConfig

log = logging.getLogger(__name__)
MAX_PAGES = 50


class ConversationClosed(Exception):
    """The conversation is closed: nothing more can be said in it."""


class WrongState(Exception):
    """Not allowed in the conversation's current state (e.g. a rating before close, or twice)."""


class _Duplicate(Exception):
    """An inbound event seen before: roll back, do nothing."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class _Work:
    """One unit of work: the transaction, and what to announce once it is committed."""

    conn: AsyncConnection
    now: datetime
    signals: list[tuple[str, Signal]] = field(default_factory=list)
    deliveries: int = 0


@dataclass(frozen=True)
class NewConversation:
    conversation: Conversation
    token: str


class Conversations:
    def __init__(
        self,
        db: Database,
        sites: Mapping[str, SiteConfig],
        endpoints: Collection[str],
        live: LiveHub,
        *,
        wake_deliveries: Callable[[], None] = lambda: None,
        note_prefix: str = "//",
        snippets: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        announce: Callable[[Sequence[tuple[str, Signal]], bool], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.sites = sites
        self.endpoints = frozenset(endpoints)
        self.live = live
        self.wake_deliveries = wake_deliveries
        self.note_prefix = note_prefix
        self.snippets = dict(snippets or {})
        self.clock = clock
        #: tells other instances (PostgreSQL NOTIFY); None with one instance
        self.announce = announce

    # -- plumbing -------------------------------------------------------------------------------

    async def _commit(self, work: _Work) -> None:
        """Announce what a committed unit of work changed."""
        for cid, signal in work.signals:
            self.live.publish(cid, signal)
        if work.deliveries:
            self.wake_deliveries()
        if self.announce is not None:
            await self.announce(work.signals, work.deliveries > 0)

    async def _enqueue_all(
        self,
        work: _Work,
        cid: str,
        kind: Kind,
        *,
        message_id: str | None = None,
        payload: dict[str, object] | None = None,
        skip: str | None = None,
    ) -> None:
        for endpoint in await q.thread_links(work.conn, cid):
            if endpoint != skip:
                await self._enqueue(work, cid, endpoint, kind, message_id=message_id, payload=payload)

    async def _enqueue(
        self,
        work: _Work,
        cid: str,
        endpoint: str,
        kind: Kind,
        *,
        message_id: str | None = None,
        payload: dict[str, object] | None = None,
    ) -> None:
        await outbox.enqueue(work.conn, cid, endpoint, kind.value, work.now, message_id=message_id, payload=payload)
        work.deliveries += 1

    def site_name(self, site_id: str) -> str:
        site = self.sites.get(site_id)
        return site.name if site else site_id

    # -- the visitor's side ---------------------------------------------------------------------

    def reachable_destinations(self, site: SiteConfig, topic: str | None) -> dict[str, str]:
        return {e: d for e, d in site.destinations(topic).items() if e in self.endpoints}

    async def start(
        self,
        site_id: str,
        *,
        visitor: Visitor,
        topic: str | None,
        page: PageView | None,
        locale: str | None,
        timezone: str | None,
        client_address: str | None,
    ) -> NewConversation:
        site = self.sites[site_id]
        token = secrets.token_urlsafe(32)
        async with self.db.write() as conn:
            work = _Work(conn, self.clock())
            cid = await self._create(
                work,
                site_id,
                self.reachable_destinations(site, topic),
                token=token,
                topic=topic,
                visitor_name=visitor.name,
                visitor_email=visitor.email,
                visitor_external_id=visitor.external_id,
                locale=locale,
                timezone=timezone,
                client_address=client_address,
                pages=[_page_dict(page)] if page else [],
            )
            conv = await q.get_conversation(conn, cid)
        await self._commit(work)
        assert conv is not None
        return NewConversation(conv, token)

    async def _create(
        self, work: _Work, site_id: str, destinations: Mapping[str, str], *, token: str, **fields: Any
    ) -> ConversationId:
        """A new conversation and the roots of its threads: one per destination, opened in order."""
        cid = ConversationId(secrets.token_urlsafe(18))  # 144 random bits: ids cannot be guessed
        values: dict[str, Any] = dict(status=Status.OPEN.value, pages=[], last_seq=0)
        values.update(fields)
        values.update(
            id=cid, site_id=site_id, token_hash=hash_token(token), created_at=work.now, last_activity_at=work.now
        )
        await q.insert_conversation(work.conn, values)
        for endpoint, destination in destinations.items():
            await q.link_thread(work.conn, cid, endpoint, destination)
            await self._enqueue(work, cid, endpoint, Kind.OPEN_THREAD)
        return cid

    async def authorize(self, cid: str, token: str | None) -> Conversation | None:
        """The conversation if ``token`` is its token; None for a wrong token or an unknown id alike."""
        if not token:
            return None
        async with self.db.read() as conn:
            stored = await q.token_hash_of(conn, cid)
            if stored is None or not hmac.compare_digest(stored, hash_token(token)):
                return None
            return await q.get_conversation(conn, cid)

    async def get(self, cid: str) -> Conversation | None:
        async with self.db.read() as conn:
            return await q.get_conversation(conn, cid)

    async def post_visitor_message(self, cid: str, client_msg_id: str, text: str) -> tuple[Message, bool]:
        """Store a visitor message once per ``client_msg_id``; (message, True if new)."""
        async with self.db.write() as conn:
            # lock first: two concurrent sends of the same client_msg_id queue here, the second finds the first
            conv = await q.lock_conversation(conn, cid)
            existing = await q.message_by_client_id(conn, cid, client_msg_id)
            if existing is not None:
                return existing, False
            if conv is None or conv.status is not Status.OPEN:
                raise ConversationClosed(cid)
            work = _Work(conn, self.clock())
            author = Participant(Role.VISITOR, conv.visitor_name)
            msg = await q.insert_message(
                conn, cid, author, text, work.now, origin="widget", client_msg_id=client_msg_id
            )
            await self._enqueue_all(work, cid, Kind.MESSAGE, message_id=msg.id)
            # the first unanswered message starts the first-response clock
            await q.touch_by_visitor(conn, cid, work.now)
            work.signals.append((cid, Signal("message", {"seq": msg.seq})))
        await self._commit(work)
        return msg, True

    async def known_visitor_message(self, cid: str, client_msg_id: str) -> Message | None:
        async with self.db.read() as conn:
            return await q.message_by_client_id(conn, cid, client_msg_id)

    async def offline_message(self, site_id: str, *, name: str | None, email: str, text: str) -> None:
        """A message left outside office hours: a thread of its own, closed from the start."""
        site = self.sites[site_id]
        destinations = self.reachable_destinations(site, None) or next(
            (d for t in site.topics if (d := self.reachable_destinations(site, t))), {}
        )
        async with self.db.write() as conn:
            work = _Work(conn, self.clock())
            cid = await self._create(
                work,
                site_id,
                destinations,
                token=secrets.token_urlsafe(32),  # nobody holds it: the visitor left and is answered by email
                status=Status.CLOSED.value,
                kind="offline",
                visitor_name=name,
                visitor_email=email,
                closed_at=work.now,
            )
            who = f"{name or 'A visitor'} <{email}>"
            for endpoint in destinations:
                await self._enqueue(
                    work, cid, endpoint, Kind.NOTICE, payload={"text": f"Offline message from {who}:\n{text}"}
                )
        await self._commit(work)

    async def message(self, cid: str, mid: str) -> Message | None:
        async with self.db.read() as conn:
            found = await q.get_message(conn, mid)
        return found if found is not None and found.conversation_id == cid else None

    async def messages_after(self, cid: str, after: int) -> list[Message]:
        async with self.db.read() as conn:
            return await q.messages_after(conn, cid, after)

    async def visitor_viewed(self, cid: str, page: PageView) -> None:
        """The visitor moved to another page: keep the trail, refresh the thread's root."""
        async with self.db.write() as conn:
            work = _Work(conn, self.clock())
            conv = await q.get_conversation(conn, cid)
            if conv is None or conv.status is not Status.OPEN:
                return
            if conv.current_page and conv.current_page.url == page.url:
                return
            pages = [*[_page_dict(p) for p in conv.pages][-(MAX_PAGES - 1) :], _page_dict(page)]
            await q.set_fields(conn, cid, pages=pages)
            await self._enqueue_all(work, cid, Kind.ROOT_STATE)
        await self._commit(work)

    async def typing(self, endpoint: str, thread: ThreadRef, author: Participant) -> None:
        async with self.db.read() as conn:
            cid = await q.conversation_for_thread(conn, endpoint, thread)
            conv = await q.get_conversation(conn, cid) if cid else None
        if conv is None or conv.status is not Status.OPEN:
            return
        shown: dict[str, str] = {"role": author.role.value, "name": author.name}
        if author.avatar_url:
            shown["avatar_url"] = author.avatar_url
        signal = Signal("typing", {"author": shown})
        self.live.publish(conv.id, signal)
        if self.announce is not None:
            await self.announce([(conv.id, signal)], False)

    async def close(self, cid: str, *, by: Participant | None = None, reason: str | None = None) -> bool:
        """Close once; True if this call closed it."""
        async with self.db.write() as conn:
            work = _Work(conn, self.clock())
            conv = await q.get_conversation(conn, cid)
            if conv is None:
                return False
            closed = await self._close(work, conv, by=by, reason=reason)
        await self._commit(work)
        return closed

    async def rate(self, cid: str, score: int, comment: str | None) -> None:
        async with self.db.write() as conn:
            work = _Work(conn, self.clock())
            if not await q.rate_if_unrated(conn, cid, score, comment, work.now):
                raise WrongState("a rating is given once, after the conversation is closed")
            stars = "★" * score + "☆" * (5 - score)
            text = f"Rating: {stars} {score}/5" + (f" — “{comment}”" if comment else "")
            await self._enqueue_all(work, cid, Kind.NOTICE, payload={"text": text, "what": "rating"})
            await self._enqueue_all(work, cid, Kind.ROOT_STATE)
        await self._commit(work)

    async def request_transcript(self, cid: str, email: str) -> None:
        """Mail the conversation so far to ``email`` (through the outbox: an SMTP outage only delays it)."""
        async with self.db.write() as conn:
            work = _Work(conn, self.clock())
            conv = await q.get_conversation(conn, cid)
            if conv is None:
                return
            messages = await q.messages_after(conn, cid, 0, limit=100_000)
            closed = "as the chat ended" if conv.status is Status.CLOSED else "not yet (sent while open)"
            text = render_transcript(conv, messages, self.site_name(conv.site_id), closed)
            await self._enqueue(work, cid, "email", Kind.TRANSCRIPT, payload={"to": email, "text": text})
        await self._commit(work)

    # -- the team's side ------------------------------------------------------------------------

    async def handle(self, event: InboundEvent) -> bool:
        """An event from a team chat, stored once however often it is delivered.

        False when its thread is no conversation the store knows (yet: a root whose post is still
        in flight is not known until the answer is recorded — the endpoint may ask for a retry).
        """
        try:
            async with self.db.write() as conn:
                work = _Work(conn, self.clock())
                cid = await q.conversation_for_thread(conn, event.endpoint, event.thread)
                if cid is None:
                    return False
                if await q.is_known_remote(conn, event.endpoint, event.remote_id):
                    return True
                conv = await q.get_conversation(conn, cid)
                assert conv is not None
                message_id = await self._dispatch(work, conv, event)
                if not await q.remember_remote(
                    conn,
                    event.endpoint,
                    event.remote_id,
                    work.now,
                    message_id=message_id,
                    conversation_id=cid,
                ):
                    raise _Duplicate  # a concurrent delivery of the same event won
        except _Duplicate:
            return True
        await self._commit(work)
        return True

    async def _dispatch(self, work: _Work, conv: Conversation, event: InboundEvent) -> str | None:
        if isinstance(event, ActionRequested):
            await self._action(work, conv, event.action, event.actor, event.endpoint)
            return None
        if isinstance(event, Rejected):
            await self._notice(work, conv.id, event.endpoint, event.reason)
            return None
        if isinstance(event, MessageEdited | MessageDeleted):
            await self._agent_changes(work, conv, event)
            return None
        if not isinstance(event, MessageReceived):
            return None
        meaning = interpret(event.text, self.note_prefix)
        if isinstance(meaning, Note):
            return None
        if isinstance(meaning, CommandCall):
            await self._command(work, conv, meaning, event)
            return None
        return await self._agent_says(work, conv, event.author, meaning.text, event.endpoint)

    async def _agent_says(
        self, work: _Work, conv: Conversation, author: Participant, text: str, origin: str
    ) -> str | None:
        if conv.status is not Status.OPEN:
            await self._notice(work, conv.id, origin, "This conversation is closed: the visitor will not see that.")
            return None
        msg = await q.insert_message(work.conn, conv.id, author, storable(text), work.now, origin=origin)
        await self._enqueue_all(work, conv.id, Kind.MESSAGE, message_id=msg.id, skip=origin)
        await q.touch(work.conn, conv.id, work.now, awaiting_reply_since=None, reminded_at=None)
        work.signals.append((conv.id, Signal("message", {"seq": msg.seq})))
        return msg.id

    async def _agent_changes(self, work: _Work, conv: Conversation, event: MessageEdited | MessageDeleted) -> None:
        """An edit or delete of a reply the visitor has: the visitor's copy follows (same seq)."""
        mid = await q.message_for_remote(work.conn, event.endpoint, event.original)
        if mid is None:
            return  # a note, a command, or something never relayed: nothing the visitor has
        msg = await q.get_message(work.conn, mid)
        if msg is None or msg.deleted:
            return
        # an edit that turns a reply into a note or a command takes it back from the visitor
        text = storable(event.text) if isinstance(event, MessageEdited) else ""
        if isinstance(event, MessageDeleted) or not isinstance(interpret(text, self.note_prefix), Reply):
            await q.delete_message(work.conn, mid, work.now)
            work.signals.append((conv.id, Signal("message_deleted", {"id": mid, "seq": msg.seq})))
        elif text != msg.text:
            await q.edit_message(work.conn, mid, text, work.now)
            work.signals.append((conv.id, Signal("message_updated", {"id": mid, "seq": msg.seq})))

    async def _notice(self, work: _Work, cid: str, endpoint: str, text: str) -> None:
        """A line from the bridge in one endpoint's thread only (help, errors)."""
        await self._enqueue(work, cid, endpoint, Kind.NOTICE, payload={"text": text})

    async def _action(self, work: _Work, conv: Conversation, action: Action, actor: Participant, origin: str) -> None:
        if action is Action.CLOSE:
            await self._close(work, conv, by=actor)
        elif action is Action.CLAIM:
            await self._claim(work, conv, actor, origin)

    async def _claim(self, work: _Work, conv: Conversation, actor: Participant, origin: str) -> None:
        if conv.status is not Status.OPEN:
            await self._notice(work, conv.id, origin, "This conversation is closed.")
            return
        if conv.claimed_by == actor.name:
            return
        await q.set_fields(work.conn, conv.id, claimed_by=actor.name)
        await self._enqueue_all(work, conv.id, Kind.NOTICE, payload={"text": f"Claimed by {actor.name}"})
        await self._enqueue_all(work, conv.id, Kind.ROOT_STATE)

    async def _close(
        self, work: _Work, conv: Conversation, *, by: Participant | None, reason: str | None = None
    ) -> bool:
        if not await q.close_if_open(work.conn, conv.id, work.now):
            return False
        closed_by = reason or (f"by {by.name}" if by else "by the visitor")
        messages = await q.messages_after(work.conn, conv.id, 0, limit=100_000)
        transcript = render_transcript(conv, messages, self.site_name(conv.site_id), closed_by)
        # queued behind every pending message of the lane, so the thread gets them first
        await self._enqueue_all(work, conv.id, Kind.TRANSCRIPT, payload={"text": transcript})
        await self._enqueue_all(work, conv.id, Kind.ROOT_STATE)
        work.signals.append((conv.id, Signal("status", {"status": Status.CLOSED.value})))
        work.signals.append((conv.id, Signal("rating_requested")))
        return True

    async def _command(self, work: _Work, conv: Conversation, call: CommandCall, event: MessageReceived) -> None:
        origin, author = event.endpoint, event.author
        match call.command:
            case Command.CLOSE:
                if not await self._close(work, conv, by=author):
                    await self._notice(work, conv.id, origin, "This conversation is already closed.")
            case Command.CLAIM:
                await self._claim(work, conv, author, origin)
            case Command.BYE:
                await self._agent_says(work, conv, author, call.args or "Thanks for chatting with us. Goodbye!", origin)
                await self._close(work, conv, by=author)
            case Command.SNIPPET:
                text = self.snippets.get(call.args.strip())
                if text is None:
                    names = ", ".join(sorted(self.snippets)) or "none configured (SITECHAT_SNIPPETS_FILE)"
                    await self._notice(work, conv.id, origin, f"No snippet {call.args.strip()!r}. Snippets: {names}")
                else:
                    await self._agent_says(work, conv, author, text, origin)
            case Command.SHOW:
                url, _, label = call.args.partition(" ")
                if not url.startswith(("http://", "https://")):
                    await self._notice(work, conv.id, origin, "Usage: !show https://example.com/page [text]")
                else:
                    await self._agent_says(work, conv, author, f"{label.strip()} {url}".strip(), origin)
            case Command.TRANSFER:
                await self._transfer(work, conv, call.args.strip().lower(), author, origin)
            case _:
                await self._notice(work, conv.id, origin, help_text(self.note_prefix))

    async def _transfer(self, work: _Work, conv: Conversation, topic: str, actor: Participant, origin: str) -> None:
        site = self.sites.get(conv.site_id)
        if site is None or topic not in site.topics:
            names = ", ".join(sorted(site.topics)) if site and site.topics else "none"
            await self._notice(work, conv.id, origin, f"Usage: !transfer TOPIC (topics: {names})")
            return
        label = site.topics[topic].label
        await q.set_fields(work.conn, conv.id, topic=topic, claimed_by=None)
        links = await q.thread_links(work.conn, conv.id)
        wanted = self.reachable_destinations(site, topic)
        if {endpoint: destination for endpoint, (destination, _ref) in links.items()} == wanted:
            await self._enqueue_all(work, conv.id, Kind.NOTICE, payload={"text": f"Topic is now {label}"})
            await self._enqueue_all(work, conv.id, Kind.ROOT_STATE)
            return
        # What is still queued for the old threads, and the farewell, stay addressed to them (the links
        # are about to change); then the conversation opens new threads with the history so far.
        for endpoint, (destination, ref) in links.items():
            await outbox.readdress_pending(work.conn, conv.id, endpoint, destination, ref, work.now)
            if ref is not None:
                text = f"Transferred to {label} by {actor.name}"
                await self._enqueue(
                    work,
                    conv.id,
                    endpoint,
                    Kind.NOTICE,
                    payload={"text": text, "destination": destination, "thread": ref},
                )
        await q.relink_threads(work.conn, conv.id, wanted)
        messages = await q.messages_after(work.conn, conv.id, 0, limit=100_000)
        history = render_transcript(conv, messages, self.site_name(conv.site_id), "not yet (transferred)")
        for endpoint in wanted:
            await self._enqueue(work, conv.id, endpoint, Kind.OPEN_THREAD)
            await self._enqueue(work, conv.id, endpoint, Kind.TRANSCRIPT, payload={"text": history})


def storable(text: str) -> str:
    """Team-chat text as the store takes it: valid UTF-8, no NUL (a retry storm over one bad byte helps nobody)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def _page_dict(page: PageView) -> dict[str, str | None]:
    return {"url": page.url, "title": page.title, "referrer": page.referrer}
