"""Office hours: ``Mon-Fri 09:00-17:00 Europe/Berlin``; several spans: ``Mon-Fri 09:00-17:00, Sat 10:00-14:00 UTC``.

``24:00`` ends a day (``Sat-Sun 00:00-24:00`` is the whole weekend). A span that ends before it starts
runs overnight: ``Fri 22:00-06:00`` is Friday night until Saturday 06:00 — it belongs to the day it starts
on, so ``Sun 22:00-02:00`` ends on Monday. Times are wall-clock times in the zone: on the day the clocks
change, 09:00 is still 09:00, and a night across the change is an hour shorter or longer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
_SPAN = re.compile(
    r"^(?P<d1>[a-z]{3})(?:-(?P<d2>[a-z]{3}))?\s+(?P<t1>\d{1,2}:\d{2})-(?P<t2>\d{1,2}:\d{2})$", re.IGNORECASE
)
_TIMES = re.compile(r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$")
EXAMPLE = "Mon-Fri 09:00-17:00 Europe/Berlin"
_LIKE = f"write it like {EXAMPLE!r}"


@dataclass(frozen=True)
class Span:
    """Open on ``days`` (0 = Monday) from ``start`` to ``end``, in minutes after the day's midnight.

    ``end`` may pass 1440 (24:00): the span then runs into the next day until ``end - 1440``.
    """

    days: frozenset[int]
    start: int
    end: int

    def covers(self, weekday: int, minute: int) -> bool:
        if weekday in self.days and self.start <= minute < self.end:
            return True
        yesterday = (weekday - 1) % 7
        return yesterday in self.days and minute + MINUTES_PER_DAY < self.end


@dataclass(frozen=True)
class OfficeHours:
    spans: tuple[Span, ...]
    tz: ZoneInfo
    text: str

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        text = text.strip()
        if not text:
            raise ValueError(f"empty; {_LIKE}")
        body, _, tz_name = text.rpartition(" ")
        if _TIMES.match(tz_name):
            raise ValueError(f"a time zone is needed at the end; {_LIKE}")
        if not body.strip():
            raise ValueError(f"cannot read {text!r}; {_LIKE}")
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz_name!r}; {_LIKE}") from None
        return cls(tuple(_span(part.strip()) for part in body.split(",")), tz, text)

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        return any(span.covers(local.weekday(), minute) for span in self.spans)

    def __str__(self) -> str:
        return self.text


def _span(part: str) -> Span:
    match = _SPAN.match(part)
    if not match:
        raise ValueError(f"cannot read {part!r}; {_LIKE}")
    first, last = match["d1"].lower(), (match["d2"] or match["d1"]).lower()
    if first not in DAYS or last not in DAYS:
        raise ValueError(f"days are Mon Tue Wed Thu Fri Sat Sun; {_LIKE}")
    i, j = DAYS.index(first), DAYS.index(last)
    days = frozenset(range(i, j + 1)) if i <= j else frozenset([*range(i, 7), *range(0, j + 1)])
    start, end = _minute(match["t1"], part), _minute(match["t2"], part)
    if start == MINUTES_PER_DAY:
        raise ValueError(f"{part!r} starts at 24:00: a span starts at 23:59 at the latest; {_LIKE}")
    if end == start:
        raise ValueError(f"{part!r} starts and ends at the same time; for the whole day write 00:00-24:00")
    return Span(days, start, end if end > start else end + MINUTES_PER_DAY)


def _minute(clock: str, part: str) -> int:
    """``"09:30"`` → 570; ``"24:00"`` → 1440, the end of the day."""
    hours, minutes = (int(n) for n in clock.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"bad time {clock!r} in {part!r}; {_LIKE}")
    return hours * 60 + minutes
