"""Slack's real limit (issue 24, target 5): what a rush of visitors costs in posts and in time.

A real sitechat against the fake Slack with its per-channel limit on (~1 post/s, a burst of 3, then
429 + Retry-After). 50 visitors start within 5 s and send 4 lines each; printed in one run: that every
line reached Slack once and in order, the posts that carry each conversation's lines (target ≤ 1.1; the
root is one more: CONTRACT §5 has every visitor line a reply in the thread), 429s met, and the time until
the last line is visible next to the ideal (every root and one reply per conversation, back to back at
the channel's pace) and next to what the posts made until then take at that pace (the reminders of
chats nobody answered for a minute share the channel). Then, for context, the older burst: 200 lines in 5
conversations, lines per post.

Run: .venv/bin/python bench/slack_combining.py [--visitors 50] [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import figure
from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, Visitor, acme_settings, wait_until

PER_SECOND, BURST = 1.0, 3
LINES = 4
TOKEN = re.compile(r"\bv(\d+)l(\d+)\b")


async def rush(visitors: int, within: float, tiny: bool) -> None:
    async with FakeSlack() as slack:
        slack.rate_limit("chat.postMessage", per_second=PER_SECOND, burst=BURST)
        with tempfile.TemporaryDirectory() as tmp:
            settings = acme_settings(
                f"sqlite+aiosqlite:///{tmp}/bench.db", slack, rate_conversations_per_hour=10 * visitors
            )
            bridge = RunningBridge(settings)
            await bridge.start()
            people = [Visitor(bridge.url) for _ in range(visitors)]
            started = time.monotonic()

            async def visit(i: int, v: Visitor) -> None:
                await asyncio.sleep(within * i / visitors)
                await v.start(name=f"Visitor {i}")
                for n in range(LINES):
                    status, _ = await v.say(f"v{i}l{n}")
                    assert status == 201, status

            def visible() -> dict[int, list[int]]:
                lines: dict[int, list[int]] = {}
                for c in slack.calls_to("chat.postMessage"):
                    if c.status == 200:
                        for v, n in TOKEN.findall(str(c.params.get("text", ""))):
                            lines.setdefault(int(v), []).append(int(n))
                return lines

            try:
                await asyncio.gather(*(visit(i, v) for i, v in enumerate(people)))
                await wait_until(lambda: sum(map(len, visible().values())) >= visitors * LINES, 600, "every line")
                elapsed = time.monotonic() - started
                await bridge.wait_idle(60)
                calls = slack.calls_to("chat.postMessage")
            finally:
                for v in people:
                    await v.close()
                await bridge.stop()
    lines = visible()
    once_in_order = all(lines.get(i) == list(range(LINES)) for i in range(visitors))
    ok = [c for c in calls if c.status == 200]
    replies = [c for c in ok if c.params.get("thread_ts")]
    # the posts that carry the visitors' lines; the rest of the thread's posts are the bridge's own
    # (a reminder that a visitor has waited a minute with no answer: the run outlasts that)
    carrying = [c for c in replies if TOKEN.search(str(c.params.get("text", "")))]
    roots = len(ok) - len(replies)
    per_conversation = len(carrying) / visitors
    ideal = max(0.0, (2 * visitors - BURST) / PER_SECOND)
    print(f"{visitors} visitors started within {within:g} s, {LINES} lines each, one channel at ~{PER_SECOND:g} post/s")
    print(f"every line once, in order: {once_in_order}")
    print(
        f"posts: {roots} roots + {len(carrying)} replies with the lines = {per_conversation:.2f} per conversation"
        f" (+ {len(replies) - len(carrying)} other thread posts: reminders that nobody answered yet)"
    )
    print(f"429 answers: {sum(c.status == 429 for c in calls)}")
    print(f"last line visible after {elapsed:.1f} s (ideal ≈ {ideal:.0f} s: a root and one reply each at the pace)")
    if carrying:
        last = max(c.at for c in carrying)
        until = [c for c in ok if c.at <= last]
        print(
            f"posts until then: {len(until)}, which take ≈ {max(0, len(until) - BURST) / PER_SECOND:.0f} s at the pace"
        )
    figure("5. every line once and in order", "yes", "yes" if once_in_order else "NO", once_in_order)
    figure(
        "5. posts carrying a conversation's lines (its root aside)",
        "≤ 1.1",
        f"{per_conversation:.2f}",
        None if tiny else per_conversation <= 1.1,
    )
    figure("5. last line visible", f"ideal ≈ {ideal:.0f} s", f"{elapsed:.1f} s", None)


async def burst(conversations: int = 5, per_conversation: int = 40) -> None:
    async with FakeSlack() as slack:
        slack.rate_limit("chat.postMessage", per_second=PER_SECOND, burst=BURST)
        with tempfile.TemporaryDirectory() as tmp:
            bridge = RunningBridge(acme_settings(f"sqlite+aiosqlite:///{tmp}/bench.db", slack))
            await bridge.start()
            visitors = [Visitor(bridge.url) for _ in range(conversations)]
            try:
                for i, v in enumerate(visitors):
                    await v.start(name=f"Visitor {i}")
                await bridge.wait_idle(60)
                before = len(slack.calls_to("chat.postMessage"))
                await asyncio.gather(*(v.say(f"line {n}") for n in range(per_conversation) for v in visitors))
                await bridge.wait_idle(300)
                posts = [c for c in slack.calls_to("chat.postMessage")[before:] if c.status == 200]
            finally:
                for v in visitors:
                    await v.close()
                await bridge.stop()
    lines = conversations * per_conversation
    print(f"burst: {lines} lines in {conversations} conversations → {len(posts)} posts")
    figure("5. (context) lines per post, 200-line burst", "—", f"{lines / max(1, len(posts)):.1f}", None)


async def main(visitors: int, within: float, tiny: bool) -> None:
    await rush(visitors, within, tiny)
    if not tiny:
        await burst()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--within", type=float, default=5.0, help="seconds over which the visitors start")
    parser.add_argument("--tiny", action="store_true", help="seconds, not a measurement: 3 visitors")
    args = parser.parse_args()
    if args.tiny:
        args.visitors, args.within = 3, 0.3
    asyncio.run(main(args.visitors, args.within, args.tiny))
