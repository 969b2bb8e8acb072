"""The report into the team chats (CONTRACT §9): ``sitechat report --post`` as an admin runs it beside a
running bridge, and ``SITECHAT_REPORT_SCHEDULE`` posting once across two instances on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.report_posts import once_key
from config.schedule import Weekly
from sitechat.insight.posting import ReportSchedule
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import ORIGIN, SIGNING_SECRET, Visitor, run_sitechat, wait_until

PNG = b"\x89PNG\r\n\x1a\n"


def _posts(slack: FakeSlack, channel: str = "C0SUPPORT") -> list[dict[str, object]]:
    return [m for m in slack.messages(channel) if m.get("files")]


async def test_report_post_reaches_the_channel_through_the_running_bridge(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, sqlite_url: str, tmp_path: Path
) -> None:
    bridge = await make_bridge(fake_slack, database_url=sqlite_url)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        await visitor.say("Where is my order?")
    finally:
        await visitor.close()
    env_file = tmp_path / "sitechat.env"
    env_file.write_text(
        "\n".join(
            [
                f"SITECHAT_DATABASE_URL={sqlite_url}",
                "SLACK_BOT_TOKEN=xoxb-test",
                f"SLACK_SIGNING_SECRET={SIGNING_SECRET}",
                f"SLACK_API_URL={fake_slack.api_url}",
                "SITECHAT_SITES__ACME__NAME=Acme",
                f"SITECHAT_SITES__ACME__ORIGINS={ORIGIN}",
                "SITECHAT_SITES__ACME__SLACK_CHANNEL=C0SUPPORT",
            ]
        )
    )
    code, text = await run_sitechat("report", "--env-file", str(env_file), "--post", cwd=tmp_path)
    assert code == 0, text
    assert "Posting acme's report to C0SUPPORT (slack)" in text and "Conversations: 1" in text, text
    assert (tmp_path / "report.png").read_bytes().startswith(PNG)

    # the command only queued it: the running bridge posts it, as a file in the channel (no thread)
    [post] = await wait_until(lambda: _posts(fake_slack), 15, "the report in the channel")
    assert post.get("thread_ts") is None
    assert "Acme" in str(post["text"]) and "Conversations: 1" in str(post["text"])
    [picture] = [f for f in fake_slack.files if f.data.startswith(PNG)]
    assert picture.name.startswith("sitechat-report-acme-")
    await bridge.wait_idle()
    assert len(_posts(fake_slack)) == 1


async def test_the_weekly_report_is_posted_once_by_two_instances(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, postgres_url: str
) -> None:
    first = await make_bridge(fake_slack, database_url=postgres_url)
    second = await make_bridge(fake_slack, database_url=postgres_url)
    now = datetime.now(UTC)
    # the schedule's moment was a minute ago, in the site's zone (UTC: no office hours)
    moment = (now - timedelta(minutes=1)).replace(second=0, microsecond=0)
    schedule = Weekly(moment.weekday(), moment.time())
    schedules = []
    for bridge in (first, second):
        assert bridge.runtime is not None and bridge.runtime.widget.files is not None
        schedules.append(ReportSchedule(bridge.runtime.widget.files, bridge.settings, schedule, clock=lambda: now))
    posted = await asyncio.gather(*(s.post_due() for s in schedules))
    assert sorted(posted, key=len) == [[], ["acme"]], "exactly one instance posts it"
    # and looking again later (the next tick, another restart) posts nothing more
    assert await schedules[0].post_due() == [] and await schedules[1].post_due() == []

    [post] = await wait_until(lambda: _posts(fake_slack), 15, "the weekly report in the channel")
    assert post.get("thread_ts") is None
    for bridge in (first, second):
        await bridge.wait_idle()
    assert len(_posts(fake_slack)) == 1
    assert once_key("acme", moment) == f"report:acme:{moment:%Y-%m-%dT%H:%M}"


async def test_a_moment_missed_by_more_than_a_day_is_skipped(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, sqlite_url: str
) -> None:
    bridge = await make_bridge(fake_slack, database_url=sqlite_url)
    assert bridge.runtime is not None and bridge.runtime.widget.files is not None
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=2)
    schedule = Weekly(long_ago.weekday(), long_ago.time().replace(second=0, microsecond=0))
    assert (
        await ReportSchedule(bridge.runtime.widget.files, bridge.settings, schedule, clock=lambda: now).post_due() == []
    )
