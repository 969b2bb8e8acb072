"""``sitechat report [--since 7d] [--site ID] [--out report.png] [--post]``: a period's chats as one PNG
page and the same numbers as text on stdout."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bridge.insight import Stats, site_zone
from bridge.insight_text import summary
from bridge.store.database import Database
from bridge.store.stats import compute_stats
from config.settings import Settings, SiteConfig
from sitechat.insight.common import Period, Refused, period_of, refuse, with_database
from sitechat.insight.posting import post_site
from sitechat.runtime import build_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="7d", help="how far back: 7d, 12h, 2w, or a date (default 7d)")
    parser.add_argument("--site", default=None, help="one site's id (default: all sites)")
    parser.add_argument("--out", default="report.png", help="where to write the PNG (default report.png)")
    parser.add_argument(
        "--post", action="store_true", help="also post each site's report to its Slack channel and Matrix room"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        period = period_of(settings, args.since, args.site)
        stats = asyncio.run(with_database(settings, lambda db: _stats(db, settings, period)))
    except Refused as exc:
        return refuse(exc)
    from sitechat.insight.chart import render  # matplotlib is imported only when a picture is drawn

    name = settings.sites[period.site].name if period.site else ", ".join(s.name for s in settings.sites.values())
    site = settings.sites.get(period.site) if period.site else _only(settings)
    try:
        width, height = render(stats, name or "All sites", Path(args.out), site.office_hours if site else None)
    except OSError as exc:
        return refuse(Refused(f"cannot write {args.out}: {exc.strerror or exc}", 1))
    print(summary(stats, name or "All sites"))
    print(f"\nReport picture: {args.out} ({width}×{height})")
    if args.post:
        try:
            return asyncio.run(with_database(settings, lambda db: _post(db, settings, period)))
        except Refused as exc:
            return refuse(exc)
    return 0


async def _post(db: Database, settings: Settings, period: Period) -> int:
    """Queue each site's report for its channel and room: the running bridge delivers it (a team chat that
    is down delays it; nothing is lost or posted twice)."""
    files = build_files(settings, db)
    nowhere = []
    for site_id in [period.site] if period.site else list(settings.sites):
        queued, where = await post_site(files, settings, site_id, period.start, period.end)
        if queued:
            print(f"Posting {site_id}'s report to {', '.join(f'{d} ({e})' for e, d in where.items())}")
        else:
            nowhere.append(site_id)
    if nowhere:
        print(f"sitechat: no Slack channel or Matrix room to post to for {', '.join(nowhere)}", file=sys.stderr)
        return 1
    print("Queued: the running bridge posts it (sitechat run); it stays queued until one runs.")
    return 0


async def _stats(db: Database, settings: Settings, period: Period) -> Stats:
    zone = site_zone(settings.sites, period.site)
    return await compute_stats(db, period.start, period.end, site=period.site, zone=zone)


def _only(settings: Settings) -> SiteConfig | None:
    """The one site, when there is one (its office hours outline the heatmap)."""
    return next(iter(settings.sites.values())) if len(settings.sites) == 1 else None
