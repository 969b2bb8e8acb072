"""The bridge's own lines to a visitor (CONTRACT §10): the greeting when nobody has answered yet, and the
visitor's place when many wait — each a ``system`` message in the visitor's language, named after the
site. (``!bye``'s closing is the agent's own line: ``bridge.team_commands``.)

Each runs inside the caller's unit of work, like ``bridge.steps``.
"""

from __future__ import annotations

from datetime import timedelta

from bridge import greeting
from bridge.live import NewMessage
from bridge.model import Conversation, Participant, Role
from bridge.store import conversations as q
from bridge.store import craft
from bridge.work import Core, Work

#: a first answer is estimated from the conversations of this last while
RECENT = timedelta(days=7)


async def say_to_visitor(core: Core, work: Work, conv: Conversation, text: str) -> None:
    """A ``system`` message to the visitor, named after the site. The team's threads are not told at
    once (a thread is for what people say); the transcript shows it where it came."""
    author = Participant(Role.SYSTEM, core.site_name(conv.site_id))
    msg = await q.insert_message(work.conn, conv.id, author, text, work.now, origin="bridge")
    work.signal(conv.id, NewMessage(msg.seq, msg))


async def greet(core: Core, work: Work, cid: str) -> bool:
    """The automatic greeting, once per conversation (also with several instances), and never after an
    agent has answered; True if this call sent it."""
    if not await craft.mark_greeted(work.conn, cid, work.now):
        return False
    conv = await q.get_conversation(work.conn, cid)
    site = core.sites.get(conv.site_id) if conv else None
    if conv is None or site is None:
        return False
    text = greeting.auto_greeting(site, conv.language, conv.visitor.name)
    await say_to_visitor(core, work, conv, text)
    return True


async def tell_place_in_line(core: Core, work: Work, conv: Conversation, seq: int) -> None:
    """At the visitor's first message (``seq``): when more conversations wait for a first answer than the
    site's ``MAX_WAITING``, the visitor's place and about how long it takes."""
    site = core.sites.get(conv.site_id)
    # ``conv`` as read before the message: a visitor already waiting wrote before (no query for it)
    if site is None or conv.kind != "chat" or conv.awaiting_reply_since is not None:
        return
    if await craft.visitor_wrote_before(work.conn, conv.id, seq):
        return
    ahead = await craft.waiting_before(work.conn, conv.site_id, conv.id)
    if ahead + 1 <= site.max_waiting:
        return
    median = await craft.recent_median_first_response(work.conn, conv.site_id, work.now - RECENT)
    await say_to_visitor(core, work, conv, greeting.queue_place(ahead + 1, median, conv.language))
