"""Reminders that respect people (CONTRACT §8), end to end through the widget API and the fake Slack: after
the alert time, then after twice the time, up to the most; a real mention per SITECHAT_REMINDER_MENTION with
everything else escaped; the first agent reply stops them; none outside office hours (they begin when the
hours open); the visitor told once; each reminder once with two instances on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import BridgeFactory
from tests.e2e.agent_day import reminders, system_lines
from tests.fakes.slack_api import FakeSlack
from tests.harness import SlackAgent, Visitor, root_of, timer_rounds, timer_rounds_past

TOLD = "We've let the team know — someone will be with you shortly."
NO_GREETING = {"auto_greeting_seconds": "0"}


def _posted_at(slack: FakeSlack) -> list[float]:
    """When each reminder reached Slack (the fake's monotonic clock)."""
    return [c.at for c in slack.calls_to("chat.postMessage") if "⏰" in str(c.params.get("text")) and c.status == 200]


async def test_reminders_double_stop_at_the_most_mention_the_channel_and_tell_the_visitor_once(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack, first_response_alert_seconds=0.3, site=NO_GREETING)
    began = timer_rounds(bridge)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="<!channel> Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        assert (await visitor.say("Hello?"))[0] == 201
        posted = await fake_slack.wait_for(
            lambda: len(reminders(fake_slack, root)) == 3 and reminders(fake_slack, root)
        )
        for number, post in enumerate(posted, start=1):
            # the one real mention; the visitor's name is escaped like everything visitors type
            assert post["text"].startswith("<!here> ⏰ &lt;!channel&gt; Ann has been waiting "), post["text"]
            assert post["text"].endswith(f"for a reply (reminder {number} of 3)."), post["text"]
        first, second, third = _posted_at(fake_slack)
        assert second - first >= 0.55 and third - second >= 1.15  # twice the time, then twice again
        await timer_rounds_past(began, datetime.now(UTC) + timedelta(seconds=3), "a fourth reminder's time")
        assert len(reminders(fake_slack, root)) == 3
        told = await system_lines(visitor)
        assert [(m["text"], m["author"]) for m in told] == [(TOLD, {"role": "system", "name": "Acme"})]
    finally:
        await visitor.close()


async def test_the_first_agent_reply_stops_them_and_a_new_wait_starts_over(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack, first_response_alert_seconds=0.3, site=NO_GREETING)
    began = timer_rounds(bridge)
    visitor, agent = Visitor(bridge.url), SlackAgent(bridge.url, fake_slack)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        await visitor.say("Hello?")
        await fake_slack.wait_for(lambda: reminders(fake_slack, root), message="the first reminder")
        assert (await agent.reply("C0SUPPORT", root["ts"], "Hi Ann, how can I help?"))[0] == 200
        await timer_rounds_past(began, datetime.now(UTC) + timedelta(seconds=2), "a second reminder's time")
        assert len(reminders(fake_slack, root)) == 1
        await visitor.say("Do you ship to Norway?")  # a new wait: its reminders count from one again
        again = await fake_slack.wait_for(lambda: len(reminders(fake_slack, root)) == 3 and reminders(fake_slack, root))
        assert [m["text"].rsplit("(", 1)[1] for m in again] == [
            "reminder 1 of 3).",
            "reminder 1 of 3).",
            "reminder 2 of 3).",
        ]
        assert [m["text"] for m in await system_lines(visitor)].count(TOLD) == 1
    finally:
        await visitor.close()
        await agent.close()


@pytest.mark.parametrize(
    ("mention", "starts"),
    [("S0SUPPORT", "<!subteam^S0SUPPORT> ⏰ Ann"), ("U0LEAD", "<@U0LEAD> ⏰ Ann"), ("none", "⏰ Ann")],
)
async def test_the_mention_is_the_configured_one(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, mention: str, starts: str
) -> None:
    bridge = await make_bridge(
        fake_slack, first_response_alert_seconds=0.2, reminder_max=1, reminder_mention=mention, site=NO_GREETING
    )
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        await visitor.say("Hello?")
        [post] = await fake_slack.wait_for(lambda: reminders(fake_slack, root), message="the reminder")
        assert post["text"].startswith(starts) and post["text"].endswith("for a reply."), post["text"]
    finally:
        await visitor.close()


async def test_none_outside_office_hours_they_begin_when_the_hours_open(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    opens = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    hours = f"{opens:%a} {opens:%H:%M}-{opens + timedelta(hours=1):%H:%M} UTC"
    bridge = await make_bridge(
        fake_slack,
        first_response_alert_seconds=0.3,
        reminder_max=2,
        inactivity_close_minutes=600,
        site={**NO_GREETING, "office_hours": hours},
    )
    assert bridge.runtime is not None
    timers = bridge.runtime.timers
    began = timer_rounds(bridge)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        await visitor.say("Anyone there tonight?")
        await timer_rounds_past(began, datetime.now(UTC) + timedelta(seconds=1.5), "the reminders' time")
        await bridge.wait_idle()
        assert reminders(fake_slack, root) == [] and await system_lines(visitor) == []
        # three hours on (for the timers): the hours open, and the reminders begin
        shift = opens - datetime.now(UTC) + timedelta(seconds=1)
        timers.clock = lambda: datetime.now(UTC) + shift
        posted = await fake_slack.wait_for(
            lambda: len(reminders(fake_slack, root)) == 2 and reminders(fake_slack, root)
        )
        assert "has been waiting 3 h" in posted[0]["text"] or "has been waiting 2 h 59 min" in posted[0]["text"]
        assert [m["text"] for m in await system_lines(visitor)] == [TOLD]
    finally:
        await visitor.close()


async def test_a_greeting_already_told_the_visitor(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(
        fake_slack, first_response_alert_seconds=0.6, reminder_max=1, site={"auto_greeting_seconds": "0.2"}
    )
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        await visitor.say("Hello?")
        await fake_slack.wait_for(lambda: reminders(fake_slack, root), message="the reminder")
        lines = [m["text"] for m in await system_lines(visitor)]
        assert len(lines) == 1 and lines[0].startswith("Hi Ann, thanks for reaching out to Acme."), lines
    finally:
        await visitor.close()


async def test_each_reminder_once_with_two_instances_on_postgresql(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, postgres_url: str
) -> None:
    options = {"first_response_alert_seconds": 0.3, "site": NO_GREETING}
    first = await make_bridge(fake_slack, database_url=postgres_url, **options)
    second = await make_bridge(fake_slack, database_url=postgres_url, **options)
    began = [timer_rounds(first), timer_rounds(second)]
    visitor = Visitor(first.url)
    try:
        await visitor.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        await visitor.say("Hello?")
        await fake_slack.wait_for(lambda: len(reminders(fake_slack, root)) >= 3, message="three reminders")
        moment = datetime.now(UTC) + timedelta(seconds=3)
        for each in began:
            await timer_rounds_past(each, moment, "a fourth reminder's time, on both instances")
        await first.wait_idle()
        await second.wait_idle()
        posted = reminders(fake_slack, root)
        assert [m["text"].rsplit("(", 1)[1] for m in posted] == [f"reminder {n} of 3)." for n in (1, 2, 3)]
        assert [m["text"] for m in await system_lines(visitor)] == [TOLD]
    finally:
        await visitor.close()
