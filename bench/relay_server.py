"""The server side of the relay benchmarks, in a process of its own so its CPU time is its own.

``--mode bridge``: a real sitechat (SQLite, one Slack endpoint pointed at ``--slack-url``, the pace lifted
and the abuse limits raised out of the way), counting SQL statements, transactions and aiosqlite
hand-offs. ``--mode bare``: the ceiling — an aiohttp WebSocket that relays each text frame to
``chat.postMessage`` and answers it, storing nothing. ``--mode stored``: the bare relay with the least
storing a durable relay does (``serve_bare``), to tell what storing costs from what the rest costs.

It prints ``ready`` once it listens, then answers each ``mark`` line on stdin with one JSON line
(process CPU seconds and the counters so far); ``quit`` (or end of stdin) stops it.

Profiling the steady part in-process (py-spy cannot attach everywhere): ``BENCH_CPROFILE=out.prof``
runs cProfile from the first ``mark`` to the second and writes its stats there (read them with
``python -m pstats out.prof``); ``BENCH_SQL=out.txt`` writes how often each SQL statement ran between
those marks, most frequent first.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, WSMsgType, web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: the bridge's Slack signing secret: a benchmark signs its Slack events with it
SIGNING_SECRET = "bench"
COUNTS = {"statements": 0, "transactions": 0, "handoffs": 0, "round_trips": 0}
#: where BENCH_SQL writes (read once: the listener runs for every statement)
SQL_OUT = os.environ.get("BENCH_SQL")
#: statement text → times run (only while BENCH_SQL asks for it)
STATEMENTS: Counter[str] = Counter()
#: whether SQLAlchemy is executing a statement (SQLite's trace sees every statement, its own too)
THROUGH_SQLALCHEMY = [False]
#: the values SQLite's trace writes into a statement: a string, a number
VALUES = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


def count_aiosqlite_handoffs() -> None:
    """Every call aiosqlite hands to its worker thread goes through ``Connection._execute``."""
    import aiosqlite.core

    original = aiosqlite.core.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS["handoffs"] += 1
        return await original(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = counted  # type: ignore[method-assign]


def count_driver_statements() -> None:
    """The lane's lock and unlock on PostgreSQL go to asyncpg directly (``Database.lane_lock``), past
    SQLAlchemy's events: counted here. And every round trip to PostgreSQL, which SQLAlchemy's events do
    not show either (BEGIN, COMMIT, ROLLBACK, the pool's check of a connection): each prepared statement's
    execution, each query with parameters, each simple query (``execute`` without them)."""
    import asyncpg
    from asyncpg.prepared_stmt import PreparedStatement

    fetchval = asyncpg.Connection.fetchval

    async def counted(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        COUNTS["statements"] += 1
        if SQL_OUT:
            STATEMENTS[f"{query}  ← (driver) lane_lock"] += 1
        return await fetchval(self, query, *args, **kwargs)

    asyncpg.Connection.fetchval = counted  # type: ignore[method-assign]

    def round_trip(original: Any, when: Any = lambda *_: True) -> Any:
        async def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
            if when(*args):
                COUNTS["round_trips"] += 1
            return await original(self, *args, **kwargs)

        return counting

    prepared = "_PreparedStatement__do_execute"
    setattr(PreparedStatement, prepared, round_trip(getattr(PreparedStatement, prepared)))
    asyncpg.Connection._do_execute = round_trip(asyncpg.Connection._do_execute)  # type: ignore[method-assign]
    # ``execute`` with arguments goes through ``_do_execute``; without, it is one simple query
    asyncpg.Connection.execute = round_trip(asyncpg.Connection.execute, lambda _q, *a: not a)  # type: ignore[method-assign]


async def serve_bridge(args: argparse.Namespace) -> web.AppRunner:
    from sqlalchemy import event
    from sqlalchemy.engine.interfaces import CacheStats

    from config.settings import Settings
    from sitechat.runtime import build_runtime, serve

    os.environ.update(
        {
            # a file (SQLite) or a database URL (PostgreSQL)
            "SITECHAT_DATABASE_URL": args.db if "://" in args.db else f"sqlite+aiosqlite:///{args.db}",
            "SITECHAT_HOST": "127.0.0.1",
            "SITECHAT_PORT": str(args.port),
            "SITECHAT_RATE_CONVERSATIONS_PER_HOUR": "100000",
            "SITECHAT_RATE_MESSAGES_PER_MINUTE": "100000",
            "SITECHAT_RATE_SOCKETS_PER_ADDRESS": "100000",
            "SITECHAT_SITES__ACME__NAME": "Acme",
            "SITECHAT_SITES__ACME__ORIGINS": "https://acme.example",
        }
    )
    if args.slack_url:
        os.environ.update(
            {
                "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": args.slack_url,
                "SLACK_POSTS_PER_SECOND": "1000",
                "SITECHAT_SITES__ACME__SLACK_CHANNEL": "C0SUPPORT",
            }
        )
    if args.matrix_homeserver:
        os.environ.update(
            {
                "MATRIX_HOMESERVER": args.matrix_homeserver,
                "MATRIX_USER_ID": args.matrix_user,
                "MATRIX_PASSWORD": args.matrix_password,
                "MATRIX_STORE_PATH": args.matrix_store,
                "SITECHAT_SITES__ACME__MATRIX_ROOM": args.matrix_room,
            }
        )
    count_aiosqlite_handoffs()
    count_driver_statements()
    runtime = build_runtime(Settings(_env_file=None))  # type: ignore[call-arg]
    runtime.widget.frames_per_10_seconds = 1_000_000
    engine = runtime.db.engine.sync_engine
    if runtime.db.is_sqlite:
        # what SQLite itself runs: SQLAlchemy's statements and the ones the bridge runs past it
        # (``bridge/store/sqlite_lines.py``), and BEGIN as it is sent (with a transaction's first statement)
        @event.listens_for(engine, "connect")
        def _traced(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.driver_connection._conn.set_trace_callback(_sqlite_statement)

    @event.listens_for(engine, "begin")
    def _begin(_conn: Any) -> None:
        if not runtime.db.is_sqlite:
            COUNTS["transactions"] += 1

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        THROUGH_SQLALCHEMY[0] = True
        if statement != "BEGIN":
            if not runtime.db.is_sqlite:
                COUNTS["statements"] += 1
            if SQL_OUT:
                # a statement SQLAlchemy compiled afresh (not from its cache) is marked: worth building once
                fresh = (
                    ""
                    if context is None or context.cache_hit is CacheStats.CACHE_HIT
                    else f" [{context.cache_hit.name}]"
                )
                STATEMENTS[f"{' '.join(statement.split())[:160]}{fresh}  ← {_our_callers()}"] += 1

    @event.listens_for(engine, "after_cursor_execute")
    def _executed(*_: Any) -> None:
        THROUGH_SQLALCHEMY[0] = False

    @event.listens_for(engine, "handle_error")
    def _failed(*_: Any) -> None:
        THROUGH_SQLALCHEMY[0] = False

    return await serve(runtime, "127.0.0.1", args.port, settle=True)  # as ``sitechat run`` does


def _sqlite_statement(statement: str) -> None:
    """Each statement SQLite starts (``set_trace_callback``, with its values written in), the pool's
    rollbacks and the pragmas aside; listed here (BENCH_SQL) when it did not come through SQLAlchemy."""
    word = statement.split(None, 1)[0].upper() if statement.strip() else ""
    if word == "BEGIN":
        COUNTS["transactions"] += 1
    elif word not in ("COMMIT", "ROLLBACK", "PRAGMA"):
        COUNTS["statements"] += 1
        if SQL_OUT and not THROUGH_SQLALCHEMY[0]:
            shape = " ".join(VALUES.sub("?", statement).split())[:160]
            STATEMENTS[f"{shape} [past SQLAlchemy]  ← {_our_callers()}"] += 1


def _our_callers() -> str:
    """The project's functions that ran a statement, innermost first (SQLAlchemy runs it in a greenlet
    whose parent is suspended inside the awaiting coroutines)."""
    import greenlet

    current = greenlet.getcurrent()
    frame = current.parent.gr_frame if current.parent is not None else sys._getframe()
    names = []
    while frame is not None:
        name = frame.f_code.co_filename
        ours = not any(part in name for part in ("/.venv/", "/lib/python", "relay_server", "sqlite_calls"))
        if ours:
            names.append(frame.f_code.co_name)
        frame = frame.f_back
    return " < ".join(names[:3]) or "?"


async def serve_bare(args: argparse.Namespace) -> web.AppRunner:
    """No storage, no ordering, no retries: receive a frame, post it, answer it. ``--mode stored``: the
    least a durable relay does besides — the line and its outbox row written to SQLite (sqlite3 itself,
    the bridge's pragmas, one transaction) before the frame is answered, the row marked sent after the
    post — and nothing else the bridge does (no SQLAlchemy, no threads, limits, signals nor lanes)."""
    http = ClientSession()
    store = _floor_store(args.db) if args.mode == "stored" else None

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if store is not None:
                with store:  # a transaction: the line, then what is owed to Slack
                    line = store.execute("INSERT INTO line (text) VALUES (?)", (frame["text"],)).lastrowid
                    store.execute("INSERT INTO outbox (line_id) VALUES (?)", (line,))
                await ws.send_json({"type": "message", "message": {"text": frame["text"], "role": "visitor"}})
            async with http.post(
                f"{args.slack_url}chat.postMessage",
                json={"channel": "C0SUPPORT", "text": frame["text"]},
                headers={"Authorization": "Bearer xoxb-test"},
            ) as r:
                ts = (await r.json())["ts"]
            if store is not None:
                with store:
                    store.execute("UPDATE outbox SET sent = ? WHERE line_id = ?", (ts, line))
            else:
                await ws.send_json({"type": "message", "message": {"text": frame["text"], "role": "visitor"}})
        return ws

    async def close_http(_app: web.Application) -> None:
        await http.close()

    app = web.Application()
    app.router.add_get("/ws", socket)
    app.on_cleanup.append(close_http)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    return runner


def _floor_store(path: str) -> sqlite3.Connection:
    """The ``stored`` relay's file: its log and its syncing as the bridge's (``bridge/store/database.py``);
    SQLite checkpoints the log itself, on commit (the bridge does it on a thread of its own)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE line (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    conn.execute("CREATE TABLE outbox (line_id INTEGER PRIMARY KEY REFERENCES line (id), sent TEXT)")
    conn.isolation_level = "DEFERRED"  # ``with conn``: BEGIN … COMMIT
    return conn


async def main(args: argparse.Namespace) -> None:
    runner = await (serve_bridge(args) if args.mode == "bridge" else serve_bare(args))
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    marks = 0
    profile = cProfile.Profile() if os.environ.get("BENCH_CPROFILE") else None
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line == "mark":
                marks += 1
                if marks == 1:
                    STATEMENTS.clear()
                    if profile is not None:
                        profile.enable()
                elif marks == 2:
                    steady_part_done(profile)
                print(json.dumps({"cpu": time.process_time(), **COUNTS}), flush=True)
            elif line in ("quit", ""):
                break
    finally:
        await runner.cleanup()


def steady_part_done(profile: cProfile.Profile | None) -> None:
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.environ["BENCH_CPROFILE"])
    if os.environ.get("BENCH_SQL"):
        with open(os.environ["BENCH_SQL"], "w") as out:
            out.writelines(f"{n:7} {statement}\n" for statement, n in STATEMENTS.most_common())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["bridge", "bare", "stored"], required=True)
    parser.add_argument("--slack-url", default="", help="the fake Slack's Web API (none: no Slack)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", default="")
    parser.add_argument("--matrix-homeserver", default="", help="a homeserver (none: no Matrix)")
    parser.add_argument("--matrix-user", default="")
    parser.add_argument("--matrix-password", default="")
    parser.add_argument("--matrix-room", default="")
    parser.add_argument("--matrix-store", default="")
    asyncio.run(main(parser.parse_args()))
