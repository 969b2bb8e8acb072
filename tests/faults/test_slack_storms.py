"""Case 5: 200 visitor lines in 5 conversations while Slack rate-limits, or fails at random."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

import pytest

from tests.fakes.slack_api import Call, FakeSlack
from tests.faults.conftest import TunedFactory
from tests.faults.helpers import doubles, thread_lines
from tests.harness import RunningBridge, Visitor, root_of

#: (visitor, channel): three conversations in the site's channel, two in the sales topic's
PEOPLE = [("Ann", "C0SUPPORT"), ("Bob", "C0SALES"), ("Cid", "C0SUPPORT"), ("Dee", "C0SALES"), ("Eve", "C0SUPPORT")]
LINES = 40  # per conversation: 200 in all
ROUNDS = 4
POSTING = ("chat.postMessage", "chat.update")


def _line(name: str, i: int) -> str:
    return f"{name} line {i:02d}"


async def _storm(bridge: RunningBridge, slack: FakeSlack, next_round: Callable[[int], bool]) -> dict[str, str]:
    """Start the five conversations, then send their 200 lines in rounds; the thread root of each."""
    visitors = [Visitor(bridge.url) for _ in PEOPLE]
    try:
        roots: dict[str, str] = {}
        for v, (name, channel) in zip(visitors, PEOPLE, strict=True):
            await v.start(name=name, **({"topic": "sales"} if channel == "C0SALES" else {}))
        for name, channel in PEOPLE:
            root = await slack.wait_for(partial(root_of, slack, channel, name), 30, f"{name}'s thread root")
            roots[name] = root["ts"]

        async def say(v: Visitor, name: str, lines: range) -> None:
            for i in lines:
                status, body = await v.say(_line(name, i), f"{name}-{i}")
                assert status == 201, body

        per_round = LINES // ROUNDS
        for r in range(ROUNDS):
            await slack.wait_for(partial(next_round, r), 30, f"the fake to be ready for round {r}")
            lines = range(r * per_round, (r + 1) * per_round)
            await asyncio.gather(*(say(v, name, lines) for v, (name, _) in zip(visitors, PEOPLE, strict=True)))
        await bridge.wait_idle(timeout=90)
        return roots
    finally:
        for v in visitors:
            await v.close()


def _assert_all_once_in_order(slack: FakeSlack, roots: dict[str, str]) -> None:
    for name, channel in PEOPLE:
        got = thread_lines(slack, roots[name], channel)
        assert got == [_line(name, i) for i in range(LINES)], f"{name}'s thread: {got}"
    assert not doubles(slack, "C0SUPPORT", "C0SALES"), "a delivery was posted twice"


def _early_requests(slack: FakeSlack) -> list[tuple[Call, Call]]:
    """(429 answer, a later request to the same channel sent before that answer's Retry-After ended)."""
    calls = [c for c in slack.calls if c.method in POSTING]
    early = []
    for limited in calls:
        if limited.status != 429 or not limited.retry_after:
            continue
        channel = limited.params.get("channel")
        until = limited.at + limited.retry_after
        for later in calls:
            # a request arriving within 0.2 s may have been on its way before the bridge read the 429;
            # one sent after it would wait for the pacer's next slot (a second) at the least
            if later.params.get("channel") == channel and limited.at + 0.2 < later.at < until - 0.005:
                early.append((limited, later))
    return early


@pytest.mark.slow
async def test_rate_limit_storm_delivers_everything_once_in_order(
    tuned_bridge: TunedFactory, fake_slack: FakeSlack
) -> None:
    bridge = await tuned_bridge(rate_messages_per_minute=1000)
    fake_slack.fail_for("chat.postMessage", seconds=10, status=429, retry_after=2)

    def limited() -> list[Call]:
        return [c for c in fake_slack.calls_to("chat.postMessage") if c.status == 429]

    # the rounds go out while Slack keeps answering 429: each after a few more refusals
    roots = await _storm(bridge, fake_slack, lambda r: len(limited()) >= 2 * r)

    _assert_all_once_in_order(fake_slack, roots)
    assert len(limited()) >= 5, "the 429 window was not exercised"
    assert all(c.retry_after for c in limited())
    early = _early_requests(fake_slack)
    assert not early, f"requests before Retry-After ended: {early[:3]}"
    window_end = min(c.at for c in limited()) + 10
    assert any(c.status == 200 and c.at > window_end for c in fake_slack.calls_to("chat.postMessage"))


@pytest.mark.slow
async def test_random_failures_deliver_everything_once_in_order(
    tuned_bridge: TunedFactory, fake_slack: FakeSlack
) -> None:
    # 1 s client timeout against 1.5 s holds: "timeout" faults are real client-side timeouts
    bridge = await tuned_bridge(slack_timeout=1, rate_messages_per_minute=1000)
    await fake_slack.wait_for(lambda: fake_slack.calls_to("auth.test"), message="the bridge's auth.test")
    # ambiguous answers: some of these posts landed (accept_then_*), most did not; only a look can tell
    kinds = ("500", "502_html", "timeout", "accept_then_drop", "accept_then_timeout")
    fake_slack.random_faults("chat.postMessage", rate=0.3, kinds=kinds, seed=5, hold=1.5)
    for method in ("conversations.replies", "conversations.history"):
        fake_slack.random_faults(method, rate=0.3, kinds=("500", "502_html", "timeout"), seed=6, hold=1.5)

    def posts() -> list[Call]:
        return fake_slack.calls_to("chat.postMessage")

    roots = await _storm(bridge, fake_slack, lambda r: len(posts()) >= 5 + 3 * r)

    _assert_all_once_in_order(fake_slack, roots)
    faults = {c.fault for c in posts() if c.fault}
    assert {"accept_then_drop", "accept_then_hold"} & faults, f"no post landed ambiguously: {faults}"
    assert len(faults) >= 3, f"too few kinds of faults were exercised: {faults}"
