"""Reminders that respect people (CONTRACT §8): no agent has answered a visitor's message
``SITECHAT_FIRST_RESPONSE_ALERT_SECONDS`` after it → a reminder in the thread; again after twice that
time, then twice again, up to ``SITECHAT_REMINDER_MAX``; none outside the site's office hours (a reminder
due then goes out when the hours open); the first agent reply stops them. The first one of a conversation
also tells the visitor, in their language, that the team knows — unless the greeting said so already.

The schedule is pure (``due_at``, ``next_due``, ``may_remind``; ``schedule`` plays a whole wait through
for the tests). ``Reminders.fire_due`` runs it against the store on every round of the timers: each
reminder is taken by a conditional UPDATE (``bridge/store/reminders.py``), so with several instances
polling one database each goes out once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge import craft
from bridge.insight_text import human_seconds
from bridge.outbound import Reminder
from bridge.store import conversations as q
from bridge.store import reminders as store
from bridge.texts import text, translate
from bridge.work import Core
from config.office_hours import OfficeHours

#: what the visitor is told when the first reminder goes to the team (never "wait" or "hold")
TEAM_KNOWS = text("reminder.visitor", "We've let the team know — someone will be with you shortly.")
#: a week and a day: office hours open at least once a week, or never
_LOOK_AHEAD = timedelta(days=8)


def due_at(since: datetime, sent: int, next_at: datetime | None, first: timedelta) -> datetime:
    """When the next reminder of a wait that began ``since`` is due, ``sent`` reminders in."""
    if sent == 0 or next_at is None:
        return since + first
    return next_at


def next_due(number: int, sent_at: datetime, first: timedelta) -> datetime:
    """After reminder ``number`` (1, 2, …) went out at ``sent_at``: the next is due twice the time later."""
    return sent_at + first * (1 << number)


def may_remind(hours: OfficeHours | None, now: datetime) -> bool:
    """Nobody is reminded outside the site's office hours (a site without them is always open)."""
    return hours is None or hours.is_open(now)


def next_opening(hours: OfficeHours, after: datetime) -> datetime | None:
    """The first minute at or after ``after`` inside the office hours (None: they never open)."""
    if hours.is_open(after):
        return after
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)  # hours open on whole minutes
    end = after + _LOOK_AHEAD
    while minute < end:
        if hours.is_open(minute):
            return minute
        minute += timedelta(minutes=1)
    return None


def schedule(
    wrote_at: datetime,
    *,
    first: timedelta,
    most: int,
    hours: OfficeHours | None = None,
    answered_at: datetime | None = None,
) -> list[datetime]:
    """When the reminders of one wait go out: the visitor wrote at ``wrote_at`` and an agent answered at
    ``answered_at`` (None: nobody did). What ``Reminders`` does, round by round, without the rounds."""
    sent: list[datetime] = []
    next_at: datetime | None = None
    while len(sent) < most:
        at: datetime | None = due_at(wrote_at, len(sent), next_at, first)
        if at is not None and hours is not None and not may_remind(hours, at):
            at = next_opening(hours, at)
        if at is None or (answered_at is not None and at >= answered_at):
            break
        sent.append(at)
        next_at = next_due(len(sent), at, first)
    return sent


def reminder_text(visitor_name: str | None, waited: timedelta, number: int, most: int) -> str:
    """The reminder as the thread reads it (the mention is the adapter's: ``Reminder.mention``)."""
    who = visitor_name or "A visitor"
    count = f" (reminder {number} of {most})" if most > 1 else ""
    return f"⏰ {who} has been waiting {human_seconds(waited.total_seconds())} for a reply{count}."


class Reminders:
    """The reminders of every waiting conversation, fired by ``bridge.lifecycle.Timers``."""

    def __init__(
        self,
        core: Core,
        *,
        first: timedelta,
        most: int = 3,
        mention: str = "here",
    ) -> None:
        self.core = core
        self.first = first
        self.most = most
        self.mention = mention

    async def fire_due(self, now: datetime) -> None:
        async with self.core.db.read() as conn:
            waiting = await store.due(conn, now, self.first, self.most)
        for wait in waiting:
            site = self.core.sites.get(wait.site_id)
            if due_at(wait.since, wait.sent, wait.next_at, self.first) > now:
                continue
            if not may_remind(site.office_hours if site else None, now):
                continue  # outside the site's hours: it goes out in the first round after they open
            await self._remind(wait, now)

    async def _remind(self, wait: store.Waiting, now: datetime) -> None:
        number = wait.sent + 1
        async with self.core.work() as work:
            if not await store.take(work.conn, wait, now, next_due(number, now, self.first)):
                return  # another instance sent it, or an agent answered meanwhile
            text = reminder_text(wait.visitor_name, now - wait.since, number, self.most)
            await work.enqueue_all(wait.id, Reminder(text, self.mention))
            if number == 1 and await store.take_telling(work.conn, wait.id, now):
                conv = await q.get_conversation(work.conn, wait.id)
                if conv is not None:
                    await craft.say_to_visitor(self.core, work, conv, translate(TEAM_KNOWS, conv.language))
