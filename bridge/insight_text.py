"""A period's statistics as plain text: ``sitechat report``'s summary (and a chat command's answer)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.insight import WEEKDAYS, ResponseTimes, Stats


def human_seconds(seconds: float | None) -> str:
    """``45 s``, ``1 min 36 s``, ``2 h 5 min``; ``–`` for nothing."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 and whole != seconds else f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole // 60, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def plural(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"


def responses(r: ResponseTimes) -> str:
    if not r.answered:
        return "none answered"
    return (
        f"median {human_seconds(r.median)}, 90th percentile {human_seconds(r.p90)}, "
        f"within a minute {percent(r.within_minute)} ({r.answered} answered)"
    )


def period_title(stats: Stats, name: str) -> str:
    zone = ZoneInfo(stats.zone)
    start, end = _local(stats.start, zone), _local(stats.end, zone)
    return f"{name} — {start:%a %d %b %Y %H:%M} to {end:%a %d %b %Y %H:%M} ({stats.zone})"


def summary(stats: Stats, name: str) -> str:
    """Every number the report's picture shows, as lines a person reads top to bottom."""
    ratings = stats.ratings
    lines = [
        period_title(stats, name),
        "",
        f"Conversations: {stats.conversations}",
        f"First response: {responses(stats.response)}",
        f"Missed: {stats.missed.total} ({stats.missed.unanswered} closed unanswered, "
        f"{plural(stats.missed.offline, 'offline message')})",
        f"Ratings: {ratings.count}"
        + (f", average {ratings.average:.2f} / 5" if ratings.average is not None else "")
        + " — "
        + "  ".join(f"{score}★ {n}" for score, n in zip(range(5, 0, -1), reversed(ratings.distribution), strict=True)),
    ]
    if ratings.low:
        lines.append(f"Low ratings (1–2): {len(ratings.low)}" + (", the latest 10:" if len(ratings.low) > 10 else ""))
        for low in ratings.low[-10:]:
            said = f"“{low.comment}”" if low.comment else "(no comment)"
            lines.append(f"  {low.score}/5 {said} — {low.started_at:%Y-%m-%d} {low.conversation_id}")
    lines += ["", "Per day (conversations, missed; first response):"]
    for day in stats.per_day:
        lines.append(f"  {day.day:%a %d %b}: {day.conversations}, {day.missed} missed; {responses(day.response)}")
    busiest = sorted(
        ((n, weekday, hour) for weekday, row in enumerate(stats.heatmap) for hour, n in enumerate(row) if n),
        key=lambda cell: (-cell[0], cell[1], cell[2]),
    )[:5]
    if busiest:
        hours = ", ".join(f"{WEEKDAYS[wd]} {h:02d}:00 ({n})" for n, wd, h in busiest)
        lines += ["", f"Busiest hours ({stats.zone}): {hours}"]
    return "\n".join(lines)


def _local(at: datetime, zone: ZoneInfo) -> datetime:
    return at.astimezone(zone)
