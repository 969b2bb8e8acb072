"""``SITECHAT_REPORT_SCHEDULE``: a weekly moment, read in the site's zone, and the last one before now."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from config.schedule import Weekly

PARSED = {
    "Mon 09:00": Weekly(0, time(9, 0)),
    "mon 9:00": Weekly(0, time(9, 0)),
    "Friday 17:30": Weekly(4, time(17, 30)),
    "  SUN 00:00 ": Weekly(6, time(0, 0)),
}


@pytest.mark.parametrize(("text", "expected"), PARSED.items(), ids=PARSED.keys())
def test_parse(text: str, expected: Weekly) -> None:
    assert Weekly.parse(text) == expected


@pytest.mark.parametrize("text", ["", "Mon", "09:00", "Mon 24:00", "Mon 9:60", "Funday 09:00", "Mon-Fri 09:00"])
def test_unreadable_schedules_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="Mon 09:00"):
        Weekly.parse(text)


BERLIN = ZoneInfo("Europe/Berlin")
# (now in UTC, zone) → the last moment of "Mon 09:00" at or before now, in the zone
LAST = {
    "later the same Monday": (datetime(2027, 1, 4, 12, tzinfo=UTC), BERLIN, datetime(2027, 1, 4, 9, tzinfo=BERLIN)),
    "exactly at the moment": (datetime(2027, 1, 4, 8, tzinfo=UTC), BERLIN, datetime(2027, 1, 4, 9, tzinfo=BERLIN)),
    "a minute before: last week's": (
        datetime(2027, 1, 4, 7, 59, tzinfo=UTC),
        BERLIN,
        datetime(2026, 12, 28, 9, tzinfo=BERLIN),
    ),
    "on a Thursday": (datetime(2027, 1, 7, 12, tzinfo=UTC), BERLIN, datetime(2027, 1, 4, 9, tzinfo=BERLIN)),
    "Monday in UTC, still Sunday in New York": (
        datetime(2027, 1, 4, 3, tzinfo=UTC),
        ZoneInfo("America/New_York"),
        datetime(2026, 12, 28, 9, tzinfo=ZoneInfo("America/New_York")),
    ),
    "the week the clocks change (summer time began on Sunday)": (
        datetime(2027, 3, 29, 7, 30, tzinfo=UTC),
        BERLIN,
        datetime(2027, 3, 29, 9, tzinfo=BERLIN),
    ),
}


@pytest.mark.parametrize(("now", "zone", "expected"), LAST.values(), ids=LAST.keys())
def test_the_last_moment(now: datetime, zone: ZoneInfo, expected: datetime) -> None:
    moment = Weekly.parse("Mon 09:00").last(now, zone)
    assert moment == expected and moment <= now
