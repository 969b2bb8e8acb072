"""``sitechat run | demo | doctor | migrate | report | export``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from bridge.store.database import Database, DatabaseInUse
from config.loading import ConfigError, load_settings
from config.settings import Settings


def _settings(env_file: Path | None) -> Settings:
    try:
        return load_settings(env_file)
    except ConfigError as exc:
        print("sitechat cannot start: the configuration has problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("See config/example.env for a complete example.", file=sys.stderr)
        raise SystemExit(2) from None


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _run(settings: Settings) -> None:
    from sitechat.runtime import build_runtime, serve

    runtime = build_runtime(settings)
    widget = settings.widget
    try:
        runner = await serve(runtime, widget.host, widget.port, settle=True)
    except DatabaseInUse as exc:
        print(f"sitechat cannot start: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    except OSError as exc:
        print(f"sitechat cannot start: cannot listen on {widget.host}:{widget.port} ({exc.strerror})", file=sys.stderr)
        raise SystemExit(3) from None
    logging.getLogger("sitechat").info(
        "sitechat is running on %s (endpoints: %s)",
        widget.public_url,
        ", ".join(runtime.endpoints) or "none",
    )
    print(
        f"sitechat: widget server on {widget.public_url}; embed {widget.public_url}/widget.js",
        flush=True,
    )
    try:
        await _wait_for_stop()
        # a rolling restart: hand over first (readiness, sockets, deliveries in flight), then stop,
        # all within SITECHAT_SHUTDOWN_SECONDS
        async with asyncio.timeout(settings.shutdown_seconds):
            await runtime.drain(settings.shutdown_seconds * 0.8)
    except TimeoutError:
        logging.getLogger("sitechat").warning("shutdown: drained for %g s; stopping now", settings.shutdown_seconds)
    finally:
        await runner.cleanup()


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args.env_file)
    asyncio.run(_run(settings))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args.env_file)

    async def go() -> None:
        db = Database(settings.database_url)
        try:
            await db.migrate()
        finally:
            await db.close()

    asyncio.run(go())
    print("sitechat: the database schema is up to date")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """GDPR erasure: one person's conversations, now, with the bridge's copies of them in team chat."""
    from bridge.retention import forget
    from bridge.store.notify import Notifier

    address = args.email.strip()
    if "@" not in address:
        print(f"sitechat forget: {address!r} is not an email address (e.g. ann@example.com)", file=sys.stderr)
        return 2
    settings = _settings(args.env_file)

    async def go() -> int:
        db = Database(settings.database_url)
        try:
            await db.migrate()
            count = await forget(db, address)
            await Notifier(db).announce([], wake=True)  # other instances start on the removals now
            return count
        finally:
            await db.close()

    count = asyncio.run(go())
    print(f"sitechat: forgot {count} conversation(s) of {address}.")
    if count:
        print(
            "Their posts in Slack and Matrix are being removed by the running service (queued: a team chat "
            "that is down delays it, never skips it); transcripts already mailed are the only copies left."
        )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from sitechat.doctor import run_doctor

    return asyncio.run(run_doctor(args.env_file))


def cmd_demo(args: argparse.Namespace) -> int:
    from sitechat.demo import run_demo

    return asyncio.run(run_demo(args))


def cmd_report(args: argparse.Namespace) -> int:
    from sitechat.insight import report

    return report.run(_settings(args.env_file), args)


def cmd_export(args: argparse.Namespace) -> int:
    from sitechat.insight import export

    return export.run(_settings(args.env_file), args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sitechat", description="Website live chat, answered from Slack and Matrix.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("run", cmd_run, "run the service (widget server, Slack, Matrix, workers)"),
        ("doctor", cmd_doctor, "check the configuration and every connection"),
        ("migrate", cmd_migrate, "apply database migrations"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--env-file", type=Path, default=None, help="env file to read (default: ./.env if present)")
        p.set_defaults(func=func)
    from sitechat.insight import export, report

    for name, func, text, arguments in (
        ("report", cmd_report, "a period's chats as a PNG page and a text summary", report.add_arguments),
        ("export", cmd_export, "one row per conversation, as CSV or JSON lines", export.add_arguments),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--env-file", type=Path, default=None, help="env file to read (default: ./.env if present)")
        arguments(p)
        p.set_defaults(func=func)
    forget = sub.add_parser("forget", help="delete one person's conversations now (GDPR erasure)")
    forget.add_argument("--email", required=True, help="the person's email address")
    forget.add_argument("--env-file", type=Path, default=None, help="env file to read (default: ./.env if present)")
    forget.set_defaults(func=cmd_forget)
    demo = sub.add_parser("demo", help="zero-config local trial with a local Matrix homeserver")
    from sitechat.demo import add_arguments as demo_arguments

    demo_arguments(demo)
    demo.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return int(args.func(args))
