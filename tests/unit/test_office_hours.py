"""``config/office_hours.py``: when a site is open, as one table per question.

Instants carry their offset, so a case reads as the admin's wall clock (``+01:00`` is CET in Berlin,
``+02:00`` CEST) while meaning one exact moment. An overnight span belongs to the day it starts on.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from config.office_hours import OfficeHours

# (office hours, instant) → open?
OPEN: dict[tuple[str, str], bool] = {
    # a normal day, and its boundaries: open at the opening minute, closed at the closing one
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-11-24T11:00+01:00"): True,  # Tuesday
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-11-24T10:00+00:00"): True,  # the same moment, in UTC
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-11-24T08:59:59+01:00"): False,
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-11-24T09:00+01:00"): True,
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-11-24T16:59:59+01:00"): True,
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-11-24T17:00+01:00"): False,
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-11-28T11:00+01:00"): False,  # Saturday
    ("Mon-Fri 9:00-17:00 UTC", "2026-11-24T09:00+00:00"): True,  # a one-digit hour
    # several spans; a day range that wraps the week
    ("Mon-Fri 09:00-17:00, Sat 10:00-14:00 UTC", "2026-11-28T13:59+00:00"): True,
    ("Mon-Fri 09:00-17:00, Sat 10:00-14:00 UTC", "2026-11-28T14:00+00:00"): False,
    ("Fri-Mon 10:00-12:00 UTC", "2026-11-29T11:00+00:00"): True,  # Sunday
    ("Fri-Mon 10:00-12:00 UTC", "2026-11-25T11:00+00:00"): False,  # Wednesday
    # 24:00 ends a day
    ("Mon 18:00-24:00 UTC", "2026-11-30T23:59:59+00:00"): True,
    ("Mon 18:00-24:00 UTC", "2026-12-01T00:00+00:00"): False,  # Tuesday has begun
    ("Mon 18:00-24:00 UTC", "2026-11-30T17:59+00:00"): False,
    # 00:00-24:00: the whole day, and not a minute of the days around it
    ("Sat-Sun 00:00-24:00 Europe/Berlin", "2026-11-28T00:00+01:00"): True,
    ("Sat-Sun 00:00-24:00 Europe/Berlin", "2026-11-29T23:59:59+01:00"): True,
    ("Sat-Sun 00:00-24:00 Europe/Berlin", "2026-11-27T23:59:59+01:00"): False,
    ("Sat-Sun 00:00-24:00 Europe/Berlin", "2026-11-30T00:00+01:00"): False,
    # overnight: Friday's night runs into Saturday morning
    ("Fri 22:00-06:00 Europe/Berlin", "2026-11-27T21:59+01:00"): False,
    ("Fri 22:00-06:00 Europe/Berlin", "2026-11-27T22:00+01:00"): True,
    ("Fri 22:00-06:00 Europe/Berlin", "2026-11-28T03:00+01:00"): True,
    ("Fri 22:00-06:00 Europe/Berlin", "2026-11-28T05:59:59+01:00"): True,
    ("Fri 22:00-06:00 Europe/Berlin", "2026-11-28T06:00+01:00"): False,
    ("Fri 22:00-06:00 Europe/Berlin", "2026-11-28T22:00+01:00"): False,  # Saturday night is not Friday's
    ("Fri 22:00-06:00 Europe/Berlin", "2026-11-27T03:00+01:00"): False,  # nor is Thursday's
    ("Mon-Fri 22:00-06:00 UTC", "2026-11-28T05:00+00:00"): True,  # Saturday morning: Friday's night
    ("Mon-Fri 22:00-06:00 UTC", "2026-11-30T05:00+00:00"): False,  # Monday morning: Sunday's night
    # overnight across the end of the week: Sunday's night runs into Monday
    ("Sun 22:00-02:00 UTC", "2026-11-29T22:00+00:00"): True,
    ("Sun 22:00-02:00 UTC", "2026-11-30T01:59:59+00:00"): True,
    ("Sun 22:00-02:00 UTC", "2026-11-30T02:00+00:00"): False,
    ("Sun 22:00-02:00 UTC", "2026-11-29T01:00+00:00"): False,  # Sunday early morning is Saturday's night
    ("Sun 22:00-02:00 UTC", "2026-11-29T21:59+00:00"): False,
    # Berlin moves to summer time on Sunday 2026-03-29 (02:00 CET → 03:00 CEST): hours are wall-clock hours
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-03-27T09:00+01:00"): True,  # Friday before, CET
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-03-30T09:00+02:00"): True,  # Monday after, CEST
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-03-30T08:00+01:00"): True,  # the same moment
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-03-30T08:59+02:00"): False,
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-03-30T17:00+02:00"): False,
    ("Sat 22:00-06:00 Europe/Berlin", "2026-03-28T22:00+01:00"): True,
    ("Sat 22:00-06:00 Europe/Berlin", "2026-03-29T05:59+02:00"): True,  # a night one hour shorter
    ("Sat 22:00-06:00 Europe/Berlin", "2026-03-29T06:00+02:00"): False,
    ("Sun 00:00-24:00 Europe/Berlin", "2026-03-29T00:00+01:00"): True,  # a day of 23 hours
    ("Sun 00:00-24:00 Europe/Berlin", "2026-03-28T23:59+01:00"): False,
    ("Sun 00:00-24:00 Europe/Berlin", "2026-03-29T23:59+02:00"): True,
    ("Sun 00:00-24:00 Europe/Berlin", "2026-03-30T00:00+02:00"): False,
    # … and back on Sunday 2026-10-25 (03:00 CEST → 02:00 CET): 02:30 happens twice, open both times
    ("Sun 02:00-03:00 Europe/Berlin", "2026-10-25T02:30+02:00"): True,
    ("Sun 02:00-03:00 Europe/Berlin", "2026-10-25T02:30+01:00"): True,
    ("Sun 02:00-03:00 Europe/Berlin", "2026-10-25T03:00+01:00"): False,
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-10-26T09:00+01:00"): True,
    ("Mon-Fri 09:00-17:00 Europe/Berlin", "2026-10-26T08:59+01:00"): False,
}


@pytest.mark.parametrize(("hours", "instant"), list(OPEN), ids=[f"{h} @ {i}" for h, i in OPEN])
def test_open(hours: str, instant: str) -> None:
    assert OfficeHours.parse(hours).is_open(datetime.fromisoformat(instant)) is OPEN[hours, instant]


# what an admin may write → the problem they are told (always with an example of a right value)
BAD: dict[str, str] = {
    "": "empty; write it like 'Mon-Fri 09:00-17:00 Europe/Berlin'",
    "weekdays": "cannot read 'weekdays'; write it like 'Mon-Fri 09:00-17:00 Europe/Berlin'",
    "Mon-Fri 09:00-17:00": "a time zone is needed at the end; write it like 'Mon-Fri 09:00-17:00 Europe/Berlin'",
    "Mon-Fri 09:00-17:00 Mars/Olympus": "unknown time zone 'Mars/Olympus'; write it like",
    "Mon-Fry 09:00-17:00 UTC": "days are Mon Tue Wed Thu Fri Sat Sun; write it like",
    "Mon-Fri 9-17 UTC": "cannot read 'Mon-Fri 9-17'; write it like",
    "Mon-Fri 09:00-17:00, UTC": "cannot read ''; write it like",
    "Mon 25:00-26:00 UTC": "bad time '25:00' in 'Mon 25:00-26:00'",
    "Mon 09:60-10:00 UTC": "bad time '09:60' in 'Mon 09:60-10:00'",
    "Mon 09:00-24:01 UTC": "bad time '24:01' in 'Mon 09:00-24:01'",
    "Mon 24:00-06:00 UTC": "'Mon 24:00-06:00' starts at 24:00: a span starts at 23:59 at the latest",
    "Mon 09:00-09:00 UTC": "'Mon 09:00-09:00' starts and ends at the same time; for the whole day write 00:00-24:00",
    "Mon 00:00-00:00 UTC": "'Mon 00:00-00:00' starts and ends at the same time; for the whole day write 00:00-24:00",
}


@pytest.mark.parametrize("text", list(BAD))
def test_bad_input_says_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        OfficeHours.parse(text)
    assert BAD[text] in str(caught.value)


def test_it_reads_back_as_written() -> None:
    assert str(OfficeHours.parse("  Fri 22:00-06:00 Europe/Berlin ")) == "Fri 22:00-06:00 Europe/Berlin"
