"""The numbers of a period, computed once for ``sitechat report``, ``sitechat export`` and ``/sitechat stats``.

Pure: ``bridge/store/stats.py`` reads one ``ConversationFacts`` per conversation (streamed, in SQL),
and a ``StatsBuilder`` folds them into one frozen ``Stats``. The definitions, in one place:

- a period's conversations are the chats *started* in it (``[start, end)``); offline messages are
  counted apart, as missed;
- a conversation's **first response** is the time from the visitor's first message to the first agent
  message after it; a conversation whose visitor never wrote is not waiting for one;
- **median** and **90th percentile** interpolate linearly between the nearest ranks (as a spreadsheet's
  PERCENTILE does); **within a minute** is the share of answered conversations answered in ≤ 60 s;
- **missed** are closed chats whose visitor wrote and no agent answered, plus offline messages;
- ratings are those of the period's conversations; **low** is a score of 1 or 2;
- days, weekdays and hours are the site's local time (its office hours' zone, else UTC), so a
  heatmap cell is "Mondays 09:00–10:00 in Berlin" across a change of daylight saving time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from config.settings import SiteConfig

UTC_ZONE = ZoneInfo("UTC")
WITHIN = 60.0  # seconds: "answered within a minute"
LOW_SCORE = 2
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class ConversationFacts:
    """One conversation as the statistics need it (times in UTC)."""

    id: str
    site_id: str
    kind: str  # "chat" or "offline"
    status: str
    created_at: datetime
    first_visitor_at: datetime | None = None
    first_agent_at: datetime | None = None
    rating_score: int | None = None
    rating_comment: str | None = None

    @property
    def first_response_seconds(self) -> float | None:
        if self.first_visitor_at is None or self.first_agent_at is None:
            return None
        return max(0.0, (self.first_agent_at - self.first_visitor_at).total_seconds())


@dataclass(frozen=True)
class ResponseTimes:
    """First responses of a set of conversations, in seconds (None when none was answered)."""

    answered: int
    median: float | None
    p90: float | None
    within_minute: float | None  # share of ``answered``, 0..1

    @classmethod
    def of(cls, seconds: Sequence[float]) -> ResponseTimes:
        ordered = sorted(seconds)
        within = sum(1 for s in ordered if s <= WITHIN) / len(ordered) if ordered else None
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 90), within)


@dataclass(frozen=True)
class Day:
    day: date
    conversations: int
    response: ResponseTimes
    #: chats of the day nobody answered, and offline messages left that day
    missed: int = 0


@dataclass(frozen=True)
class LowRating:
    conversation_id: str
    site_id: str
    score: int
    comment: str | None
    started_at: datetime


@dataclass(frozen=True)
class Ratings:
    count: int
    average: float | None
    #: how many of each score, 1 to 5
    distribution: tuple[int, int, int, int, int]
    #: the scores of 1 and 2, oldest first
    low: tuple[LowRating, ...]


@dataclass(frozen=True)
class Missed:
    #: closed chats whose visitor wrote and nobody answered
    unanswered: int
    #: messages left through the offline form
    offline: int

    @property
    def total(self) -> int:
        return self.unanswered + self.offline


@dataclass(frozen=True)
class Stats:
    site: str | None
    zone: str
    start: datetime
    end: datetime
    #: chats started in the period (offline messages not included)
    conversations: int
    response: ResponseTimes
    per_day: tuple[Day, ...]
    ratings: Ratings
    missed: Missed
    #: conversations started per local weekday (0 = Monday) × hour (0–23)
    heatmap: tuple[tuple[int, ...], ...]


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) of sorted values, interpolating linearly between ranks."""
    if not ordered:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q is a percentage, 0 to 100")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def local_slot(at: datetime, zone: tzinfo) -> tuple[int, int]:
    """(weekday with Monday 0, hour) of a UTC time in ``zone``."""
    local = at.astimezone(zone)
    return local.weekday(), local.hour


def local_days(start: datetime, end: datetime, zone: tzinfo) -> list[date]:
    """Every local day that ``[start, end)`` touches, in order."""
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date() if end > start else first
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def site_zone(sites: Mapping[str, SiteConfig], site: str | None) -> ZoneInfo:
    """The zone a site's people live in: its office hours' zone, else UTC. For all sites together, the
    zone they share (UTC when their zones differ)."""
    chosen = [sites[site]] if site is not None and site in sites else list(sites.values())
    zones = {str(s.office_hours.tz) if s.office_hours else "UTC" for s in chosen}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else UTC_ZONE


@dataclass
class StatsBuilder:
    """Folds conversations one by one (a year of them never sits in memory as rows)."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    site: str | None = None
    conversations: int = 0
    _responses: list[float] = field(default_factory=list)
    _days: dict[date, tuple[int, list[float]]] = field(default_factory=dict)
    _missed: dict[date, int] = field(default_factory=dict)
    _scores: list[int] = field(default_factory=lambda: [0] * 5)
    _low: list[LowRating] = field(default_factory=list)
    _unanswered: int = 0
    _offline: int = 0
    _heatmap: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in range(7)])

    def add(self, facts: ConversationFacts) -> None:
        day = facts.created_at.astimezone(self.zone).date()
        if facts.kind == "offline":
            self._offline += 1
            self._missed[day] = self._missed.get(day, 0) + 1
            return
        self.conversations += 1
        weekday, hour = local_slot(facts.created_at, self.zone)
        self._heatmap[weekday][hour] += 1
        count, seconds = self._days.get(day, (0, []))
        response = facts.first_response_seconds
        if response is not None:
            seconds.append(response)
            self._responses.append(response)
        elif facts.first_visitor_at is not None and facts.status == "closed":
            self._unanswered += 1
            self._missed[day] = self._missed.get(day, 0) + 1
        self._days[day] = (count + 1, seconds)
        if facts.rating_score is not None and 1 <= facts.rating_score <= 5:
            self._scores[facts.rating_score - 1] += 1
            if facts.rating_score <= LOW_SCORE:
                low = LowRating(facts.id, facts.site_id, facts.rating_score, facts.rating_comment, facts.created_at)
                self._low.append(low)

    def result(self) -> Stats:
        days = tuple(
            Day(d, count, ResponseTimes.of(seconds), self._missed.get(d, 0))
            for d in local_days(self.start, self.end, self.zone)
            for count, seconds in [self._days.get(d, (0, []))]
        )
        rated = sum(self._scores)
        total = sum(score * n for score, n in enumerate(self._scores, start=1))
        s1, s2, s3, s4, s5 = self._scores
        return Stats(
            site=self.site,
            zone=str(self.zone),
            start=self.start,
            end=self.end,
            conversations=self.conversations,
            response=ResponseTimes.of(self._responses),
            per_day=days,
            ratings=Ratings(rated, total / rated if rated else None, (s1, s2, s3, s4, s5), tuple(self._low)),
            missed=Missed(self._unanswered, self._offline),
            heatmap=tuple(tuple(row) for row in self._heatmap),
        )
