"""Memory of the upload limit in one `sitechat run` process (issue 17): a 100 MB upload to a server that
takes 10 MB is refused while it streams, and the server's memory stays flat; an accepted 10 MB upload
costs no more than its chunks.

Starts a real `sitechat run` (subprocess, SQLite, a fake Slack), streams the uploads from a generator
(the client never holds them whole either), and prints the server's resident memory (VmRSS) before,
its peak (VmHWM) during each upload, and the differences.
Run: .venv/bin/python bench/upload_memory.py [MB]   (default 100; --tiny: 12)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import figure
from tests.fakes.slack_api import FakeSlack
from tests.harness import ORIGIN, clean_environment, free_port
from tests.images import png

LIMIT_MB = 10
PIECE = 256 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> None:
    """Linux ≥ 4.0: writing 5 to clear_refs resets VmHWM to the current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def stream(total: int) -> AsyncIterator[bytes]:
    yield png()
    sent = len(png())
    zeros = b"\x00" * PIECE
    while sent < total:
        piece = zeros[: min(PIECE, total - sent)]
        sent += len(piece)
        yield piece


async def upload(http: aiohttp.ClientSession, base: str, cid: str, token: str, total: int) -> int:
    writer = aiohttp.MultipartWriter("form-data")
    part = writer.append(stream(total), {"Content-Type": "image/png"})
    part.set_content_disposition("form-data", name="file", filename="big.png")
    headers = {"Authorization": f"Bearer {token}", "Origin": ORIGIN}
    try:
        async with http.post(f"{base}/api/v1/conversations/{cid}/attachments", data=writer, headers=headers) as r:
            return r.status
    except aiohttp.ClientError:
        return 0  # the server closed the connection after its answer, while the client still sent


async def main(mb: int) -> None:
    async with FakeSlack() as slack:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            env_file = Path(tmp) / "bench.env"
            env_file.write_text(
                "\n".join(
                    [
                        f"SITECHAT_DATABASE_URL=sqlite+aiosqlite:///{tmp}/bench.db",
                        f"SITECHAT_PORT={port}",
                        f"SITECHAT_UPLOAD_MAX_MB={LIMIT_MB}",
                        "SLACK_BOT_TOKEN=xoxb-test",
                        "SLACK_SIGNING_SECRET=bench",
                        f"SLACK_API_URL={slack.api_url}",
                        "SITECHAT_SITES__ACME__NAME=Acme",
                        f"SITECHAT_SITES__ACME__ORIGINS={ORIGIN}",
                        "SITECHAT_SITES__ACME__SLACK_CHANNEL=C0SUPPORT",
                    ]
                )
            )
            proc = subprocess.Popen(
                [sys.executable, "-m", "sitechat", "run", "--env-file", str(env_file)],
                env=clean_environment(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                async with aiohttp.ClientSession() as http:
                    for _ in range(300):
                        try:
                            async with http.get(base + "/healthz") as r:
                                if r.status == 200:
                                    break
                        except aiohttp.ClientError:
                            await asyncio.sleep(0.1)
                    body = {"visitor": {"name": "Ann"}}
                    async with http.post(
                        f"{base}/api/v1/sites/acme/conversations", json=body, headers={"Origin": ORIGIN}
                    ) as r:
                        started = await r.json()
                    cid, token = started["conversation"]["id"], started["token"]
                    # warm up: the first upload loads what every later one shares (imports, pools)
                    await upload(http, base, cid, token, 64 * 1024)
                    before = status_kib(proc.pid, "VmRSS")
                    reset_peak(proc.pid)
                    refused = await upload(http, base, cid, token, mb * 1024 * 1024)
                    peak_refused = status_kib(proc.pid, "VmHWM")
                    reset_peak(proc.pid)
                    accepted = await upload(http, base, cid, token, LIMIT_MB * 1024 * 1024 - 1024)
                    peak_accepted = status_kib(proc.pid, "VmHWM")
            finally:
                proc.terminate()
                proc.wait(10)
    grew_refused = (peak_refused - before) / 1024
    grew_accepted = (peak_accepted - before) / 1024
    print(f"server RSS before: {before / 1024:.1f} MB")
    print(f"{mb} MB upload to a {LIMIT_MB} MB limit: answered {refused or 'closed'}, peak +{grew_refused:.1f} MB")
    print(f"{LIMIT_MB} MB upload: answered {accepted}, peak +{grew_accepted:.1f} MB")
    figure(
        f"memory while a {mb} MB upload is refused at {LIMIT_MB} MB",
        "< 8 MB more",
        f"+{grew_refused:.1f} MB",
        grew_refused < 8 and refused in (413, 0),
    )
    figure(f"memory while a {LIMIT_MB} MB upload is kept", "< 8 MB more", f"+{grew_accepted:.1f} MB", grew_accepted < 8)


if __name__ == "__main__":
    tiny = "--tiny" in sys.argv
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(main(12 if tiny else int(args[0]) if args else 100))
