"""How long ``sitechat export`` takes over a year of chats, and how much memory it needs.

Seeds 100,000 conversations (about 370,000 messages; batched inserts) into a SQLite file in /tmp and,
with ``--postgres``, into a fresh PostgreSQL database; then runs ``sitechat export`` as a child
process in each format and prints its time and peak RSS beside the same command over an empty period
(the interpreter and libraries alone): the difference is what the rows cost. Streaming keeps it flat.

Run: .venv/bin/python bench/export.py [--conversations 100000] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bridge.store.database import Database  # noqa: E402
from tests.harness import ORIGIN, clean_environment  # noqa: E402
from tests.seeding import Seeded, demo_conversations, seed  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def year_of_chats(count: int, end: datetime) -> Iterator[Seeded]:
    """``count`` demo chats spread over the 365 days before ``end``."""
    # a week holds about 5.5 weekdays' worth (weekends are quieter): a little more than needed, cut at count
    per_weekday = math.ceil(count * 1.1 / (52 * 5.5))
    return islice(demo_conversations(end - timedelta(days=365), 365, per_weekday=per_weekday), count)


async def fill(url: str, count: int, end: datetime) -> float:
    db = Database(url)
    try:
        await db.migrate()
        started = time.monotonic()
        written = await seed(db, year_of_chats(count, end), batch=2000)
        assert written == count, f"seeded only {written}"
        return time.monotonic() - started
    finally:
        await db.close()


#: starts the export from a small process: a child's peak RSS counts what it inherited at fork, and this
#: bench process is large after seeding
LAUNCHER = """
import os, resource, subprocess, sys, time
started = time.monotonic()
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def run_export(env_file: Path, cwd: Path, *args: str) -> tuple[float, int, int]:
    """``sitechat export ARGS`` in a child process: (seconds, peak RSS in KiB, exit code)."""
    command = [sys.executable, "-m", "sitechat", "export", "--env-file", str(env_file), *args]
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], cwd=cwd, env=clean_environment(), capture_output=True, text=True
    )
    seconds, rss, code = done.stdout.split()
    if code != "0":
        print(done.stderr, file=sys.stderr)
    return float(seconds), int(rss), int(code)


def rows_in(path: Path, fmt: str) -> int:
    with path.open(encoding="utf-8", newline="") as f:
        if fmt == "csv":
            return sum(1 for _ in csv.reader(f)) - 1
        return sum(1 for line in f if json.loads(line))


def measure(name: str, url: str, work: Path) -> None:
    env_file = work / f"{name}.env"
    env_file.write_text(
        f"SITECHAT_DATABASE_URL={url}\nSLACK_BOT_TOKEN=xoxb-bench\nSLACK_SIGNING_SECRET=bench\n"
        f"SITECHAT_SITES__ACME__NAME=Acme\nSITECHAT_SITES__ACME__ORIGINS={ORIGIN}\n"
        "SITECHAT_SITES__ACME__SLACK_CHANNEL=C0SUPPORT\n"
    )
    env_file.chmod(0o600)
    base_s, base_rss, _ = run_export(env_file, work, "--since", "1m", "--format", "csv", "--out", "empty.csv")
    print(f"  {name}: empty period                    {base_s:6.2f} s  peak RSS {base_rss / 1024:6.1f} MiB")
    for fmt in ("csv", "jsonl"):
        out = work / f"{name}.{fmt}"
        seconds, rss, code = run_export(env_file, work, "--since", "400d", "--format", fmt, "--out", str(out))
        rows = rows_in(out, fmt) if code == 0 else 0
        size = out.stat().st_size / 2**20 if code == 0 else 0
        print(
            f"  {name}: {fmt:5} {rows:>8,} rows {size:6.1f} MiB {seconds:6.2f} s  peak RSS {rss / 1024:6.1f} MiB"
            f"  (+{(rss - base_rss) / 1024:.1f} MiB over the empty period)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true", help=f"also on PostgreSQL ({PG_ADMIN})")
    args = parser.parse_args()
    end = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        work = Path(tmp)
        sqlite_url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
        seconds = await fill(sqlite_url, args.conversations, end)
        size = (work / "bench.db").stat().st_size / 2**20
        print(f"seeded {args.conversations:,} conversations into SQLite in {seconds:.1f} s ({size:.0f} MiB)")
        measure("sqlite", sqlite_url, work)
        if args.postgres:
            name = f"sitechat_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
                url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
                seconds = await fill(url, args.conversations, end)
                print(f"seeded {args.conversations:,} conversations into PostgreSQL in {seconds:.1f} s")
                await asyncio.to_thread(measure, "postgresql", url, work)
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
