"""The visitor's side of a conversation: start, write, look around, close, rate, ask for the transcript."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge import craft, mail_in, observe, steps, webhooks
from bridge.endpoint import ShowsTyping
from bridge.live import NewMessage
from bridge.model import (
    ANONYMOUS,
    ClientFacts,
    Conversation,
    ConversationId,
    Message,
    PageView,
    Participant,
    Role,
    Status,
    Visitor,
)
from bridge.outbound import Line, Notice, OpenThread, RootState, Seen, Transcript
from bridge.store import attachments, lines, read_state, returning, sqlite_lines, visitor_lines
from bridge.store import conversations as q
from bridge.store.limits import CountedUse, SharedLimits, seconds_to_wait
from bridge.store.new_messages import Draft
from bridge.transcript import render_transcript, render_transcript_html
from bridge.work import Core, Work, hash_token
from config.sites import LANGUAGES

MAX_PAGES = 50
log = logging.getLogger(__name__)


class ConversationClosed(Exception):
    """The conversation is closed: nothing more can be said in it."""


class ForeignAttachment(Exception):
    """A file id that is not one of this conversation's uploads (another's, unknown, or unfinished)."""


class LimitReached(Exception):
    """Too many messages in the conversation for now: ``wait`` seconds until a place frees up."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"try again in {wait:.0f} s")
        self.wait = wait


class WrongState(Exception):
    """Not allowed in the conversation's current state (e.g. a rating before close, or twice)."""


@dataclass(frozen=True)
class NewConversation:
    conversation: Conversation
    token: str


