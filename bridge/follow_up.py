"""The visitor has left (CONTRACT §8): an agent's reply the visitor has not seen within
``SITECHAT_FOLLOW_UP_MINUTES`` goes to them by email — when they gave an address — with a link that
reopens the chat in the widget and, with ``SITECHAT_INBOUND_DOMAIN``, a ``Reply-To`` of the conversation's
own (``bridge/mail_links.py``); a reply to it comes back as the visitor's message (``bridge/mail_in.py``).

**Once per wait.** The first agent reply after nothing was pending arms the conversation (``arm``, called by
``steps.agent_says``); ``FollowUps.fire_due`` runs on every round of the timers and takes each armed
conversation once its reply is old enough, by a conditional UPDATE, so with several instances one mail
goes out. The mail carries every reply the visitor has not seen since the last mail. After it, more replies
bring no more mail until the visitor has been back (written, in the widget or by mail, or seen a message):
one mail per time they left, not one per reply. A reply unseen for more than ``STALE`` when it is found
(the service was down, or follow-ups were off) is not mailed: the visitor has long moved on.

**Resume.** The mail's link carries a ticket, not the token (``bridge/mail_links.py`` says why): the widget
trades it for a fresh token (``resume``), which replaces the old one.

The mail speaks the visitor's language (``bridge/texts``) and goes through the outbox like a transcript
(``FollowUpMail`` on the ``email`` endpoint), so an SMTP outage delays it and never loses it.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from bridge.mail_links import RESUME_DAYS, reply_address, resume_link, resume_ticket, ticket_conversation, ticket_valid
from bridge.model import Conversation, Message
from bridge.outbound import FollowUpMail
from bridge.shared_key import SharedKey
from bridge.store import conversations as q
from bridge.store import follow_up as store
from bridge.texts import text, translate
from bridge.work import Core, hash_token

SUBJECT = text("follow_up.subject", "New reply from {site}")
INTRO = text("follow_up.intro", "You have a new reply in your chat with {site}:")
CONTINUE = text("follow_up.continue", "Continue the chat: {link}")
ANSWER = text("follow_up.answer", "Or simply answer this email: your reply goes straight to the team.")
#: a reply found unseen this long after it was written is not mailed any more
STALE = timedelta(days=1)


class MailKeys(SharedKey):
    """The key follow-up links and reply addresses are signed with (one for every instance)."""

    def __init__(self, core: Core) -> None:
        super().__init__(core.db, store.LINK_KEY, core.clock)


def arm_needed(conv: Conversation) -> bool:
    """Only a visitor who gave an address can be followed up."""
    return bool(conv.visitor.email) and conv.kind == "chat"


def render_text(site: str, language: str, replies: Sequence[Message], link: str | None, answerable: bool) -> str:
    """The mail's plain text: the replies, then how to go on."""
    lines = [translate(INTRO, language).format(site=site), ""]
    lines += [f"{m.author.name}: {m.text}" for m in replies]
    lines.append("")
    if link:
        lines.append(translate(CONTINUE, language).format(link=link))
    if answerable:
        lines.append(translate(ANSWER, language))
    return "\n".join(lines).rstrip() + "\n"


def render_html(site: str, language: str, replies: Sequence[Message], link: str | None, answerable: bool) -> str:
    """The same as HTML: every word people wrote escaped, the link a real one."""
    e = html.escape
    parts = [f"<p>{e(translate(INTRO, language).format(site=site))}</p>"]
    parts += [f"<p><strong>{e(m.author.name)}</strong><br>{e(m.text).replace(chr(10), '<br>')}</p>" for m in replies]
    if link:
        anchor = f'<a href="{e(link)}">{e(link)}</a>'
        parts.append(f"<p>{e(translate(CONTINUE, language)).replace('{link}', anchor)}</p>")
    if answerable:
        parts.append(f"<p>{e(translate(ANSWER, language))}</p>")
    return '<!doctype html><html><body style="font-family:sans-serif">' + "".join(parts) + "</body></html>"


class FollowUps:
    """The follow-up mails of every conversation, fired by ``bridge.lifecycle.Timers``."""

    def __init__(self, core: Core, keys: MailKeys, *, after: timedelta, inbound_domain: str | None) -> None:
        self.core = core
        self.keys = keys
        self.after = after
        self.inbound_domain = inbound_domain

    async def fire_due(self, now: datetime) -> None:
        async with self.core.db.read() as conn:
            due = await store.due(conn, now - self.after)
        for cid in due:
            await self._follow_up(cid, now)

    async def _follow_up(self, cid: str, now: datetime) -> None:
        key = await self.keys.get()
        async with self.core.work() as work:
            last = await store.take(work.conn, cid, now - self.after)
            if last is None:
                return  # another instance took it
            conv = await q.get_conversation(work.conn, cid)
            if conv is None or not conv.visitor.email or not await store.back_since(work.conn, cid, last):
                return  # this wait had its mail: no more until the visitor is back
            replies = [m for m in await store.unseen_replies(work.conn, cid, last.seq) if now - m.created_at < STALE]
            token_hash = await q.token_hash_of(work.conn, cid)
            if not replies or token_hash is None:
                return
            site = self.core.sites.get(conv.site_id)
            expires = int(work.now.timestamp()) + RESUME_DAYS * 86400
            ticket = resume_ticket(key, cid, token_hash, expires)
            page = conv.current_page.url if conv.current_page else None
            link = resume_link(page, site.origins if site else [], ticket)
            reply_to = reply_address(key, cid, self.inbound_domain) if self.inbound_domain else None
            name, language = self.core.site_name(conv.site_id), conv.language
            mail = FollowUpMail(
                to=conv.visitor.email,
                subject=translate(SUBJECT, language).format(site=name),
                text=render_text(name, language, replies, link, reply_to is not None),
                html=render_html(name, language, replies, link, reply_to is not None),
                reply_to=reply_to,
            )
            await work.enqueue(cid, "email", mail)
            await store.mailed(work.conn, cid, work.now, replies[-1].seq)


async def resume(core: Core, keys: MailKeys, site_id: str, ticket: str) -> tuple[Conversation, str] | None:
    """Trade a follow-up mail's ticket for a new token of its conversation: (conversation, token), or None for
    a ticket that is not good (altered, expired, used, another site's). The new token replaces the old one."""
    cid = ticket_conversation(ticket)
    if cid is None:
        return None
    key = await keys.get()
    token = secrets.token_urlsafe(32)
    async with core.work() as work:
        conv = await q.lock_conversation(work.conn, cid)
        stored = await q.token_hash_of(work.conn, cid) if conv is not None else None
        if conv is None or stored is None or conv.site_id != site_id:
            return None
        if not ticket_valid(key, ticket, stored, work.now.timestamp()):
            return None
        await q.set_fields(work.conn, cid, token_hash=hash_token(token))
    return conv, token
