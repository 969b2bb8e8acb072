"""The statistics (``bridge.insight``, ``bridge.store.stats``): the pure parts as tables, then a week of
seeded conversations on every database backend, checked number by number."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from bridge.insight import ConversationFacts, ResponseTimes, StatsBuilder, local_days, local_slot, percentile, site_zone
from bridge.insight_text import human_seconds
from bridge.store.database import Database
from bridge.store.stats import compute_stats, first_response_of
from config.office_hours import OfficeHours
from config.sites import SiteConfig
from sitechat.insight.period import since
from tests.seeding import Said, Seeded, seed

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7.0], 50, 7.0),
        ([7.0], 90, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 90, 3.7),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        ([float(n) for n in range(10, 101, 10)], 90, 91.0),
        ([20.0, 30.0, 45.0, 60.0, 120.0], 90, 96.0),
        ([3.0, 9.0], 0, 3.0),
        ([3.0, 9.0], 100, 9.0),
    ],
)
def test_percentile_interpolates_between_ranks(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == pytest.approx(expected) if expected is not None else percentile(values, q) is None


def test_percentile_refuses_what_is_no_percentage() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        ([], ResponseTimes(0, None, None, None)),
        ([60.0], ResponseTimes(1, 60.0, 60.0, 1.0)),  # a minute exactly is within a minute
        ([60.5], ResponseTimes(1, 60.5, 60.5, 0.0)),
        ([120.0, 30.0, 61.0, 60.0], ResponseTimes(4, 60.5, 102.3, 0.5)),
    ],
)
def test_response_times(seconds: list[float], expected: ResponseTimes) -> None:
    got = ResponseTimes.of(seconds)
    assert (got.answered, got.within_minute) == (expected.answered, expected.within_minute)
    assert got.median == pytest.approx(expected.median)
    assert got.p90 == pytest.approx(expected.p90)


@pytest.mark.parametrize(
    ("utc", "zone", "slot"),
    [
        ("2024-05-06 08:30", BERLIN, (0, 10)),  # Monday, summer time (UTC+2)
        ("2024-01-08 08:30", BERLIN, (0, 9)),  # Monday, winter time (UTC+1)
        ("2024-05-06 23:30", BERLIN, (1, 1)),  # Monday in UTC, already Tuesday in Berlin
        ("2024-05-06 02:30", NEW_YORK, (6, 22)),  # Monday in UTC, still Sunday evening in New York
        ("2024-03-31 00:30", BERLIN, (6, 1)),  # the night the clocks go forward: 01:30 CET …
        ("2024-03-31 01:30", BERLIN, (6, 3)),  # … then 03:30 CEST (there is no 02:xx that night)
        ("2024-10-27 00:30", BERLIN, (6, 2)),  # the night they go back: 02:30 CEST …
        ("2024-10-27 01:30", BERLIN, (6, 2)),  # … and 02:30 CET again: the same local hour twice
        ("2024-03-10 07:30", NEW_YORK, (6, 3)),  # New York's spring forward: 03:30 EDT
        ("2024-05-06 08:30", ZoneInfo("UTC"), (0, 8)),
    ],
)
def test_local_weekday_and_hour(utc: str, zone: ZoneInfo, slot: tuple[int, int]) -> None:
    assert local_slot(at(utc), zone) == slot


@pytest.mark.parametrize(
    ("start", "end", "zone", "days"),
    [
        # a local week across the spring change: 7 local days, though 167 hours long
        ("2024-03-24 23:00", "2024-03-31 22:00", BERLIN, [date(2024, 3, 25) + timedelta(days=n) for n in range(7)]),
        ("2024-05-06 00:00", "2024-05-07 00:00", ZoneInfo("UTC"), [date(2024, 5, 6)]),
        # one UTC day touches two Berlin days
        ("2024-05-06 00:00", "2024-05-07 00:00", BERLIN, [date(2024, 5, 6), date(2024, 5, 7)]),
        ("2024-05-06 00:00", "2024-05-06 00:00", BERLIN, [date(2024, 5, 6)]),
    ],
)
def test_local_days(start: str, end: str, zone: ZoneInfo, days: list[date]) -> None:
    assert local_days(at(start), at(end), zone) == days


def _site(office_hours: str | None = None) -> SiteConfig:
    hours = OfficeHours.parse(office_hours) if office_hours else None
    return SiteConfig(name="S", origins=["https://s.example"], slack_channel="C1", office_hours=hours)


def test_the_site_zone_is_its_office_hours_zone_else_utc() -> None:
    sites = {"acme": _site("Mon-Fri 09:00-17:00 Europe/Berlin"), "beta": _site()}
    assert site_zone(sites, "acme") == BERLIN
    assert site_zone(sites, "beta") == ZoneInfo("UTC")
    assert site_zone(sites, None) == ZoneInfo("UTC")  # zones differ: none of them is "the" zone
    assert site_zone({"acme": sites["acme"], "gamma": _site("Sat 10:00-12:00 Europe/Berlin")}, None) == BERLIN


def test_the_builder_folds_conversations_into_the_numbers() -> None:
    builder = StatsBuilder(at("2024-05-06 00:00"), at("2024-05-08 00:00"), ZoneInfo("UTC"))
    facts = [
        ConversationFacts(
            "a",
            "acme",
            "chat",
            "closed",
            at("2024-05-06 09:00"),
            at("2024-05-06 09:00"),
            at("2024-05-06 09:00:30"),
            5,
            None,
        ),
        ConversationFacts("b", "acme", "chat", "closed", at("2024-05-06 09:10"), at("2024-05-06 09:10"), None, 1, "no"),
        ConversationFacts("c", "acme", "chat", "open", at("2024-05-07 14:00"), at("2024-05-07 14:00"), None),
        ConversationFacts("d", "acme", "chat", "closed", at("2024-05-07 15:00")),  # the visitor never wrote
        ConversationFacts("e", "acme", "offline", "closed", at("2024-05-07 20:00")),
    ]
    for f in facts:
        builder.add(f)
    stats = builder.result()
    assert stats.conversations == 4
    assert (stats.missed.unanswered, stats.missed.offline, stats.missed.total) == (1, 1, 2)
    assert stats.response == ResponseTimes(1, 30.0, 30.0, 1.0)
    assert [(d.day, d.conversations, d.response.answered) for d in stats.per_day] == [
        (date(2024, 5, 6), 2, 1),
        (date(2024, 5, 7), 2, 0),
    ]
    assert stats.ratings.count == 2 and stats.ratings.average == 3.0
    assert stats.ratings.distribution == (1, 0, 0, 0, 1)
    assert [(r.conversation_id, r.score, r.comment) for r in stats.ratings.low] == [("b", 1, "no")]
    assert stats.heatmap[0][9] == 2 and stats.heatmap[1][14] == 1 and stats.heatmap[1][15] == 1
    assert sum(map(sum, stats.heatmap)) == 4


# -- a week on every backend -----------------------------------------------------------------------


def week() -> list[Seeded]:
    """Acme's week of 25–31 March 2024 in Berlin, across the change to summer time (31 March)."""

    def chat(cid: str, start: str, *lines: tuple[str, str], closed: str | None = None, **kw: object) -> Seeded:
        said = tuple(Said(role, "Ann" if role == "visitor" else "Alice", role, at(when)) for role, when in lines)
        return Seeded(cid, at(start), messages=said, closed_at=at(closed) if closed else None, **kw)  # type: ignore[arg-type]

    return [
        chat(
            "c1",
            "2024-03-25 08:00",
            ("visitor", "2024-03-25 08:00:10"),
            ("agent", "2024-03-25 08:00:40"),
            ("visitor", "2024-03-25 08:01:00"),
            ("agent", "2024-03-25 08:05:00"),
            closed="2024-03-25 08:10",
            rating=5,
        ),
        chat(
            "c2",
            "2024-03-25 08:30",
            ("visitor", "2024-03-25 08:30:00"),
            ("agent", "2024-03-25 08:32:00"),
            closed="2024-03-25 08:40",
            rating=2,
            comment="Too slow",
        ),
        chat(
            "c3",
            "2024-03-26 13:05",
            ("visitor", "2024-03-26 13:05:00"),
            ("system", "2024-03-26 13:05:10"),
            ("agent", "2024-03-26 13:05:45"),
        ),
        chat("c4", "2024-03-27 10:00", ("visitor", "2024-03-27 10:00:00"), closed="2024-03-27 10:30", rating=1),
        chat(
            "c5",
            "2024-03-31 07:15",
            ("visitor", "2024-03-31 07:15:00"),
            ("agent", "2024-03-31 07:16:00"),
            closed="2024-03-31 07:30",
            rating=4,
        ),
        chat("c6", "2024-03-28 09:00", closed="2024-03-28 09:30"),  # opened, never written in: not missed
        chat("c7", "2024-03-29 18:00", ("system", "2024-03-29 18:00:00"), closed="2024-03-29 18:00", kind="offline"),
        chat("c8", "2024-03-24 22:59", ("visitor", "2024-03-24 22:59:30")),  # Sunday 23:59 in Berlin: before
        chat("c9", "2024-03-26 12:00", ("visitor", "2024-03-26 12:00:00"), site="beta"),
        # the agent greeted first; the response is to the visitor's first message
        chat(
            "c10",
            "2024-03-29 12:00",
            ("agent", "2024-03-29 12:00:00"),
            ("visitor", "2024-03-29 12:00:30"),
            ("agent", "2024-03-29 12:00:50"),
            closed="2024-03-29 12:10",
        ),
        chat("c11", "2024-03-31 22:00", ("visitor", "2024-03-31 22:00:05")),  # Monday 00:00 in Berlin: after
    ]


