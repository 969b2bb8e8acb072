"""The team's side of a conversation: what Slack and Matrix tell the core (replies, edits, deletions,
buttons, typing), each event stored once however often it is delivered."""

from __future__ import annotations

from typing import assert_never

from sqlalchemy.exc import IntegrityError

from bridge import faces, observe, steps
from bridge.commands import CommandCall, Note, Reply, interpret
from bridge.events import (
    Action,
    ActionRequested,
    InboundEvent,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    Rejected,
)
from bridge.live import MessageChanged, NewMessage, Recheck, Typing
from bridge.model import Conversation, Participant, RemoteId, Role, Status, ThreadRef
from bridge.outbound import Deletion, Edit, Line
from bridge.store import agent_lines, attachments, message_links, read_state
from bridge.store import conversations as q
from bridge.store.new_messages import Draft
from bridge.team_commands import run_command
from bridge.work import Core, Work

#: PostgreSQL's SQLSTATE for a unique constraint broken
UNIQUE_VIOLATION = "23505"


class _Duplicate(Exception):
    """An inbound event seen before: roll back, do nothing."""


class TeamSide:
    core: Core

    async def handle(self, event: InboundEvent) -> bool:
        """An event from a team chat, stored once however often it is delivered.

        False when its thread is no conversation the store knows (yet: a root whose post is still
        in flight is not known until the answer is recorded — the endpoint may ask for a retry).
        """
        if (done := await self._plain_reply(event)) is not None:
            return done
        try:
            async with self.core.work() as work:
                # locked: what the event does (a face shown once, a reply's seq) is decided one event at a time.
                # A replay waits for the lock too before it is found known; no transaction holding it waits on
                # the network, and one round trip fewer for every event is worth it
                found = await q.locked_for_event(work.conn, event.endpoint, event.thread, event.remote_id)
                if found is None:
                    found = await self._by_the_reply(work, event)
                elif found[0].status is Status.OPEN:  # a plain reply in this thread may take one call next time
                    self.core.thread_seen(event.endpoint, event.thread, found[0].id)
                if found is None:
                    return False
                conv, known = found
                if known:
                    return True
                message_id = await self._dispatch(work, conv, event)
                if not await message_links.remember_remote(
                    work.conn, event.endpoint, event.remote_id, work.now, message_id=message_id, conversation_id=conv.id
                ):
                    raise _Duplicate  # a concurrent delivery of the same event won
        except _Duplicate:
            return True
        return True

    async def _plain_reply(self, event: InboundEvent) -> bool | None:
        """``handle`` for a plain reply on PostgreSQL, in one database call (``bridge/store/agent_lines.py``),
        when its thread's conversation is known here and the visitor has met its author (no face to show);
        then what a unit of work does once committed. None: for the unit of work."""
        if self.core.db.is_sqlite or not isinstance(event, MessageReceived) or event.attachments:
            return None
        if event.author.role is not Role.AGENT:  # the call stores an agent's line
            return None
        cid = self.core.threads.get((event.endpoint, event.thread))
        if cid is None or not faces.met_before(cid, event.author):
            return None
        meaning = interpret(event.text, self.core.note_prefix)
        if not isinstance(meaning, Reply):
            return None
        async with self.core.statements() as work:
            html = steps.storable(event.html) if event.html else None
            draft = Draft(cid, event.author, steps.storable(meaning.text), work.now, event.endpoint, html=html)
            try:
                done = await agent_lines.store_agent_line(
                    work.conn, (event.endpoint, event.thread, event.remote_id), draft, Line.KIND, self.core.notify_as
                )
            except IntegrityError as exc:
                if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
                    raise
                return True  # the event recorded meanwhile (the unit of work's ``_Duplicate``): nothing stored
            if done.outcome == "other":
                self.core.threads.pop((event.endpoint, event.thread), None)  # a guess that no longer helps
                return None
            if done.outcome == "known":
                return True
            msg = draft.stored(done.seq)
            work.queued(cid, done.endpoints)
            work.signal(cid, NewMessage(msg.seq, msg))
            observe.agent_answered(work, done.site_id, event.endpoint, done.first_wait)
        return True

    async def typing(self, endpoint: str, thread: ThreadRef, author: Participant) -> None:
        async with self.core.db.read() as conn:
            cid = await q.conversation_for_thread(conn, endpoint, thread)
            conv = await q.get_conversation(conn, cid) if cid else None
        if conv is None or conv.status is not Status.OPEN:
            return
        await self.core.publish([(conv.id, Typing(author))], wake=False)

    @staticmethod
    async def _by_the_reply(work: Work, event: InboundEvent) -> tuple[Conversation, bool] | None:
        """For a change to a reply whose thread is no conversation's: the reply's conversation, locked, and
        whether the change is recorded already. A Matrix redaction names only the event it takes back, not
        its thread (``UNKNOWN_THREAD``), and no endpoint keeps a map of its own."""
        if not isinstance(event, MessageEdited | MessageDeleted):
            return None
        mid = await message_links.message_for_remote(work.conn, event.endpoint, event.original)
        msg = await q.get_message(work.conn, mid) if mid else None
        if msg is None:
            return None
        _, known = await q.thread_event(work.conn, event.endpoint, event.thread, event.remote_id)
        conv = await q.lock_conversation(work.conn, msg.conversation_id)
        return (conv, known) if conv is not None else None

    async def _dispatch(self, work: Work, conv: Conversation, event: InboundEvent) -> str | None:
        """What the event does; the id of the message it stored, if any (so its echo is known)."""
        if isinstance(event, ActionRequested):
            if event.action is Action.CLOSE:
                await steps.close(self.core, work, conv, by=event.actor)
            elif event.action is Action.CLAIM:
                await steps.claim(work, conv, event.actor, event.endpoint)
            return None
        if isinstance(event, Rejected):
            await work.notice(conv.id, event.endpoint, event.reason)
            return None
        if isinstance(event, MessageEdited | MessageDeleted):
            await self._agent_changes(work, conv, event)
            return None
        if not isinstance(event, MessageReceived):
            return None
        meaning = interpret(event.text, self.core.note_prefix)
        match meaning:
            case Note():
                return None
            case CommandCall():
                await run_command(self.core, work, conv, meaning, event)
                return None
            case Reply(text):
                return await steps.agent_says(
                    work, conv, event.author, text, event.endpoint, event.html, event.attachments
                )
            case _:
                assert_never(meaning)

    async def _agent_changes(self, work: Work, conv: Conversation, event: MessageEdited | MessageDeleted) -> None:
        """An edit or delete of a reply the visitor has: the visitor's copy follows (same seq), and so does
        the copy in the other team chat of a mirrored site. A note stays a note (it was never a message);
        a reply edited into a note or a command is taken back everywhere."""
        mid = await message_links.message_for_remote(work.conn, event.endpoint, event.original)
        if mid is None:
            return  # a note, a command, or something never relayed: nothing the visitor has
        msg = await q.get_message(work.conn, mid)
        if msg is None or msg.deleted or msg.conversation_id != conv.id:
            return
        if msg.origin != event.endpoint:
            return  # the bridge's copy of someone else's line (a moderator's redaction): theirs stays
        text = steps.storable(event.text) if isinstance(event, MessageEdited) else ""
        meaning = interpret(text, self.core.note_prefix) if isinstance(event, MessageEdited) else None
        if not isinstance(meaning, Reply):
            await q.delete_message(work.conn, mid, work.now)
            await attachments.forget_message_files(work.conn, mid)
            work.signal(conv.id, MessageChanged(mid, msg.seq, removed=True))
            await work.enqueue_all(conv.id, Deletion(msg, None), skip=event.endpoint)
            return
        html = steps.storable(event.html) if isinstance(event, MessageEdited) and event.html else None
        if text != msg.text or html != msg.html:
            await q.edit_message(work.conn, mid, text, work.now, html)
            work.signal(conv.id, MessageChanged(mid, msg.seq))
            await work.enqueue_all(conv.id, Edit(msg, None), skip=event.endpoint)

    async def read_by_team(self, endpoint: str, remote: RemoteId) -> None:
        """Someone in the team has read up to ``remote`` (a Matrix read receipt): the visitor's messages up
        to there are "Seen" in the widget."""
        async with self.core.work() as work:
            mid = await message_links.message_for_remote(work.conn, endpoint, remote)
            msg = await q.get_message(work.conn, mid) if mid else None
            if msg is None:
                return  # a notice, the root, something of no conversation's messages
            seq = await read_state.visitor_seq_up_to(work.conn, msg.conversation_id, msg.seq)
            if seq is not None and await read_state.team_read(work.conn, msg.conversation_id, seq):
                work.signal(msg.conversation_id, Recheck())
