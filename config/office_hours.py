"""Office hours: ``Mon-Fri 09:00-17:00 Europe/Berlin``; several spans: ``Mon-Fri 09:00-17:00, Sat 10:00-14:00 UTC``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(
    r"^(?P<d1>[a-z]{3})(?:-(?P<d2>[a-z]{3}))?\s+(?P<t1>\d{1,2}:\d{2})-(?P<t2>\d{1,2}:\d{2})$", re.IGNORECASE
)
EXAMPLE = "Mon-Fri 09:00-17:00 Europe/Berlin"


@dataclass(frozen=True)
class Span:
    days: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True)
class OfficeHours:
    spans: tuple[Span, ...]
    tz: ZoneInfo
    text: str

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        body, _, tz_name = text.strip().rpartition(" ")
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz_name!r}; write it like {EXAMPLE!r}") from None
        spans = []
        for part in body.split(","):
            match = _SPAN.match(part.strip())
            if not match:
                raise ValueError(f"cannot read {part.strip()!r}; write it like {EXAMPLE!r}")
            d1 = match["d1"].lower()
            d2 = (match["d2"] or d1).lower()
            if d1 not in DAYS or d2 not in DAYS:
                raise ValueError(f"days are Mon Tue Wed Thu Fri Sat Sun; write it like {EXAMPLE!r}")
            i, j = DAYS.index(d1), DAYS.index(d2)
            days = frozenset(range(i, j + 1)) if i <= j else frozenset([*range(i, 7), *range(0, j + 1)])
            try:
                start, end = (
                    time.fromisoformat(match["t1"].zfill(5)),
                    time.fromisoformat(match["t2"].zfill(5)),
                )
            except ValueError:
                raise ValueError(f"bad time in {part.strip()!r}; write it like {EXAMPLE!r}") from None
            if end <= start:
                raise ValueError(f"{part.strip()!r} ends before it starts; write it like {EXAMPLE!r}")
            spans.append(Span(days, start, end))
        return cls(tuple(spans), tz, text.strip())

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        return any(local.weekday() in s.days and s.start <= local.time() < s.end for s in self.spans)

    def __str__(self) -> str:
        return self.text