class VisitorSide:
    core: Core
    #: the endpoints that can show the team the visitor typing, by name (set by the composition root)
    typists: Mapping[str, ShowsTyping] = {}

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
        user_agent: str | None = None,
        client: ClientFacts | None = None,
        language: str | None = None,
    ) -> NewConversation:
        """A new conversation; ``language`` is the visitor's (the site's ``LANGUAGE`` wins over it)."""
        site = self.core.sites[site_id]
        token = secrets.token_urlsafe(32)
        async with self.core.work() as work:
            earlier = await returning.earlier_chats(
                work.conn, site_id, external_id=visitor.external_id, key=visitor.key
            )
            cid = await _create(
                work,
                site_id,
                self.core.reachable_destinations(site, topic),
                token=token,
                topic=topic,
                visitor_name=visitor.name,
                visitor_email=visitor.email,
                visitor_external_id=visitor.external_id,
                visitor_key=visitor.key,
                returning_chats=earlier.stored() if earlier else None,
                locale=locale,
                timezone=timezone,
                client_address=client_address,
                pages=[_page_dict(page)] if page else [],
                user_agent=user_agent,
                client_facts={k: v for k, v in asdict(client).items() if v} if client else None,
                language=site.language or (language if language in LANGUAGES else "en"),
            )
            observe.started(work, site_id, topic)
            conv = await q.get_conversation(work.conn, cid)
        assert conv is not None
        return NewConversation(conv, token)

    async def authorize(self, cid: str, token: str | None) -> Conversation | None:
        """The conversation if ``token`` is its token; None for a wrong token or an unknown id alike."""
        if not token:
            return None
        async with self.core.db.read() as conn:
            return await _authorized(conn, cid, token)

    async def open_socket(self, cid: str, token: str | None, after: int) -> tuple[list[Message], Conversation] | None:
        """What a live socket starts from, in one read: the messages after ``after`` and the conversation,
        if ``token`` is its token (None for a wrong token or an unknown id alike)."""
        if not token:
            return None
        async with self.core.db.read() as conn:
            conv = await _authorized(conn, cid, token)
            return None if conv is None else (await q.messages_after(conn, cid, after), conv)

    async def get(self, cid: str) -> Conversation | None:
        async with self.core.db.read() as conn:
            return await q.get_conversation(conn, cid)

    async def post_visitor_message(
        self,
        cid: str,
        client_msg_id: str,
        text: str,
        attachment_ids: Sequence[str] = (),
        *,
        origin: str = "widget",
        reopen: bool = False,
        admit: Callable[[AsyncConnection], Awaitable[None]] | None = None,
        count: CountedUse | None = None,
    ) -> tuple[Message, bool]:
        """Store a visitor message once per ``client_msg_id``, with the files uploaded to the conversation
        before (``attachment_ids``; ``ForeignAttachment`` when one is not); (message, True if new).
        ``reopen``: a closed chat opens again for it (a reply by email, ``bridge/mail_in.py``).
        ``admit``: called for a new message only (a resend costs nothing), in the transaction that stores
        it, before it is stored; what it raises (a rate limit) stores nothing. On SQLite it must run no
        statement on the connection it is given (a plain line's transaction is not SQLAlchemy's there,
        ``bridge/store/sqlite_lines.py``): the limits counted in this process run none. ``count``: a use
        counted in the store the same way (``LimitReached`` when no place is left)."""
        # a plain line in a call or two: the limit counted in that call on PostgreSQL (``count``), between
        # the two on SQLite (``admit``)
        plain_line = count is None if self.core.db.is_sqlite else admit is None
        if plain_line and not (attachment_ids or reopen):
            plain = await self._plain_line(cid, client_msg_id, text, origin, count, admit)
            if plain is not None:
                return plain
        async with self.core.work() as work:
            # lock first: two concurrent sends of the same client_msg_id queue here, the second finds the first
            conv, existing = await q.line_context(work.conn, cid, client_msg_id)
            if existing is not None:
                return existing, False
            if conv is None or (conv.status is not Status.OPEN and not (reopen and conv.kind == "chat")):
                raise ConversationClosed(cid)
            files = await attachments.usable(work.conn, attachment_ids, cid)
            if files is None:
                raise ForeignAttachment(cid)
            if admit is not None:  # last: a message refused for what it is costs no place
                await admit(work.conn)
            if count is not None and (wait := await SharedLimits(self.core.db).count(count, work.conn)):
                raise LimitReached(wait)
            if conv.status is not Status.OPEN:
                await mail_in.reopen(work, conv)
            author = Participant(Role.VISITOR, conv.visitor_name)
            draft = Draft(cid, author, text, work.now, origin, client_msg_id, attachments=files)
            # the first unanswered message starts the first-response clock
            msg, queued = await lines.insert_line(work.conn, draft, Line.KIND, touch=q.Touch.VISITOR)
            await attachments.link(work.conn, [f.id for f in files], cid, msg.id)
            work.queued(cid, queued)
            await observe.visitor_said(work, cid)
            work.signal(cid, NewMessage(msg.seq, msg))
            await craft.tell_place_in_line(self.core, work, conv, msg.seq)
        return msg, True

    async def _plain_line(
        self,
        cid: str,
        client_msg_id: str,
        text: str,
        origin: str,
        count: CountedUse | None,
        admit: sqlite_lines.Admit | None,
    ) -> tuple[Message, bool] | None:
        """``post_visitor_message`` for a plain line: the same steps in one database call on PostgreSQL
        (``bridge/store/visitor_lines.py``), in two on SQLite (``bridge/store/sqlite_lines.py``), then
        what a unit of work does once committed. None: the visitor's first line in a chat, while nobody
        owes them an answer: left to the unit of work."""
        async with self.core.statements() as work:
            # the author's name is the conversation's visitor's, as the call stores it
            draft = Draft(cid, Participant(Role.VISITOR, ANONYMOUS), text, work.now, origin, client_msg_id)
            if self.core.db.is_sqlite:
                done = await sqlite_lines.store_visitor_line(work.conn, draft, Line.KIND, admit)
            else:
                done = await visitor_lines.store_visitor_line(work.conn, draft, Line.KIND, count, self.core.notify_as)
            if done.outcome == "first":
                return None
            if done.outcome == "resent" and done.found_id is not None:
                existing = await q.get_message(work.conn, done.found_id)
                if existing is None:  # erased since, with its conversation
                    raise ConversationClosed(cid)
                return existing, False
            if done.outcome == "limited" and count is not None and done.oldest is not None:
                raise LimitReached(seconds_to_wait(done.oldest, count.span, count.now))
            if done.outcome != "stored":
                raise ConversationClosed(cid)
            msg = replace(draft, author=Participant(Role.VISITOR, done.author or ANONYMOUS)).stored(done.seq)
            work.queued(cid, done.endpoints)
            await observe.visitor_said(work, cid)
            work.signal(cid, NewMessage(msg.seq, msg))
        return msg, True

    async def visitor_typing(self, cid: str) -> None:
        """The visitor is typing: the team chats that can show it do (never stored, never queued)."""
        async with self.core.db.read() as conn:
            conv = await q.get_conversation(conn, cid)
            links = await q.thread_links(conn, cid) if conv is not None else {}
        if conv is None or conv.status is not Status.OPEN:
            return
        for endpoint, (destination, thread) in links.items():
            typist = self.typists.get(endpoint)
            if typist is not None and thread is not None:
                try:
                    await typist.typing(destination, thread)
                except Exception as exc:  # a hint only: never the visitor's problem
                    log.info("%s: typing not shown (%s)", endpoint, type(exc).__name__)

    async def visitor_saw(self, cid: str, seq: int) -> None:
        """The visitor had the conversation on screen up to ``seq``: each agent's message up to there is
        marked where the agent wrote it, once (the ``Seen`` delivery)."""
        async with self.core.work() as work:
            links = await q.thread_links(work.conn, cid)
            for mid, origin in await read_state.mark_seen(work.conn, cid, seq, work.now):
                message = await q.get_message(work.conn, mid) if origin in links else None
                if message is not None:
                    await work.enqueue(cid, origin, Seen(message, None))

    async def offline_message(self, site_id: str, *, name: str | None, email: str, text: str) -> None:
        """A message left outside office hours: a thread of its own, closed from the start."""
        site = self.core.sites[site_id]
        destinations = self.core.reachable_destinations(site, None) or next(
            (d for t in site.topics if (d := self.core.reachable_destinations(site, t))), {}
        )
        async with self.core.work() as work:
            cid = await _create(
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
                await work.enqueue(cid, endpoint, Notice(f"Offline message from {who}:\n{text}"))

    async def message(self, cid: str, mid: str) -> Message | None:
        async with self.core.db.read() as conn:
            found = await q.get_message(conn, mid)
        return found if found is not None and found.conversation_id == cid else None

    async def messages_after(self, cid: str, after: int) -> list[Message]:
        async with self.core.db.read() as conn:
            return await q.messages_after(conn, cid, after)

    async def news_after(self, cid: str, after: int) -> tuple[list[Message], Conversation | None]:
        """What a live socket catches up on, in one read: the messages after ``after`` and the conversation."""
        async with self.core.db.read() as conn:
            return await q.messages_after(conn, cid, after), await q.get_conversation(conn, cid)

    async def visitor_viewed(self, cid: str, page: PageView) -> None:
        """The visitor moved to another page: keep the trail, refresh the thread's root."""
        async with self.core.work() as work:
            conv = await q.get_conversation(work.conn, cid)
            if conv is None or conv.status is not Status.OPEN:
                return
            if conv.current_page and conv.current_page.url == page.url:
                return
            pages = [*[_page_dict(p) for p in conv.pages][-(MAX_PAGES - 1) :], _page_dict(page)]
            await q.set_fields(work.conn, cid, pages=pages)
            await work.enqueue_all(cid, RootState())

    async def close(self, cid: str, *, by: Participant | None = None, reason: str | None = None) -> bool:
        """Close once; True if this call closed it."""
        async with self.core.work() as work:
            conv = await q.get_conversation(work.conn, cid)
            if conv is None:
                return False
            return await steps.close(self.core, work, conv, by=by, reason=reason)

    async def rate(self, cid: str, score: int, comment: str | None) -> None:
        async with self.core.work() as work:
            if not await q.rate_if_unrated(work.conn, cid, score, comment, work.now):
                raise WrongState("a rating is given once, after the conversation is closed")
            await observe.rated(work, cid, score)
            stars = "★" * score + "☆" * (5 - score)
            text = f"Rating: {stars} {score}/5" + (f" — “{comment}”" if comment else "")
            await work.enqueue_all(cid, Notice(text))
            await work.enqueue_all(cid, RootState())
            await webhooks.tell(self.core, work, cid, webhooks.RATED)

    async def request_transcript(self, cid: str, email: str) -> None:
        """Mail the conversation so far to ``email`` (through the outbox: an SMTP outage only delays it)."""
        async with self.core.work() as work:
            conv = await q.get_conversation(work.conn, cid)
            if conv is None:
                return
            messages = await q.messages_after(work.conn, cid, 0, limit=100_000)
            closed = "as the chat ended" if conv.status is Status.CLOSED else "not yet (sent while open)"
            site = self.core.site_name(conv.site_id)
            text = render_transcript(conv, messages, site, closed)
            html = render_transcript_html(conv, messages, site)
            await work.enqueue(cid, "email", Transcript(text, to=email, html=html))


async def _create(
    work: Work, site_id: str, destinations: Mapping[str, str], *, token: str, **fields: Any
) -> ConversationId:
    """A new conversation and the roots of its threads: one per destination, opened in order."""
    cid = ConversationId(secrets.token_urlsafe(18))  # 144 random bits: ids cannot be guessed
    values: dict[str, Any] = dict(status=Status.OPEN.value, pages=[], last_seq=0)
    values.update(fields)
    values.update(id=cid, site_id=site_id, token_hash=hash_token(token), created_at=work.now, last_activity_at=work.now)
    await q.insert_conversation(work.conn, values)
    for endpoint, destination in destinations.items():
        await q.link_thread(work.conn, cid, endpoint, destination)
        await work.enqueue(cid, endpoint, OpenThread())
    return cid


def _page_dict(page: PageView) -> dict[str, str | None]:
    return {"url": page.url, "title": page.title, "referrer": page.referrer}


async def _authorized(conn: AsyncConnection, cid: str, token: str) -> Conversation | None:
    found = await q.conversation_and_token(conn, cid)
    if found is None or not hmac.compare_digest(found[1], hash_token(token)):
        return None
    return found[0]
