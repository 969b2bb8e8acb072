"""What the core tells an observer at the moment things happen — the metrics' source.

The core imports no metrics library: the composition root hands in an ``Observer`` (Prometheus, in
``widget_server/metrics.py``); without one nothing is counted. The use cases register what they saw
on their unit of work (``Work.observe``) and the observer hears it only once the transaction has
committed, so a change that rolls back (a duplicate event, a lost race) is never counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select

from bridge.store.stats import first_response_of
from bridge.store.tables import conversation

if TYPE_CHECKING:
    from bridge.model import Conversation, Message
    from bridge.work import Work


log = logging.getLogger(__name__)


class Observer(Protocol):
    def conversation_started(self, site: str, topic: str | None) -> None:
        """A visitor started a chat (not an offline message)."""

    def message_to_team(self, endpoint: str) -> None:
        """A visitor's message was stored for one team-chat endpoint (once per endpoint it goes to)."""

    def message_to_visitor(self, endpoint: str) -> None:
        """A team member's reply, written on ``endpoint``, was stored for the visitor."""

    def delivered(self, endpoint: str, seconds: float) -> None:
        """A delivery was posted ``seconds`` after it was accepted into the outbox."""

    def first_response(self, site: str, seconds: float) -> None:
        """A conversation's first agent reply came ``seconds`` after the visitor's first message."""

    def rated(self, site: str, score: int) -> None:
        """A visitor rated a conversation."""


class NoObserver:
    """Counts nothing (tests, tools, and any runtime without metrics)."""

    def conversation_started(self, site: str, topic: str | None) -> None:
        pass

    def message_to_team(self, endpoint: str) -> None:
        pass

    def message_to_visitor(self, endpoint: str) -> None:
        pass

    def delivered(self, endpoint: str, seconds: float) -> None:
        pass

    def first_response(self, site: str, seconds: float) -> None:
        pass

    def rated(self, site: str, score: int) -> None:
        pass


NO_OBSERVER: Observer = NoObserver()

#: something a unit of work saw, told to the observer once the work has committed
Observation = Callable[[Observer], None]


def tell(observer: Observer, observations: list[Observation]) -> None:
    """What a committed unit of work saw. A failing observer costs a log line, never the use case
    (whose change is committed already)."""
    for observation in observations:
        try:
            observation(observer)
        except Exception:
            log.exception("observer: could not count what happened")


def started(work: Work, site: str, topic: str | None) -> None:
    work.observe(lambda o: o.conversation_started(site, topic))


async def visitor_said(work: Work, cid: str) -> None:
    """A visitor's message, stored for every team chat the conversation has a thread on (the lanes its
    line was just queued on: no need to read the threads again)."""
    endpoints = sorted(endpoint for lane, endpoint in work.lanes if lane == cid)

    def count(observer: Observer) -> None:
        for endpoint in endpoints:
            observer.message_to_team(endpoint)

    work.observe(count)


async def agent_replied(work: Work, conv: Conversation, msg: Message, origin: str) -> None:
    """An agent's reply for the visitor; if it is the conversation's first response, its wait too."""
    first_wait = None
    # ``conv`` as read before the reply: nobody waiting means an agent answered before
    if conv.awaiting_reply_since is not None:
        first = await first_response_of(work.conn, conv.id)
        if first is not None and first.agent_seq == msg.seq:
            first_wait = first.seconds
    agent_answered(work, conv.site_id, origin, first_wait)


def agent_answered(work: Work, site: str, origin: str, first_wait: float | None) -> None:
    """``agent_replied`` once it is known whether the reply is the conversation's first response
    (``first_wait``: the seconds the visitor waited for it; a database call finds that out itself)."""
    work.observe(lambda o: o.message_to_visitor(origin))
    if first_wait is not None:
        work.observe(lambda o: o.first_response(site, first_wait))


async def rated(work: Work, cid: str, score: int) -> None:
    site = (await work.conn.execute(select(conversation.c.site_id).where(conversation.c.id == cid))).scalar_one()
    work.observe(lambda o: o.rated(site, score))
