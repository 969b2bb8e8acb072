"""``sitechat demo``: zero configuration. A local Synapse on loopback is the team chat, SQLite the store,
and ``/demo`` a page with the widget. Everything lives in one work folder, kept across runs.

``--encrypted`` puts the conversations in an end-to-end encrypted room instead (a room of its own, kept
across runs like the other), as staff who use Element usually have it; the bot's keys live in the
work folder's ``matrix-store``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from config.settings import Settings, SiteConfig
from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser
from sitechat.runtime import build_runtime, serve

STAFF_USER = "staff"
STAFF_PASSWORD = "staff-password"


def _synapse_venv() -> Path:
    configured = os.environ.get("SITECHAT_SYNAPSE_VENV")
    if configured:
        return Path(configured)
    here = Path(__file__).resolve().parents[2] / ".venv-synapse"
    return here if here.exists() else Path.cwd() / ".venv-synapse"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _load_state(workdir: Path) -> dict[str, Any]:
    """What earlier runs created (bot password, room, port), so the demo comes back as it was."""
    workdir.mkdir(parents=True, exist_ok=True)
    state_file = workdir / "demo.json"
    state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.exists() else {}
    state.setdefault("bot_password", secrets.token_urlsafe(16))
    return state


def _save_state(workdir: Path, state: dict[str, Any]) -> None:
    state_file = workdir / "demo.json"
    state_file.write_text(json.dumps(state, indent=2))
    state_file.chmod(0o600)


def _has_python(venv: Path) -> bool:
    return (venv / "bin" / "python").exists()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sitechat demo``."""
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workdir", type=Path, default=Path(".demo"))
    parser.add_argument(
        "--encrypted", action="store_true", help="answer from an end-to-end encrypted room (try it with Element)"
    )


async def provision(homeserver: LocalSynapse, state: dict[str, Any], *, encrypted: bool) -> tuple[RegisteredUser, str]:
    """The bot, the staff member and the support room (made once, kept in ``state``): (bot, room id)."""
    bot = await homeserver.register("sitechat", state["bot_password"], admin=True, displayname="Website chat")
    staff = await homeserver.register(STAFF_USER, STAFF_PASSWORD, displayname="Sam from Support")
    await homeserver.lift_ratelimit(bot.access_token, bot.user_id)
    key = "encrypted_room_id" if encrypted else "room_id"
    if key not in state:
        state[key] = await homeserver.create_room(
            bot.access_token,
            name="Website chat (encrypted)" if encrypted else "Website chat",
            topic="Visitors of the demo shop",
            invite=[staff.user_id],
            power_users={staff.user_id: 50},
            encrypted=encrypted,
        )
        await homeserver.join(staff.access_token, state[key])
    return bot, str(state[key])


async def run_demo(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir.absolute()
    venv = _synapse_venv()
    if not _has_python(venv):
        print(
            f"sitechat demo needs Synapse in {venv}: run `make demo` (it installs it) or `make synapse`.",
            file=sys.stderr,
        )
        return 2
    if not _port_free(args.port):
        print(f"sitechat demo: port {args.port} is taken; use --port to pick another.", file=sys.stderr)
        return 2
    state = _load_state(workdir)

    homeserver = LocalSynapse(
        venv, workdir / "synapse", port=state.get("synapse_port") or (8008 if _port_free(8008) else None)
    )
    print("sitechat demo: starting the local Matrix homeserver…", flush=True)
    await homeserver.start()
    try:
        encrypted = bool(getattr(args, "encrypted", False))
        bot, room_id = await provision(homeserver, state, encrypted=encrypted)
        state["synapse_port"] = homeserver.port
        _save_state(workdir, state)

        public_url = f"http://127.0.0.1:{args.port}"
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite+aiosqlite:///{workdir / 'sitechat.db'}",
            host="127.0.0.1",
            port=args.port,
            public_url=public_url,
            matrix_homeserver=homeserver.base_url,
            matrix_user_id=bot.user_id,
            matrix_password=state["bot_password"],
            matrix_store_path=str(workdir / "matrix-store"),
            sites={
                "demo": SiteConfig.model_validate(
                    {
                        "name": "Demo Shop",
                        "origins": [public_url],
                        "matrix_room": room_id,
                        "greeting": "Hi! This is the sitechat demo. Ask anything — staff answer from Matrix.",
                    }
                )
            },
        )
        room_name = "Website chat (encrypted)" if encrypted else "Website chat"
        runtime = build_runtime(settings)
        runner = await serve(runtime, settings.widget.host, settings.widget.port, settle=True)
        print(
            "\n".join(
                [
                    "",
                    "sitechat demo is running.",
                    f"  Visitor: open {public_url}/demo and click “Open chat”.",
                    f"  Staff:   log in to the Matrix homeserver {homeserver.base_url} with any Matrix client",
                    f"           (e.g. Element: custom homeserver) as {STAFF_USER} / {STAFF_PASSWORD}",
                    f"           and answer in the thread in the room “{room_name}” ({room_id}).",
                    "           Start a reply with // for a note the visitor never sees; !help lists commands.",
                    *(
                        [
                            "           The room is end-to-end encrypted: Element shows the bot's session as",
                            "           unverified, and that is all right (its keys are in the Data folder).",
                        ]
                        if encrypted
                        else []
                    ),
                    f"  Data:    {workdir}",
                    "Press Ctrl-C to stop.",
                    "",
                ]
            ),
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        await homeserver.stop()
    print("sitechat demo: stopped.", flush=True)
    return 0
