"""The team's side of a conversation: what Slack and Matrix tell the core (replies, edits, deletions,
buttons, typing), each event stored once however often it is delivered."""

from __future__ import annotations

from typing import assert_never

from bridge import steps
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
from bridge.live import MessageChanged, Typing
from bridge.model import Conversation, Participant, Status, ThreadRef
from bridge.store import conversations as q
from bridge.team_commands import run_command
from bridge.work import Core, Work


class _Duplicate(Exception):
    """An inbound event seen before: roll back, do nothing."""


class TeamSide:
    core: Core

    async def handle(self, event: InboundEvent) -> bool:
        """An event from a team chat, stored once however often it is delivered.

        False when its thread is no conversation the store knows (yet: a root whose post is still
        in flight is not known until the answer is recorded — the endpoint may ask for a retry).
        """
        try:
            async with self.core.work() as work:
                cid = await q.conversation_for_thread(work.conn, event.endpoint, event.thread)
                if cid is None:
                    return False
                if await q.is_known_remote(work.conn, event.endpoint, event.remote_id):
                    return True
                conv = await q.get_conversation(work.conn, cid)
                assert conv is not None
                message_id = await self._dispatch(work, conv, event)
                if not await q.remember_remote(
                    work.conn, event.endpoint, event.remote_id, work.now, message_id=message_id, conversation_id=cid
                ):
                    raise _Duplicate  # a concurrent delivery of the same event won
        except _Duplicate:
            return True
        return True

    async def typing(self, endpoint: str, thread: ThreadRef, author: Participant) -> None:
        async with self.core.db.read() as conn:
            cid = await q.conversation_for_thread(conn, endpoint, thread)
            conv = await q.get_conversation(conn, cid) if cid else None
        if conv is None or conv.status is not Status.OPEN:
            return
        await self.core.publish([(conv.id, Typing(author))], wake=False)

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
                return await steps.agent_says(work, conv, event.author, text, event.endpoint)
            case _:
                assert_never(meaning)

    async def _agent_changes(self, work: Work, conv: Conversation, event: MessageEdited | MessageDeleted) -> None:
        """An edit or delete of a reply the visitor has: the visitor's copy follows (same seq)."""
        mid = await q.message_for_remote(work.conn, event.endpoint, event.original)
        if mid is None:
            return  # a note, a command, or something never relayed: nothing the visitor has
        msg = await q.get_message(work.conn, mid)
        if msg is None or msg.deleted:
            return
        # an edit that turns a reply into a note or a command takes it back from the visitor
        text = steps.storable(event.text) if isinstance(event, MessageEdited) else ""
        if isinstance(event, MessageDeleted) or not isinstance(interpret(text, self.core.note_prefix), Reply):
            await q.delete_message(work.conn, mid, work.now)
            work.signal(conv.id, MessageChanged(mid, msg.seq, removed=True))
        elif text != msg.text:
            await q.edit_message(work.conn, mid, text, work.now)
            work.signal(conv.id, MessageChanged(mid, msg.seq))
