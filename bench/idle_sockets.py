"""Memory of idle widget sockets in one `sitechat run` process.

Starts a real `sitechat run` (subprocess, SQLite, no team chat needed beyond a fake Slack), opens N
conversations and N live sockets that then sit idle, and prints the server's resident memory before
and after, and per socket. Issue 24, target 6: 10,000 ready sockets at most 30 KB each, all ready within 20 s
(opened 100 at a time).
Run: .venv/bin/python bench/idle_sockets.py [N]   (default 2000; try 10000; --tiny: 50)
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import figure
from tests.fakes.slack_api import FakeSlack
from tests.harness import ORIGIN, clean_environment, free_port


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def main(n: int, tiny: bool = False) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * n + 1000)), hard))
    async with FakeSlack() as slack:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            env_file = Path(tmp) / "bench.env"
            env_file.write_text(
                "\n".join(
                    [
                        f"SITECHAT_DATABASE_URL=sqlite+aiosqlite:///{tmp}/bench.db",
                        f"SITECHAT_PORT={port}",
                        f"SITECHAT_RATE_CONVERSATIONS_PER_HOUR={n + 10}",
                        "SLACK_BOT_TOKEN=xoxb-test",
                        "SLACK_SIGNING_SECRET=bench",
                        f"SLACK_API_URL={slack.api_url}",
                        "SITECHAT_SITES__ACME__NAME=Acme",
                        f"SITECHAT_SITES__ACME__ORIGINS={ORIGIN}",
                        "SITECHAT_SITES__ACME__SLACK_CHANNEL=C0SUPPORT",
                        # as behind a reverse proxy: each visitor has an address of its own
                        "SITECHAT_TRUSTED_PROXIES=127.0.0.1",
                    ]
                )
            )
            env = clean_environment()
            proc = subprocess.Popen(
                [sys.executable, "-m", "sitechat", "run", "--env-file", str(env_file)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * n + 1000), hard)),
            )
            base = f"http://127.0.0.1:{port}"
            try:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                    for _ in range(300):
                        try:
                            async with http.get(base + "/healthz") as r:
                                if r.status == 200:
                                    break
                        except aiohttp.ClientError:
                            await asyncio.sleep(0.1)
                    before = rss_kib(proc.pid)
                    sem = asyncio.Semaphore(100)

                    async def start() -> tuple[str, str]:
                        async with (
                            sem,
                            http.post(
                                base + "/api/v1/sites/acme/conversations",
                                json={"visitor": {}},
                                headers={"Origin": ORIGIN},
                            ) as r,
                        ):
                            body = await r.json()
                            return body["conversation"]["id"], body["token"]

                    convs = await asyncio.gather(*(start() for _ in range(n)))
                    after_convs = rss_kib(proc.pid)
                    opening = asyncio.Semaphore(100)

                    async def open_socket(i: int, cid: str, token: str) -> aiohttp.ClientWebSocketResponse:
                        visitor_address = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
                        async with opening:
                            ws = await http.ws_connect(
                                base.replace("http", "ws") + f"/api/v1/conversations/{cid}/ws",
                                headers={"Origin": ORIGIN, "X-Forwarded-For": visitor_address},
                            )
                            await ws.send_json({"type": "hello", "token": token, "after": 0})
                            await ws.receive(timeout=60)
                            return ws

                    print("opening the sockets", flush=True)
                    opened, server_cpu, our_cpu = time.monotonic(), cpu_seconds(proc.pid), time.process_time()
                    sockets = await asyncio.gather(
                        *(open_socket(i, cid, token) for i, (cid, token) in enumerate(convs))
                    )
                    ready_seconds = time.monotonic() - opened
                    server_cpu, our_cpu = cpu_seconds(proc.pid) - server_cpu, time.process_time() - our_cpu
                    await asyncio.sleep(1)  # let the server settle before reading its memory
                    after = rss_kib(proc.pid)
                    print(f"idle sockets:            {len(sockets)}")
                    print(f"server RSS at start:     {before / 1024:.1f} MiB")
                    print(f"after {n} conversations: {after_convs / 1024:.1f} MiB")
                    print(f"with {len(sockets)} open sockets:  {after / 1024:.1f} MiB")
                    print(f"per idle socket:         {(after - after_convs) / max(1, len(sockets)):.1f} KiB")
                    print(f"all ready after:         {ready_seconds:.1f} s")
                    # both sides share the machine: the clients' CPU is time the server could not have
                    print(f"CPU while they opened:   server {server_cpu:.1f} s, these clients {our_cpu:.1f} s")
                    print(f"server CPU per socket:   {1000 * server_cpu / max(1, len(sockets)):.2f} ms")
                    per_socket = (after - after_convs) * 1.024 / max(1, len(sockets))  # KiB → KB
                    judged = True if not tiny and n >= 10_000 else None
                    figure(
                        f"6. memory per idle socket ({n})",
                        "≤ 30 KB",
                        f"{per_socket:.1f} KB",
                        judged and per_socket <= 30,
                    )
                    figure(f"6. {n} sockets ready", "≤ 20 s", f"{ready_seconds:.1f} s", judged and ready_seconds <= 20)
                    for ws in sockets:
                        await ws.close()
            finally:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    if "--tiny" in sys.argv:
        asyncio.run(main(50, tiny=True))
    else:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
