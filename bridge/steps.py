"""State changes that several use cases share: close, claim, an agent's line. Each runs inside the
caller's unit of work, so the change and the deliveries it causes commit together."""

from __future__ import annotations

from collections.abc import Sequence

from bridge import faces, observe, webhooks
from bridge.follow_up import arm_needed
from bridge.live import NewMessage, RatingRequested, StatusChanged
from bridge.model import Attachment, Conversation, Participant, Status
from bridge.outbound import Line, Notice, RootState, Transcript
from bridge.store import attachments, lines
from bridge.store import conversations as q
from bridge.store.new_messages import Draft
from bridge.transcript import render_transcript
from bridge.work import Core, Work


async def close(
    core: Core, work: Work, conv: Conversation, *, by: Participant | None, reason: str | None = None
) -> bool:
    """Close once (True if this call closed it): transcript into every thread, the visitor asked to rate."""
    if not await q.close_if_open(work.conn, conv.id, work.now):
        return False
    closed_by = reason or (f"by {by.name}" if by else "by the visitor")
    messages = await q.messages_after(work.conn, conv.id, 0, limit=100_000)
    transcript = render_transcript(conv, messages, core.site_name(conv.site_id), closed_by)
    # queued behind every pending message of the lane, so the thread gets them first
    await work.enqueue_all(conv.id, Transcript(transcript))
    await work.enqueue_all(conv.id, RootState())
    work.signal(conv.id, StatusChanged(Status.CLOSED))
    work.signal(conv.id, RatingRequested())
    await webhooks.tell(core, work, conv.id, webhooks.CLOSED)
    return True


async def claim(work: Work, conv: Conversation, actor: Participant, origin: str) -> None:
    if conv.status is not Status.OPEN:
        await work.notice(conv.id, origin, "This conversation is closed.")
        return
    if conv.claimed_by == actor.name:
        return
    await q.set_fields(work.conn, conv.id, claimed_by=actor.name)
    await faces.show_face(work, conv, actor)
    await work.enqueue_all(conv.id, Notice(f"Claimed by {actor.name}"))
    await work.enqueue_all(conv.id, RootState())


async def agent_says(
    work: Work,
    conv: Conversation,
    author: Participant,
    text: str,
    origin: str,
    html: str | None = None,
    files: Sequence[Attachment] = (),
) -> str | None:
    """A team member's line for the visitor (and the other team chat); the id of the stored message.
    ``html``: its formatting, the sanitized subset the endpoint made (CONTRACT §7)."""
    if conv.status is not Status.OPEN:
        await work.notice(conv.id, origin, "This conversation is closed: the visitor will not see that.")
        return None
    await faces.show_face(work, conv, author)
    draft = Draft(
        conv.id, author, storable(text), work.now, origin, html=storable(html) if html else None, attachments=files
    )
    # nobody waits any more; unseen for a while, it goes to the visitor by email (bridge/follow_up.py)
    touch = q.Touch.AGENT_FOLLOW_UP if arm_needed(conv) else q.Touch.AGENT
    # and to the other team chat of a mirrored site
    msg, queued = await lines.insert_line(work.conn, draft, Line.KIND, touch=touch, skip=origin)
    await attachments.link(work.conn, [f.id for f in files], conv.id, msg.id)
    work.queued(conv.id, queued)
    await observe.agent_replied(work, conv, msg, origin)
    work.signal(conv.id, NewMessage(msg.seq, msg))
    return msg.id


def storable(text: str) -> str:
    """Team-chat text as the store takes it: valid UTF-8, no NUL (a retry storm over one bad byte helps nobody)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
