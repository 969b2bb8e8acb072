"""``!invite USER`` in Slack: who USER is, and the thread reply that mentions them so Slack notifies them.

USER is as the agent typed it: a mention (``<@U…>``, which the inbound listener keeps as Slack sent it) or a
name (``Bob``, ``@bob``), looked up among the workspace's people (``users.list``: display name, full name or
handle, ignoring case; deactivated accounts and bots left out).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.slack.format import escape
from adapters.slack.session import SlackSession

MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
#: people asked for per ``users.list`` page, and pages at most (a big workspace is looked through once)
PAGE = 200
PAGES = 50


def mentioned(who: str) -> list[str]:
    """The member ids mentioned in ``who``, in order, once each."""
    return list(dict.fromkeys(MENTION.findall(who)))


def names_of(user: Mapping[str, Any]) -> set[str]:
    profile = user.get("profile") or {}
    found = (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name"))
    return {n.strip().casefold() for n in found if isinstance(n, str) and n.strip()}


def invitation(ids: list[str], by: str) -> str:
    """The post (mrkdwn): real mentions first, then who asks — escaped, as everything people typed."""
    return " ".join(f"<@{uid}>" for uid in ids) + f" {escape(by)} asks you to join this chat."


class People:
    def __init__(self, session: SlackSession) -> None:
        self._session = session

    async def resolve(self, who: str) -> list[str] | str:
        """The member ids ``who`` means, or why there are none (a line for the thread, plain)."""
        ids = mentioned(who)
        if ids:
            return ids
        name = who.strip().removeprefix("@").strip()
        found = await self.named(name)
        if len(found) == 1:
            return found
        how = "mention them with @ in !invite, e.g. !invite @Bob"
        if found:
            return f"{len(found)} people are called “{name}”: {how}."
        return f"Nobody called “{name}” in this workspace: {how}."

    async def named(self, name: str) -> list[str]:
        """Active people (not bots) whose display name, full name or handle is ``name``, ignoring case."""
        wanted = name.casefold()
        client = self._session.client
        assert client is not None
        found: list[str] = []
        cursor: str | None = None
        for _ in range(PAGES):
            page = await client.users_list(limit=PAGE, cursor=cursor)
            for user in page.get("members") or []:
                if user.get("deleted") or user.get("is_bot") or user.get("id") == "USLACKBOT":
                    continue
                if wanted in names_of(user):
                    found.append(str(user["id"]))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return found


def attention(mention: str) -> str:
    """``SITECHAT_REMINDER_MENTION`` as Slack's mention: ``here`` → ``<!here>``, ``channel`` → ``<!channel>``, a
    member ``U…`` → ``<@U…>``, a user group ``S…`` → ``<!subteam^S…>``, ``none`` → nothing."""
    if mention in ("here", "channel"):
        return f"<!{mention}>"
    if re.fullmatch(r"[UW][A-Z0-9]+", mention):
        return f"<@{mention}>"
    if re.fullmatch(r"S[A-Z0-9]+", mention):
        return f"<!subteam^{mention}>"
    return ""


def reminder_post(text: str, mention: str) -> str:
    """A reminder as posted: the one real mention, then the bridge's text escaped (it names the visitor)."""
    return " ".join(part for part in (attention(mention), escape(text)) if part)
