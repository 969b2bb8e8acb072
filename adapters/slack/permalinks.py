"""Links people open in Slack to a thread's root (``chat.getPermalink``): for ``/sitechat open`` and a
returning visitor's last chat on the root. A message's permalink never changes, so each is asked once."""

from __future__ import annotations

import logging

from adapters.slack.events import split_ref
from adapters.slack.failures import describe
from adapters.slack.session import SlackSession
from bridge.model import ThreadRef

log = logging.getLogger(__name__)


class Permalinks:
    def __init__(self, session: SlackSession) -> None:
        self._session = session
        self._known: dict[str, str] = {}

    async def of(self, thread: ThreadRef) -> str:
        """The thread's root as a link; the archive link when Slack will not say (a link is a courtesy: it
        opens the same message in the workspace one is signed in to)."""
        known = self._known.get(thread)
        if known is not None:
            return known
        channel, ts = split_ref(thread)
        assert self._session.client is not None, "a link before start()"
        try:
            answer = await self._session.client.chat_getPermalink(channel=channel, message_ts=ts)
            link = str(answer["permalink"])
        except Exception as exc:
            log.warning("Slack chat.getPermalink %s failed (%s); linking the archive", thread, describe(exc))
            return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"
        self._known[thread] = link
        return link
