"""What the team desk answers (``bridge/team_desk.py``): one typed result per ``/sitechat`` subcommand, which
each team chat shows its own way (Slack: an ephemeral message with links to the threads)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bridge.insight import Stats
from bridge.model import ThreadRef


class Period(StrEnum):
    TODAY = "today"
    WEEK = "7d"
    MONTH = "30d"


@dataclass(frozen=True)
class SiteState:
    """A site as the widget shows it now: online, or offline — away (and who said so) or out of hours."""

    site_id: str
    name: str
    #: set away with ``/sitechat away`` (until ``back``)
    away: bool
    #: within the site's office hours (or it has none)
    in_hours: bool
    set_by: str | None = None
    set_at: datetime | None = None
    office_hours: str | None = None

    @property
    def online(self) -> bool:
        return self.in_hours and not self.away


@dataclass(frozen=True)
class OpenConversation:
    id: str
    site_id: str
    site_name: str
    topic_label: str | None
    visitor_name: str
    started_at: datetime
    #: since when the visitor waits for an answer (None: the last word was the team's)
    waiting_since: datetime | None
    claimed_by: str | None
    #: endpoint → the conversation's thread there (once its root is posted)
    threads: Mapping[str, ThreadRef] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenList:
    """``open``: the open conversations, oldest first (``more``: how many did not fit), and every site."""

    conversations: tuple[OpenConversation, ...]
    sites: tuple[SiteState, ...]
    now: datetime
    more: int = 0


@dataclass(frozen=True)
class StatsReport:
    """``stats``: the period's numbers (``bridge.insight`` defines each), of one site or of all."""

    period: Period
    #: the site's name, or "All sites"
    name: str
    stats: Stats


@dataclass(frozen=True)
class PresenceSet:
    """``away`` / ``back``: the sites changed, as the widget shows them now."""

    away: bool
    by: str
    sites: tuple[SiteState, ...]


@dataclass(frozen=True)
class DeskHelp:
    """``help``, or what was wrong with the command (``problem``) and the help after it."""

    text: str
    problem: str | None = None


DeskAnswer = OpenList | StatsReport | PresenceSet | DeskHelp
