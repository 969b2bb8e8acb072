"""`sitechat demo`: zero configuration brings up the whole local loop, and Ctrl-C takes it down."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
import nio

from tests.fakes.synapse import synapse_venv
from tests.harness import Visitor, clean_environment, free_port, wait_until


async def _read_until(stream: asyncio.StreamReader, marker: str, seen: list[str], timeout: float = 90) -> None:
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError("sitechat demo ended early:\n" + "".join(seen))
            seen.append(line)
            if marker in line:
                return


async def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    port = free_port()
    env = clean_environment()
    env["SITECHAT_SYNAPSE_VENV"] = str(synapse_venv())
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sitechat",
        "demo",
        "--workdir",
        str(tmp_path / "demo"),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    staff = None
    visitor = None
    try:
        await _read_until(proc.stdout, "Press Ctrl-C", seen)
        text = "".join(seen)
        assert f"http://127.0.0.1:{port}/demo" in text
        homeserver = re.search(r"homeserver (http://127\.0\.0\.1:\d+)", text)
        room = re.search(r"\((![^)]+)\)", text)
        assert homeserver and room and "staff / staff-password" in text, text

        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http, http.get(base + "/demo") as page:
            assert page.status == 200 and 'data-site="demo"' in await page.text()

        visitor = Visitor(base, site="demo", origin=base)
        await visitor.start(name="Dora")
        await visitor.say("Is the demo working?")

        staff = nio.AsyncClient(homeserver.group(1), "@staff:localhost")
        assert isinstance(await staff.login("staff-password"), nio.LoginResponse)
        events: list[nio.Event] = []
        token: str | None = None

        async def thread_line() -> nio.RoomMessageText | None:
            nonlocal token
            response = await staff.sync(timeout=1000, since=token)
            assert isinstance(response, nio.SyncResponse)
            token = response.next_batch
            joined = response.rooms.join.get(room.group(1))
            if joined:
                events.extend(joined.timeline.events)
            return next(
                (e for e in events if isinstance(e, nio.RoomMessageText) and "Is the demo working?" in e.body), None
            )

        line = await wait_until(thread_line, 30, "the visitor's line in the Matrix room")
        root_id = line.source["content"]["m.relates_to"]["event_id"]
        await staff.room_send(
            room.group(1),
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "Yes, it is!",
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": root_id,
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": line.event_id},
                },
            },
        )

        async def answered() -> bool:
            return any(m["text"] == "Yes, it is!" for m in (await visitor.messages())["messages"])

        await wait_until(answered, 30, "the staff reply in the widget")
    finally:
        if visitor is not None:
            await visitor.close()
        if staff is not None:
            await staff.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(proc.stdout.read(), 60)
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0, "".join(seen) + rest.decode()
    assert "stopped" in rest.decode()
    # Ctrl-C took the homeserver down with it
    async with aiohttp.ClientSession() as http:
        try:
            await http.get(homeserver.group(1) + "/_matrix/client/versions")
            raise AssertionError("the demo's homeserver is still running after Ctrl-C")
        except aiohttp.ClientConnectionError:
            pass
