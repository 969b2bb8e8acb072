"""The team desk's answers as plain lines (``bridge/desk_answers.py``), for every team chat to show; a team
chat adds what only it can (Slack: escaping, bold, links to its threads)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.desk_answers import Period, PresenceSet, SiteState, StatsReport
from bridge.insight_text import plural, responses

PERIODS = {Period.TODAY: "today", Period.WEEK: "the last 7 days", Period.MONTH: "the last 30 days"}


def minutes(delta: timedelta) -> str:
    """``<1 min``, ``4 min``, ``2 h 5 min`` (whole minutes, rounded down: people count waits that way)."""
    whole = max(0, int(delta.total_seconds() // 60))
    if whole < 1:
        return "<1 min"
    if whole < 60:
        return f"{whole} min"
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def clock(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def site_line(state: SiteState) -> str:
    """``Acme: online`` · ``Acme: away (set by Alice, 2026-12-28 14:05 UTC)`` · ``Acme: offline, outside
    its office hours (Mon-Fri 09:00-17:00 Europe/Berlin)``."""
    if state.away:
        who = f"set by {state.set_by}, {clock(state.set_at)}" if state.set_by and state.set_at else "set away"
        hours = "" if state.in_hours else "; outside its office hours too"
        return f"{state.name}: away ({who}){hours}"
    if not state.in_hours:
        return f"{state.name}: offline, outside its office hours ({state.office_hours})"
    back = f" (back since {clock(state.set_at)}, {state.set_by})" if state.set_by and state.set_at else ""
    return f"{state.name}: online{back}"


def presence_lines(answer: PresenceSet) -> list[str]:
    names = " and ".join(s.name for s in answer.sites) if len(answer.sites) < 3 else "Every site"
    head = (
        f"{names} now {'shows' if len(answer.sites) == 1 else 'show'} offline in the widget until someone says back."
        if answer.away
        else f"{names} {'is' if len(answer.sites) == 1 else 'are'} back."
    )
    return [head, *(site_line(state) for state in answer.sites)]


def stats_lines(report: StatsReport) -> list[str]:
    """Conversations, first response (median, 90th percentile, within a minute), rating, missed."""
    stats = report.stats
    ratings, missed = stats.ratings, stats.missed
    rating = (
        f"{ratings.average:.1f} / 5 ({plural(ratings.count, 'rating')})"
        if ratings.average is not None
        else "no ratings yet"
    )
    since = stats.start.astimezone(ZoneInfo(stats.zone))
    return [
        f"{report.name}, {PERIODS[report.period]} (since {since:%a %d %b %H:%M} {stats.zone})",
        f"Conversations: {stats.conversations}",
        f"First response: {responses(stats.response)}",
        f"Rating: {rating}",
        f"Missed: {missed.total} ({missed.unanswered} closed unanswered, {plural(missed.offline, 'offline message')})",
    ]
