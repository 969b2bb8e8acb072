"""The visitor → Slack machinery against its ceiling (issue 24, target 3: ≥ 0.5).

The same load three times in one run, against the same fake Slack without limits: a sitechat (pace
lifted), a bare aiohttp WebSocket → ``chat.postMessage`` relay that stores nothing, and that relay storing
each line and its outbox row in SQLite before answering (``--mode stored`` of ``bench/relay_server.py``:
what storing alone costs), each in a child process of its own. Prints each one's sustainable rate (lines
until all are in Slack ÷ seconds) and the ratios to the bare relay.

Run: .venv/bin/python bench/relay_ceiling.py [--visitors 16] [--messages 50] [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import figure
from bench.relay_load import run

TARGET = 0.5


async def main(visitors: int, messages: int, tiny: bool) -> None:
    bare = await run("bare", visitors, messages)
    stored = await run("stored", visitors, messages)
    bridge = await run("bridge", visitors, messages)
    for r in (bare, stored, bridge):
        print(
            f"{r.mode:7} {r.messages} lines in {r.seconds:.2f} s: {r.rate:.0f} lines/s,"
            f" CPU {r.cpu_ms_per_message:.2f} ms/line"
        )
    ratio = bridge.rate / bare.rate
    print(f"ratio:  {ratio:.2f} of the bare relay; order inversions: {bridge.inversions}")
    figure(
        "3. (context) the bare relay storing each line in SQLite / bare relay",
        "—",
        f"{stored.rate / bare.rate:.2f} ({stored.rate:.0f} lines/s, CPU {stored.cpu_ms_per_message:.2f} ms/line)",
        None,
    )
    figure(
        "3. visitor → Slack rate / bare relay",
        f"≥ {TARGET:g}",
        f"{ratio:.2f} ({bridge.rate:.0f} vs {bare.rate:.0f} lines/s)",
        None if tiny else ratio >= TARGET and bridge.inversions == 0,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=16)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--tiny", action="store_true", help="seconds, not a measurement: 3 visitors × 3 lines")
    args = parser.parse_args()
    if args.tiny:
        args.visitors, args.messages = 3, 3
    asyncio.run(main(args.visitors, args.messages, args.tiny))
