"""A face, not a bot (CONTRACT §8): when a team member claims a conversation or first writes in it — an
agent, or someone brought in with ``!invite`` — the visitor sees "Alice joined the chat", once per person
per conversation.

In the widget's message JSON (CONTRACT §3's shape, nothing added) that line is a ``system`` message whose
``author`` is the person: ``{"role": "system", "name": "Alice", "avatar_url": "https://…/alice.png"}`` with
``text`` "Alice joined the chat" in the visitor's language — the role says it is the bridge speaking, the
author says about whom, with their photo. It is stored like every message (its own ``seq``, replayed on
reconnect, in the transcript), and stays with the visitor: the team's threads are not told.

A photo the browser cannot fetch itself (a Matrix avatar: authenticated media) is kept in the bridge's file
store and the participant's ``avatar_url`` is stored as ``attachment:{id}`` (:func:`stored_face`); the
widget server answers it as a signed link to the file, made when it answers (links expire).
"""

from __future__ import annotations

from bridge.live import NewMessage
from bridge.model import Conversation, Participant, Role, Status
from bridge.store import conversations as q
from bridge.store.faces import JOINED, has_appeared
from bridge.texts import text, translate
from bridge.work import Work

JOINED_THE_CHAT = text("joined", "{name} joined the chat")
#: an ``avatar_url`` that names a file in the bridge's store, not a URL
STORED_FACE = "attachment:"


#: (conversation, person) known to have appeared: once true, true for good (a conversation's id is never
#: reused), so a reply from someone the visitor has met costs no query; the oldest are forgotten first
_APPEARED: dict[tuple[str, str], None] = {}
_APPEARED_KEPT = 10_000


def _remember_appeared(key: tuple[str, str]) -> None:
    _APPEARED[key] = None
    if len(_APPEARED) > _APPEARED_KEPT:
        del _APPEARED[next(iter(_APPEARED))]


def _appearance(cid: str, person: Participant) -> tuple[str, str]:
    return cid, person.remote_id or f"name:{person.name}"


def met_before(cid: str, person: Participant) -> bool:
    """``person`` is known here to have appeared in conversation ``cid`` (no query: what ``show_face``
    found out before; False may only mean not known yet)."""
    return _appearance(cid, person) in _APPEARED


def stored_face(attachment_id: str) -> str:
    """The ``avatar_url`` of a photo kept in the bridge's file store."""
    return STORED_FACE + attachment_id


def face_attachment(avatar_url: str | None) -> str | None:
    """The file id of a photo kept in the bridge's store; None for a plain URL (or none)."""
    if avatar_url and avatar_url.startswith(STORED_FACE):
        return avatar_url.removeprefix(STORED_FACE) or None
    return None


def joined_text(name: str, language: str) -> str:
    return translate(JOINED_THE_CHAT, language).replace("{name}", name)


async def show_face(work: Work, conv: Conversation, person: Participant) -> None:
    """``person`` (a team member) is in the conversation now: the visitor sees them join, the first time.

    Runs in the caller's unit of work, before what the person says, so the visitor reads who joined first.
    """
    if person.role is not Role.AGENT or conv.status is not Status.OPEN or conv.kind != "chat":
        return
    # one announcement per person even when two of their replies are stored at once (PostgreSQL): the
    # caller's unit of work holds the conversation's lock (``TeamSide.handle`` takes it first)
    key = _appearance(conv.id, person)
    if key in _APPEARED:
        return
    if await has_appeared(work.conn, conv.id, person):
        _remember_appeared(key)
        return
    face = Participant(Role.SYSTEM, person.name, person.avatar_url, person.remote_id)
    msg = await q.insert_message(
        work.conn, conv.id, face, joined_text(person.name, conv.language), work.now, origin=JOINED
    )
    work.signal(conv.id, NewMessage(msg.seq, msg))