@pytest_asyncio.fixture
async def seeded(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.migrate()
    await seed(db, week())
    try:
        yield db
    finally:
        await db.close()


async def test_a_seeded_week_gives_exactly_the_expected_numbers(seeded: Database) -> None:
    start, end = at("2024-03-24 23:00"), at("2024-03-31 22:00")  # Monday to Monday, Berlin time
    stats = await compute_stats(seeded, start, end, site="acme", zone=BERLIN)

    assert stats.conversations == 7  # c1–c6 and c10; not the offline message, nor c8, c9, c11
    assert stats.response.answered == 5  # 30, 120, 45, 60, 20 seconds
    assert stats.response.median == 45.0
    assert stats.response.p90 == pytest.approx(96.0)
    assert stats.response.within_minute == 0.8
    assert (stats.missed.unanswered, stats.missed.offline) == (1, 1)
    assert stats.ratings.count == 4 and stats.ratings.average == 3.0
    assert stats.ratings.distribution == (1, 1, 0, 1, 1)
    low = [(r.conversation_id, r.score, r.comment) for r in stats.ratings.low]
    assert low == [("c2", 2, "Too slow"), ("c4", 1, None)]

    per_day = [(d.day.isoformat(), d.conversations, d.response.answered, d.response.median) for d in stats.per_day]
    assert per_day == [
        ("2024-03-25", 2, 2, 75.0),
        ("2024-03-26", 1, 1, 45.0),
        ("2024-03-27", 1, 0, None),
        ("2024-03-28", 1, 0, None),
        ("2024-03-29", 1, 1, 20.0),
        ("2024-03-30", 0, 0, None),
        ("2024-03-31", 1, 1, 60.0),
    ]
    cells = {(wd, h): n for wd, row in enumerate(stats.heatmap) for h, n in enumerate(row) if n}
    # Berlin time: c5 started 07:15 UTC on the first day of summer time, 09:15 local
    assert cells == {(0, 9): 2, (1, 14): 1, (2, 11): 1, (3, 10): 1, (4, 13): 1, (6, 9): 1}

    everyone = await compute_stats(seeded, start, end, zone=BERLIN)
    assert everyone.conversations == 8 and everyone.site is None  # beta's c9 too

    async with seeded.read() as conn:
        first = await first_response_of(conn, "c10")
        assert first is not None and (first.agent_seq, first.seconds) == (3, 20.0)
        assert await first_response_of(conn, "c4") is None
        assert await first_response_of(conn, "nope") is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "–"),
        (0, "0 s"),
        (4.5, "4.5 s"),
        (45, "45 s"),
        (59.6, "1 min"),
        (96, "1 min 36 s"),
        (120, "2 min"),
        (3600, "1 h"),
        (3900, "1 h 5 min"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float | None, text: str) -> None:
    assert human_seconds(seconds) == text


NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("12h", NOW - timedelta(hours=12)),
        ("2w", NOW - timedelta(weeks=2)),
        ("90m", NOW - timedelta(minutes=90)),
        ("0.5d", NOW - timedelta(hours=12)),
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-03-01T10:00:00+01:00", datetime(2024, 3, 1, 9, tzinfo=UTC)),
    ],
)
def test_since(text: str, start: datetime) -> None:
    assert since(text, NOW) == start


@pytest.mark.parametrize("text", ["soon", "7", "d7", "-3d", "2024-13-01"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="7d, 12h"):
        since(text, NOW)
