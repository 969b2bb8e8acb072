"""The report into the team chats (CONTRACT §9): ``sitechat report --post`` now, and the weekly post of
``SITECHAT_REPORT_SCHEDULE``, once across every instance. Each site's report goes to its own channel and
room, with its numbers as text beside the picture; the outbox delivers it (``bridge.report_posts``)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from pathlib import Path

from bridge.files import Files
from bridge.insight import site_zone
from bridge.insight_text import summary
from bridge.report_posts import already_posted, once_key, post_report
from bridge.store.database import connection_lost
from bridge.store.stats import compute_stats
from config.schedule import Weekly
from config.settings import Settings, SiteConfig

log = logging.getLogger(__name__)
#: a weekly moment missed by more than this (every instance was down) is skipped, not posted late
LATE = timedelta(hours=24)
#: the text beside the picture is cut to what every team chat shows in one message
MOST_TEXT = 3000


def destinations(site: SiteConfig, endpoints: Collection[str]) -> dict[str, str]:
    """Where a site's report goes: its own channel and room, else its first topic's (among ``endpoints``)."""
    for topic in (None, *site.topics):
        found = {e: d for e, d in site.destinations(topic).items() if e in endpoints}
        if found:
            return found
    return {}


def team_chats(settings: Settings) -> set[str]:
    """The team chats the settings turn on (a report goes nowhere else)."""
    return {name for name in ("slack", "matrix") if getattr(settings, name) is not None}


def picture(stats_name: str, draw: Callable[[Path], object]) -> bytes:
    """Draw into a temporary file and give its bytes (matplotlib writes files; the outbox keeps bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{stats_name}.png"
        draw(path)
        return path.read_bytes()


async def post_site(
    files: Files, settings: Settings, site_id: str, start: datetime, end: datetime, *, key: str | None = None
) -> tuple[bool, dict[str, str]]:
    """Compute, draw and queue one site's report for ``start``–``end``: (queued, where it goes)."""
    from sitechat.insight.chart import render  # matplotlib only when a picture is drawn

    site = settings.sites[site_id]
    where = destinations(site, team_chats(settings))
    if not where:
        return False, where
    stats = await compute_stats(files.db, start, end, site=site_id, zone=site_zone(settings.sites, site_id))
    data = await asyncio.to_thread(picture, site_id, lambda path: render(stats, site.name, path, site.office_hours))
    text = summary(stats, site.name)
    if len(text) > MOST_TEXT:
        text = text[: MOST_TEXT - 1] + "…"
    name = f"sitechat-report-{site_id}-{end:%Y-%m-%d}.png"
    queued = await post_report(files, where, data, name=name, text=text, now=end, key=key)
    return queued, where


class ReportSchedule:
    """Posts each site's report of the past week at the schedule's moment (site time zone), once across
    instances: every instance looks, the first to write the moment's key posts it."""

    def __init__(
        self,
        files: Files,
        settings: Settings,
        schedule: Weekly,
        *,
        clock: Callable[[], datetime],
        tick: float = 60.0,
    ) -> None:
        self.files = files
        self.settings = settings
        self.schedule = schedule
        self.clock = clock
        self.tick = tick

    async def run(self) -> None:
        while True:
            try:
                await self.post_due()
            except Exception as exc:
                if connection_lost(exc):
                    log.warning("report schedule: database connection lost; trying again")
                else:
                    log.exception("report schedule: failed; trying again")
            await asyncio.sleep(self.tick)

    async def post_due(self) -> list[str]:
        """Post what is due now; the sites posted by this instance."""
        now = self.clock()
        posted = []
        for site_id in self.settings.sites:
            moment = self.schedule.last(now, site_zone(self.settings.sites, site_id))
            if now - moment > LATE:
                continue
            key = once_key(site_id, moment)
            if await already_posted(self.files, key):
                continue
            queued, where = await post_site(
                self.files, self.settings, site_id, moment - timedelta(days=7), moment, key=key
            )
            if queued:
                log.info("weekly report of %s queued for %s", site_id, ", ".join(where.values()))
                posted.append(site_id)
        return posted
