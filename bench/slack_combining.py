"""How many Slack posts a burst of visitor lines costs, behind Slack's ~1 post/s per channel.

Runs a real sitechat against the fake Slack (with its per-channel rate limit on) and prints, in one
run: lines sent, posts made, lines per post, the largest post (Slack recommends at most 4,000 characters),
and 429s met. Run: .venv/bin/python bench/slack_combining.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, Visitor, acme_settings

CONVERSATIONS = 5
LINES = 40


async def main() -> None:
    async with FakeSlack() as slack:
        slack.rate_limit("chat.postMessage", per_second=1.0, burst=3)
        with tempfile.TemporaryDirectory() as tmp:
            bridge = RunningBridge(acme_settings(f"sqlite+aiosqlite:///{tmp}/bench.db", slack))
            await bridge.start()
            visitors = [Visitor(bridge.url) for _ in range(CONVERSATIONS)]
            try:
                for i, v in enumerate(visitors):
                    await v.start(name=f"Visitor {i}")
                await bridge.wait_idle(60)
                before = len(slack.calls_to("chat.postMessage"))
                started = time.monotonic()
                await asyncio.gather(*(v.say(f"line {n}") for n in range(LINES) for v in visitors))
                await bridge.wait_idle(300)
                elapsed = time.monotonic() - started
                posts = [c for c in slack.calls_to("chat.postMessage")[before:] if c.status == 200]
                limited = [c for c in slack.calls_to("chat.postMessage")[before:] if c.status == 429]
            finally:
                for v in visitors:
                    await v.close()
                await bridge.stop()
    lines = CONVERSATIONS * LINES
    print(f"visitor lines: {lines} in {CONVERSATIONS} conversations, one channel")
    print(f"Slack posts:   {len(posts)}  ({lines / max(1, len(posts)):.1f} lines per post)")
    print(f"largest post:  {max((len(str(c.params.get('text', ''))) for c in posts), default=0)} characters")
    print(f"429 answers:   {len(limited)}")
    print(f"drained in:    {elapsed:.1f} s  ({lines / elapsed:.1f} lines/s against ~1 post/s)")


if __name__ == "__main__":
    asyncio.run(main())
