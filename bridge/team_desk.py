"""The team desk (CONTRACT §8): what agents ask outside any conversation — ``/sitechat`` in Slack (``!sitechat``
in Matrix) — as use cases with typed answers (``bridge/desk_answers.py``); each team chat only shows them.

``open`` lists the open conversations (oldest first) with each site's state; ``stats [today|7d|30d] [SITE]``
is ``bridge.insight``'s computation over the period; ``away [SITE]`` / ``back [SITE]`` switch what the widget
shows (``GET /api/v1/sites/{site}`` → ``online: false``) until changed again — without a site, every site —
remembered in the database with who did it; anything else is the help, with what was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from bridge.desk_answers import (
    DeskAnswer,
    DeskHelp,
    OpenConversation,
    OpenList,
    Period,
    PresenceSet,
    SiteState,
    StatsReport,
)
from bridge.insight import site_zone
from bridge.model import Participant
from bridge.store import desk as store
from bridge.store.database import Database
from bridge.store.stats import compute_stats
from bridge.work import Core
from config.settings import SiteConfig

#: the most conversations ``open`` lists (the oldest; the rest are counted)
OPEN_LIMIT = 20
HELP = """{command} open — the open conversations: visitor, site, how long they have waited, who claimed them, \
a link to the thread
{command} stats [today|7d|30d] [SITE] — conversations, first response (median, 90th percentile, share \
within a minute), rating, missed
{command} away [SITE] — the widget shows SITE (without one: every site) offline, until {command} back
{command} back [SITE] — online again (within the office hours)
{command} help — this list
In a conversation's thread, a reply goes to the visitor; start it with {note} for an internal note the \
visitor never sees; !help there lists the thread's commands."""
_PERIODS: Mapping[str, timedelta] = {Period.WEEK: timedelta(days=7), Period.MONTH: timedelta(days=30)}


def desk_help(command: str, note_prefix: str, problem: str | None = None) -> DeskHelp:
    return DeskHelp(HELP.replace("{command}", command).replace("{note}", note_prefix), problem)


async def site_away(db: Database, site_id: str) -> bool:
    """Whether an agent set the site away (the widget then shows it offline)."""
    async with db.read() as conn:
        return await store.is_away(conn, site_id)


class TeamDesk:
    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def sites(self) -> Mapping[str, SiteConfig]:
        return self.core.sites

    async def answer(self, line: str, by: Participant, *, command: str = "/sitechat") -> DeskAnswer:
        """The answer to ``{command} {line}`` typed by ``by``."""
        word, *args = line.split() or ["help"]
        match word.lower():
            case "open":
                return await self.open_list()
            case "stats":
                return await self._stats(args, command)
            case "away" | "back":
                return await self._presence(args, word.lower() == "away", by, command)
            case "help":
                return self._help(command)
            case _:
                return self._help(command, f"There is no {command} {word}.")

    async def open_list(self) -> OpenList:
        now = self.core.clock()
        async with self.core.db.read() as conn:
            rows, total = await store.open_conversations(conn, OPEN_LIMIT)
            states = self._states(await store.presence(conn), self.sites, now)
        listed = tuple(
            OpenConversation(
                id=r.id,
                site_id=r.site_id,
                site_name=self.core.site_name(r.site_id),
                topic_label=self._topic_label(r.site_id, r.topic),
                visitor_name=r.visitor_name or "Visitor",
                started_at=r.created_at,
                waiting_since=r.awaiting_reply_since,
                claimed_by=r.claimed_by,
                threads=r.threads,
            )
            for r in rows
        )
        return OpenList(listed, states, now, more=total - len(listed))

    async def stats(self, period: Period, site: str | None = None) -> StatsReport:
        now = self.core.clock()
        zone = site_zone(self.sites, site)
        if period is Period.TODAY:
            start = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            start = now - _PERIODS[period]
        stats = await compute_stats(self.core.db, start, now, site=site, zone=zone)
        return StatsReport(period, self.core.site_name(site) if site else "All sites", stats)

    async def set_presence(self, sites: Sequence[str], away: bool, by: Participant) -> PresenceSet:
        async with self.core.work() as work:
            for site_id in sites:
                await store.set_presence(work.conn, site_id, away, by.name, work.now)
            states = self._states(await store.presence(work.conn), {s: self.sites[s] for s in sites}, work.now)
        return PresenceSet(away, by.name, states)

    async def _stats(self, args: Sequence[str], command: str) -> DeskAnswer:
        period, site = Period.TODAY, None
        for arg in args:
            if arg.lower() in set(Period):
                period = Period(arg.lower())
            elif arg.lower() in self.sites:
                site = arg.lower()
            else:
                return self._help(command, f"{command} stats takes today, 7d or 30d, and a site ({self._names()}).")
        return await self.stats(period, site)

    async def _presence(self, args: Sequence[str], away: bool, by: Participant, command: str) -> DeskAnswer:
        wanted = [a.lower() for a in args]
        unknown = [a for a in wanted if a not in self.sites]
        if unknown:
            return self._help(command, f"There is no site {unknown[0]!r}; the sites are {self._names()}.")
        return await self.set_presence(wanted or sorted(self.sites), away, by)

    def _help(self, command: str, problem: str | None = None) -> DeskHelp:
        return desk_help(command, self.core.note_prefix, problem)

    def _names(self) -> str:
        return ", ".join(sorted(self.sites)) or "none configured"

    def _topic_label(self, site_id: str, topic: str | None) -> str | None:
        site = self.sites.get(site_id)
        found = site.topics.get(topic) if site and topic else None
        return found.label if found else None

    @staticmethod
    def _states(
        presence: Mapping[str, store.Presence], sites: Mapping[str, SiteConfig], now: datetime
    ) -> tuple[SiteState, ...]:
        states = []
        for site_id in sorted(sites):
            site, said = sites[site_id], presence.get(site_id)
            hours = site.office_hours
            states.append(
                SiteState(
                    site_id,
                    site.name,
                    away=bool(said and said.away),
                    in_hours=hours is None or hours.is_open(now),
                    set_by=said.set_by if said else None,
                    set_at=said.set_at if said else None,
                    office_hours=str(hours) if hours else None,
                )
            )
        return tuple(states)
