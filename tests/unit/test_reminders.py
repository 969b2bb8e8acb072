"""Reminders that respect people (``bridge/reminders.py``): the schedule as tables — doubling intervals, the
most there are, the first agent reply, office hours (a reminder due outside them goes out when they open)
— the same schedule played by the real timers against a real store, and how Slack shows the mention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import ValidationError

from adapters.slack.people import attention, reminder_post
from bridge.conversations import Conversations
from bridge.live import LiveHub
from bridge.model import Participant, Role, Visitor
from bridge.reminders import Reminders, next_opening, reminder_text, schedule
from bridge.steps import agent_says
from bridge.store import conversations as q
from bridge.store.database import Database
from bridge.store.tables import delivery
from config.office_hours import OfficeHours
from config.settings import Settings
from tests.harness import acme_settings

MINUTE = timedelta(minutes=1)
WEEKDAYS = OfficeHours.parse("Mon-Fri 09:00-17:00 UTC")
BERLIN = OfficeHours.parse("Mon-Fri 09:00-17:00 Europe/Berlin")
FRIDAY_NIGHTS = OfficeHours.parse("Fri 22:00-06:00 UTC")


def at(text: str) -> datetime:
    """``"Mon 10:00"`` in the week of Monday 3 June 2024 (UTC); ``"Mon+ 09:00"`` is the Monday after."""
    day, clock = text.split()
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    offset = 7 if day.endswith("+") else 0
    hour, minute, *second = (int(n) for n in clock.split(":"))
    start = datetime(2024, 6, 3, tzinfo=UTC) + timedelta(days=days.index(day.rstrip("+")) + offset)
    return start.replace(hour=hour, minute=minute, second=second[0] if second else 0)


# (visitor wrote, answered or None, most, office hours) → the reminders, with the first due after a minute
SCHEDULES: dict[str, tuple[str, str | None, int, OfficeHours | None, list[str]]] = {
    "doubling intervals: 1, then 2, then 4 minutes later": (
        "Mon 10:00",
        None,
        3,
        None,
        ["Mon 10:01", "Mon 10:03", "Mon 10:07"],
    ),
    "the most there are": (
        "Mon 10:00",
        None,
        5,
        None,
        ["Mon 10:01", "Mon 10:03", "Mon 10:07", "Mon 10:15", "Mon 10:31"],
    ),
    "one at most": ("Mon 10:00", None, 1, None, ["Mon 10:01"]),
    "none at all": ("Mon 10:00", None, 0, None, []),
    "the first agent reply stops them": ("Mon 10:00", "Mon 10:02", 3, None, ["Mon 10:01"]),
    "an answer within the minute: no reminder": ("Mon 10:00", "Mon 10:00:30", 3, None, []),
    "within office hours as without": ("Mon 10:00", None, 3, WEEKDAYS, ["Mon 10:01", "Mon 10:03", "Mon 10:07"]),
    "the hours close between two: the next when they open": (
        "Mon 16:58:30",
        None,
        3,
        WEEKDAYS,
        ["Mon 16:59:30", "Tue 09:00", "Tue 09:04"],
    ),
    "written on Friday evening: Monday morning": (
        "Fri 16:59:30",
        None,
        3,
        WEEKDAYS,
        ["Mon+ 09:00", "Mon+ 09:02", "Mon+ 09:06"],
    ),
    "written at the weekend": ("Sat 12:00", None, 3, WEEKDAYS, ["Mon+ 09:00", "Mon+ 09:02", "Mon+ 09:06"]),
    "answered before the hours open: none": ("Sat 12:00", "Sun 18:00", 3, WEEKDAYS, []),
    "the hours' own time zone (Berlin is UTC+2 in June)": (
        "Sat 12:00",
        None,
        2,
        BERLIN,
        ["Mon+ 07:00", "Mon+ 07:02"],
    ),
    "an overnight span, the week after": ("Sat 05:59:30", None, 2, FRIDAY_NIGHTS, ["Fri+ 22:00", "Fri+ 22:02"]),
}


@pytest.mark.parametrize(("wrote", "answered", "most", "hours", "expected"), SCHEDULES.values(), ids=SCHEDULES.keys())
def test_the_schedule(
    wrote: str, answered: str | None, most: int, hours: OfficeHours | None, expected: list[str]
) -> None:
    got = schedule(at(wrote), first=MINUTE, most=most, hours=hours, answered_at=at(answered) if answered else None)
    assert got == [at(t) for t in expected]


def test_hours_open_a_minute_a_week_remind_once_a_week() -> None:
    rare = OfficeHours.parse("Mon 09:00-09:01 UTC")
    assert next_opening(rare, at("Mon 09:00:30")) == at("Mon 09:00:30")
    assert next_opening(rare, at("Mon 09:01")) == at("Mon+ 09:00")
    week = timedelta(days=7)
    assert schedule(at("Mon 09:00"), first=MINUTE, most=3, hours=rare) == [
        at("Mon+ 09:00"),
        at("Mon+ 09:00") + week,
        at("Mon+ 09:00") + 2 * week,
    ]


def test_the_reminder_says_who_waits_how_long_and_which_one_it_is() -> None:
    assert (
        reminder_text("Ann", timedelta(seconds=95), 2, 3)
        == "⏰ Ann has been waiting 1 min 35 s for a reply (reminder 2 of 3)."
    )
    assert reminder_text(None, timedelta(seconds=60), 1, 1) == "⏰ A visitor has been waiting 1 min for a reply."


# SITECHAT_REMINDER_MENTION → what Slack gets before the reminder's (escaped) text
MENTIONS = {
    "here": "<!here>",
    "channel": "<!channel>",
    "none": "",
    "U0LEAD": "<@U0LEAD>",
    "W0LEAD": "<@W0LEAD>",
    "S0SUPPORT": "<!subteam^S0SUPPORT>",
}


@pytest.mark.parametrize(("mention", "slack"), MENTIONS.items())
def test_slack_mentions_as_configured_and_escapes_the_rest(mention: str, slack: str) -> None:
    assert attention(mention) == slack
    text = "⏰ <!channel> & <@U1> has been waiting 1 min for a reply."
    escaped = "⏰ &lt;!channel&gt; &amp; &lt;@U1&gt; has been waiting 1 min for a reply."
    assert reminder_post(text, mention) == (f"{slack} {escaped}" if slack else escaped)


@pytest.mark.parametrize("value", ["here", "HERE", " channel ", "none", "U0123ABCD", "W0123ABCD", "S0123ABCD"])
def test_mention_settings_taken(value: str) -> None:
    settings = Settings(_env_file=None, reminder_mention=value)  # type: ignore[call-arg]
    assert settings.reminder_mention in ("here", "channel", "none", value)


@pytest.mark.parametrize("value", ["everyone", "@here", "<@U0123>", "u0123abcd", "C0123ABCD", ""])
def test_mention_settings_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="use here, channel, none"):
        Settings(_env_file=None, reminder_mention=value)  # type: ignore[call-arg]


def test_reminder_settings_default() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.reminder_max, settings.reminder_mention) == (3, "here")


# -- the timers play the same schedule against a real store -------------------------------------------


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    await database.migrate()
    yield database
    await database.close()


async def _waiting_visitor(db: Database, wrote: datetime, office_hours: str | None) -> tuple[Conversations, str]:
    site = {"slack_channel": "C0SUPPORT", "auto_greeting_seconds": 0}
    if office_hours:
        site["office_hours"] = office_hours
    settings = acme_settings("sqlite+aiosqlite://", site=site, slack_bot_token="xoxb-x", slack_signing_secret="s")
    conversations = Conversations(db, settings.sites, ["slack"], LiveHub(), clock=lambda: wrote)
    new = await conversations.start(
        "acme", visitor=Visitor("Ann"), topic=None, page=None, locale=None, timezone=None, client_address="1.2.3.4"
    )
    await conversations.post_visitor_message(new.conversation.id, "m1", "hello?")
    return conversations, new.conversation.id


async def _reminders_sent(db: Database) -> int:
    from sqlalchemy import func, select

    async with db.read() as conn:
        found = await conn.execute(select(func.count()).where(delivery.c.kind == "reminder"))
        return int(found.scalar_one())


@pytest.mark.parametrize(
    ("wrote", "hours", "expected"),
    [
        ("Mon 10:00", None, ["Mon 10:01", "Mon 10:03", "Mon 10:07"]),
        ("Fri 16:59:30", "Mon-Fri 09:00-17:00 UTC", ["Mon+ 09:00", "Mon+ 09:02", "Mon+ 09:06"]),
    ],
)
async def test_the_timers_keep_the_schedule_each_reminder_once(
    db: Database, wrote: str, hours: str | None, expected: list[str]
) -> None:
    conversations, _ = await _waiting_visitor(db, at(wrote), hours)
    site = conversations.core.sites["acme"]
    plan = schedule(at(wrote), first=MINUTE, most=3, hours=site.office_hours)
    assert plan == [at(t) for t in expected]
    two_instances = [Reminders(conversations.core, first=MINUTE, most=3) for _ in range(2)]
    moments = sorted({*plan, *(t - timedelta(seconds=1) for t in plan), plan[-1] + timedelta(days=1)})
    for moment in moments:
        for reminders in two_instances:
            await reminders.fire_due(moment)
        assert await _reminders_sent(db) == sum(1 for t in plan if t <= moment), moment


async def test_an_answer_starts_a_new_wait_and_the_visitor_is_told_once(db: Database) -> None:
    start = at("Mon 10:00")
    conversations, cid = await _waiting_visitor(db, start, None)
    reminders = Reminders(conversations.core, first=MINUTE, most=3)
    await reminders.fire_due(start + MINUTE)
    assert await _reminders_sent(db) == 1
    async with conversations.core.work() as work:
        conv = await q.get_conversation(work.conn, cid)
        assert conv is not None
        await agent_says(work, conv, Participant(Role.AGENT, "Alice", None, "slack:UA"), "Hi!", "slack")
    await reminders.fire_due(start + 10 * MINUTE)
    assert await _reminders_sent(db) == 1  # answered: nothing more
    later = start + 20 * MINUTE
    conversations.core.clock = lambda: later
    await conversations.post_visitor_message(cid, "again", "Still there?")  # a new wait begins
    await reminders.fire_due(later + MINUTE)
    await reminders.fire_due(later + 3 * MINUTE)
    assert await _reminders_sent(db) == 3  # the new wait's first two
    async with db.read() as conn:
        told = [m for m in await q.messages_after(conn, cid, 0) if m.author.role is Role.SYSTEM and "team" in m.text]
    assert [m.text for m in told] == ["We've let the team know — someone will be with you shortly."]
