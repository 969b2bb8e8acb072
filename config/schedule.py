"""``SITECHAT_REPORT_SCHEDULE``: a weekly moment such as ``Mon 09:00``, read in each site's own time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from config.office_hours import DAYS

EXAMPLE = "Mon 09:00"
_WEEKLY = re.compile(r"^(?P<day>[a-z]{3})[a-z]*\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})$", re.IGNORECASE)


@dataclass(frozen=True)
class Weekly:
    """Once a week: ``weekday`` (0 = Monday) at ``at``, wall-clock time in the zone it is read in."""

    weekday: int
    at: time

    @classmethod
    def parse(cls, text: str) -> Weekly:
        match = _WEEKLY.match(text.strip())
        if not match or match["day"].lower() not in DAYS:
            raise ValueError(f"cannot read {text!r}; write a day and a time like {EXAMPLE!r}")
        hour, minute = int(match["hour"]), int(match["minute"])
        if hour > 23 or minute > 59:
            raise ValueError(f"{hour:02d}:{minute:02d} is no time of day; write it like {EXAMPLE!r}")
        return cls(DAYS.index(match["day"].lower()), time(hour, minute))

    def last(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The latest moment of the schedule at or before ``now`` (aware), as an aware datetime in ``zone``."""
        local = now.astimezone(zone)
        back = (local.weekday() - self.weekday) % 7
        day = local.date() - timedelta(days=back)
        moment = datetime.combine(day, self.at, tzinfo=zone)
        if moment > local:
            moment = datetime.combine(day - timedelta(days=7), self.at, tzinfo=zone)
        return moment

    def __str__(self) -> str:
        return f"{DAYS[self.weekday].title()} {self.at:%H:%M}"
