"""CPU time the bridge spends per relayed visitor message (issue 24, target 1: ≤ 3 ms), with the SQL
statements, transactions and aiosqlite hand-offs it takes per message.

One sitechat in a child process (the fake Slack's URL, ``SLACK_POSTS_PER_SECOND`` lifted), N visitors on
WebSockets each sending M lines as fast as they are answered; the child's process CPU time (all its
threads) over the steady part ÷ the lines that reached Slack. Once on SQLite, then on a fresh PostgreSQL
database on the local server (127.0.0.1:5432, as the tests use).

Run: .venv/bin/python bench/cpu_per_message.py [--visitors 16] [--messages 50] [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import figure
from bench.relay_load import Result, run
from tests.conftest import fresh_postgres

TARGET_MS = 3.0


async def main(visitors: int, messages: int, tiny: bool) -> None:
    r = await run("bridge", visitors, messages)
    report("SQLite", r, visitors, tiny)
    async with fresh_postgres() as url:
        report("PostgreSQL", await run("bridge", visitors, messages, url), visitors, tiny)


def report(backend: str, r: Result, visitors: int, tiny: bool) -> None:
    print(f"{backend}: {r.messages} lines from {visitors} visitors in {r.seconds:.2f} s ({r.rate:.0f} lines/s)")
    print(f"CPU:          {r.cpu_seconds:.2f} s = {r.cpu_ms_per_message:.2f} ms per line")
    print(f"statements:   {r.per_message(r.statements):.1f} per line")
    print(f"transactions: {r.per_message(r.transactions):.1f} per line")
    if backend == "SQLite":
        print(f"hand-offs:    {r.per_message(r.handoffs):.1f} aiosqlite calls per line")
    else:
        print(f"round trips:  {r.per_message(r.round_trips):.1f} per line (BEGIN, COMMIT and the pool's checks too)")
    print(f"inversions:   {r.inversions}")
    met = None if tiny else r.cpu_ms_per_message <= TARGET_MS
    cpu = f"{r.cpu_ms_per_message:.2f} ms"
    figure(f"1. CPU per message, visitor → Slack ({backend})", f"≤ {TARGET_MS:g} ms", cpu, met)
    figure(f"1. SQL statements per message ({backend})", "(fewer)", f"{r.per_message(r.statements):.1f}", None)
    figure(f"1. transactions per message ({backend})", "(fewer)", f"{r.per_message(r.transactions):.1f}", None)
    if backend != "SQLite":
        figure(f"1. round trips per message ({backend})", "(fewer)", f"{r.per_message(r.round_trips):.1f}", None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=16)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--tiny", action="store_true", help="seconds, not a measurement: 3 visitors × 3 lines")
    args = parser.parse_args()
    if args.tiny:
        args.visitors, args.messages = 3, 3
    asyncio.run(main(args.visitors, args.messages, args.tiny))
