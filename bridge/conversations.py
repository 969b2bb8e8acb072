"""The core's use cases in one object: the visitor's side and the team's side of every conversation.

Each use case is one unit of work (``bridge.work``): the change and the deliveries it causes commit
together; only then are the widget sockets signalled and the delivery workers woken.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime

from bridge.live import LiveHub
from bridge.store.database import Database
from bridge.team_side import TeamSide
from bridge.visitor_side import (
    ConversationClosed,
    ForeignAttachment,
    LimitReached,
    NewConversation,
    VisitorSide,
    WrongState,
)
from bridge.work import Announce, Core, utcnow
from config.settings import SiteConfig

__all__ = [
    "ConversationClosed",
    "Conversations",
    "ForeignAttachment",
    "LimitReached",
    "NewConversation",
    "WrongState",
    "utcnow",
]


class Conversations(VisitorSide, TeamSide):
    """The widget server talks to the visitor's side; endpoints hand the team's side their events (``Inbox``)."""

    def __init__(
        self,
        db: Database,
        sites: Mapping[str, SiteConfig],
        endpoints: Collection[str],
        live: LiveHub,
        *,
        wake_deliveries: Callable[[], None] = lambda: None,
        note_prefix: str = "//",
        snippets: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        announce: Announce | None = None,
    ) -> None:
        self.core = Core(
            db,
            sites,
            frozenset(endpoints),
            live,
            wake_deliveries=wake_deliveries,
            note_prefix=note_prefix,
            snippets=dict(snippets or {}),
            clock=clock,
            announce=announce,
        )

    @property
    def db(self) -> Database:
        return self.core.db

    def reachable_destinations(self, site: SiteConfig, topic: str | None) -> dict[str, str]:
        return self.core.reachable_destinations(site, topic)
