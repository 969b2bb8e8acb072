"""The two places where the bridge notifies people in Matrix on purpose (CONTRACT §8): ``!invite`` (the
person is invited to the room when they are not in it, and mentioned in the thread) and reminders
(``@room``, only when the bot's power level allows room notifications). Everywhere else every event
carries an empty ``m.mentions``.

Both are ``m.text``, not ``m.notice``: the push rule ``.m.rule.suppress_notices`` comes before the
mention rules, so a notice notifies nobody, mention or not. ``m.mentions`` says exactly who is meant
(with it present, clients' legacy "body contains my name" rules are off, so the visitor's name in a
reminder pings nobody).

The pure parts (who a command names, the contents, what the power levels allow) are tested without a
homeserver; :class:`Mentions` asks the homeserver what it must know (membership, power levels).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

import nio

from adapters.matrix.format import notice_content
from adapters.matrix.responses import describe_response, is_transient

log = logging.getLogger(__name__)

#: a Matrix user id as people type it (``@bob:example.org``, ``@bob:example.org:8448``)
_USER_ID = re.compile(r"@[A-Za-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d+)?")
#: a user pill in a formatted body, as Element writes it (the id may be percent-encoded)
_PILL = re.compile(r"""href=["']https://matrix\.to/#/((?:@|%40)[^"'?/]+)["']""", re.I)
#: Matrix's default power level needed for ``@room`` (``notifications.room``)
ROOM_NOTIFICATION_LEVEL = 50
ASKS = "asks you to join this chat."


def user_ids(text: str) -> list[str]:
    """The Matrix user ids in ``text``, in order, each once."""
    return list(dict.fromkeys(_USER_ID.findall(text)))


def user_link(user_id: str) -> str:
    """The link that makes a pill of a person (``https://matrix.to/#/@bob:example.org``)."""
    return f"https://matrix.to/#/{quote(user_id, safe='@:')}"


def invite_text(text: str, content: Mapping[str, Any]) -> str:
    """A staff member's ``!invite`` as the core should read it: a person picked from the composer is a
    pill whose text is only their display name, so the pills' user ids stand in for the names. Any other
    message is left as it is."""
    if not text.lower().startswith("!invite"):
        return text
    formatted = content.get("formatted_body")
    ids = [unquote(found) for found in _PILL.findall(formatted)] if isinstance(formatted, str) else []
    ids = [uid for uid in dict.fromkeys(ids) if _USER_ID.fullmatch(uid)]
    return f"!invite {' '.join(ids)}" if ids else text


def invitation_content(people: Sequence[tuple[str, str]], by: str) -> dict[str, Any]:
    """The thread line that mentions ``people`` ((user id, name) each): a pill per person in the
    ``formatted_body``, their ids in ``body`` and in ``m.mentions``, then who asks."""
    body = " ".join(uid for uid, _ in people) + f" {by} {ASKS}"
    pills = " ".join(f'<a href="{html.escape(user_link(uid))}">{html.escape(name)}</a>' for uid, name in people)
    return {
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": f"{pills} {html.escape(by)} {ASKS}",
        "m.mentions": {"user_ids": [uid for uid, _ in people]},
    }


def nobody_to_invite(who: str) -> str:
    return f"Nobody to invite in “{who}”: write them as @user:server, e.g. !invite @bob:example.org."


def _state_event(state: Sequence[Mapping[str, Any]], event_type: str) -> Mapping[str, Any] | None:
    for event in state:
        if event.get("type") == event_type and event.get("state_key") == "" and isinstance(event.get("content"), dict):
            return event
    return None


def _level(value: Any, default: int) -> int:
    try:
        return int(value)  # old rooms may hold levels as strings of digits
    except (TypeError, ValueError):
        return default


def _version(create: Mapping[str, Any]) -> int:
    version = str(create["content"].get("room_version", "1"))
    return int(version) if version.isdigit() else 0


def room_mention_allowed(state: Sequence[Mapping[str, Any]], user_id: str) -> bool:
    """Whether ``user_id`` may notify the whole room (``@room``), from the room's state events: its
    ``m.room.power_levels`` (``notifications.room``, 50 unless set), and its ``m.room.create`` — from room
    version 12 on the creators (the sender and ``additional_creators``) stand above every power level and
    are never listed in it; without power levels the creator has 100 and everyone else 0."""
    create = _state_event(state, "m.room.create")
    levels = _state_event(state, "m.room.power_levels")
    if create is not None and _version(create) >= 12:
        extra = create["content"].get("additional_creators")
        if user_id == create.get("sender") or (isinstance(extra, list) and user_id in extra):
            return True
    if levels is None:
        creator = create["content"].get("creator", create.get("sender")) if create is not None else None
        return user_id == creator  # 100, above the default 50
    content = levels["content"]
    users = content.get("users")
    users = users if isinstance(users, Mapping) else {}
    mine = _level(users.get(user_id, content.get("users_default", 0)), 0)
    notifications = content.get("notifications")
    notifications = notifications if isinstance(notifications, Mapping) else {}
    return mine >= _level(notifications.get("room", ROOM_NOTIFICATION_LEVEL), ROOM_NOTIFICATION_LEVEL)


def with_room_mention(content: dict[str, Any]) -> dict[str, Any]:
    """A notice turned into a line that notifies the room: ``@room`` first, ``m.mentions.room``, and
    ``m.text`` (a notice notifies nobody)."""
    return {**content, "msgtype": "m.text", "body": f"@room {content['body']}", "m.mentions": {"room": True}}


def reminder_mentions_room(mention: str) -> bool:
    """``SITECHAT_REMINDER_MENTION=none`` keeps reminders quiet in Matrix too; any other value (Slack's
    ``here``, ``channel``, a user or group) means "call the team": ``@room`` where the bot may."""
    return mention.strip().lower() != "none"


class InviteRefused(Exception):
    """The homeserver had a bad moment (rate limit, 5xx): the delivery is tried again."""

    def __init__(self, response: Any) -> None:
        super().__init__(describe_response(response))
        self.response = response


class Mentions:
    """Asks the homeserver what a mention needs: who is in the room, who may ``@room``."""

    def __init__(self, user_id: str) -> None:
        self._user_id = user_id

    async def may_mention_room(self, client: nio.AsyncClient, room: str) -> bool:
        """The room's state as the homeserver has it now (an admin may have changed the power levels)."""
        response = await client.room_get_state(room)
        if not isinstance(response, nio.RoomGetStateResponse):
            log.info("Matrix: cannot read the state of %s (%s); no @room", room, describe_response(response))
            return False
        return room_mention_allowed(response.events, self._user_id)

    async def invitation(self, client: nio.AsyncClient, room: str, who: str, by: str) -> list[dict[str, Any]]:
        """``!invite``: each person named is invited unless they are in the room (or invited) already;
        the contents to post in the thread — the mention, and what went wrong, if anything."""
        wanted = user_ids(who) or self._members_called(client, room, who)
        if not wanted:
            return [notice_content(nobody_to_invite(who))]
        people: list[tuple[str, str]] = []
        problems: list[str] = []
        for uid in wanted:
            problem = await self._bring_in(client, room, uid)
            if problem is None:
                people.append((uid, await self._name_of(client, room, uid)))
            else:
                problems.append(problem)
        contents = [invitation_content(people, by)] if people else []
        return contents + [notice_content(p) for p in problems]

    async def _bring_in(self, client: nio.AsyncClient, room: str, uid: str) -> str | None:
        """Invite ``uid`` unless they are in the room or invited already; why not, when it did not work."""
        state = await client.room_get_state_event(room, "m.room.member", uid)
        if isinstance(state, nio.RoomGetStateEventResponse) and state.content.get("membership") in ("join", "invite"):
            return None
        invited = await client.room_invite(room, uid)
        if isinstance(invited, nio.RoomInviteResponse):
            log.info("Matrix: invited %s to %s", uid, room)
            return None
        if is_transient(invited):
            raise InviteRefused(invited)
        return f"Could not invite {uid} to this room ({describe_response(invited)})."

    @staticmethod
    def _members_called(client: nio.AsyncClient, room: str, who: str) -> list[str]:
        """The one member whose display name is ``who`` (a name typed without the composer's pill)."""
        name = who.strip().removeprefix("@").strip().casefold()
        known = client.rooms.get(room)
        if not name or known is None:
            return []
        found = [uid for uid, user in known.users.items() if (user.display_name or "").casefold() == name]
        return found if len(found) == 1 else []

    @staticmethod
    async def _name_of(client: nio.AsyncClient, room: str, uid: str) -> str:
        """The person's display name for the pill: the room's, else their profile's, else the id."""
        known = client.rooms.get(room)
        member = known.users.get(uid) if known is not None else None
        if member is not None and member.display_name:
            return str(member.display_name)
        profile = await client.get_displayname(uid)
        if isinstance(profile, nio.ProfileGetDisplayNameResponse) and profile.displayname:
            return str(profile.displayname)
        return uid
