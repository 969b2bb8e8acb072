"""Agent reply → visitor (issue 24, target 4): signed Slack events at stepped rates, ack p99 < 50 ms and
event → widget frame p99 < 100 ms at 200 events/s; the same for Matrix staff replies through /sync.

A sitechat in a child process (SQLite), N visitors with their sockets open, each conversation's thread
out. Slack: the fake Slack in this process, correctly signed ``message`` events posted to
``/slack/events`` on the clock at each rate (round the conversations), each timed from its send to its
HTTP answer (the ack) and to the frame on the visitor's socket — on SQLite, then again on a fresh
PostgreSQL database on the local server. Matrix: a real Synapse, a staff member replying in the threads
at each rate, timed from the send to the frame (through the bridge's /sync), and set against when the
staff member's own /sync (a plain client) saw the same reply.

Run: .venv/bin/python bench/reply_latency.py [--visitors 16] [--rates 50,100,200] [--matrix-rates 10,20,40]
     [--seconds 3] [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import figure
from bench.matrix_ceiling import percentile
from bench.matrix_room import MatrixRoom, Timeline, body, matrix_room, thread_of
from bench.relay_load import Client, Seen, Server, connect
from bench.relay_server import SIGNING_SECRET
from tests.conftest import fresh_postgres
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_payloads import event_callback, message_event, signed_json

ACK_MS, FRAME_MS, AT_RATE = 50.0, 100.0, 200.0
REPLY = re.compile(r"\ba(\d+)r(\d+)\b")
AGENT = "UAGENT"


@dataclass
class Step:
    rate: float
    sent: dict[tuple[int, int], float] = field(default_factory=dict)
    acks: list[float] = field(default_factory=list)
    #: events the bridge answered with an error (503: not stored in time, for Slack to retry)
    refused: int = 0

    def frames(self, arrived: dict[tuple[int, int], float]) -> list[float]:
        return [1000 * (arrived[k] - t) for k, t in self.sent.items() if k in arrived]

    def after(self, arrived: dict[tuple[int, int], float], seen: dict[tuple[int, int], float]) -> list[float]:
        """How long after a plain /sync client saw each reply its frame reached the widget: the bridge's
        own share of the latency (its /sync, its store, the socket), the homeserver's left out."""
        return [1000 * (arrived[k] - seen[k]) for k in self.sent if k in arrived and k in seen]


class Frames:
    """Every visitor's socket, read all along: when each agent reply's frame arrived."""

    def __init__(self, clients: Sequence[Client]) -> None:
        self.arrived: dict[tuple[int, int], float] = {}
        self._tasks = [asyncio.create_task(self._read(c)) for c in clients]

    async def _read(self, client: Client) -> None:
        while True:
            msg = await client.ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return
            frame = json.loads(msg.data)
            if frame.get("type") == "message" and frame["message"]["author"]["role"] != "visitor":
                for v, r in REPLY.findall(frame["message"]["text"]):
                    self.arrived.setdefault((int(v), int(r)), time.monotonic())

    async def wait_for(self, keys: Sequence[tuple[int, int]], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while any(k not in self.arrived for k in keys):
            if time.monotonic() > deadline:
                missing = sum(k not in self.arrived for k in keys)
                raise AssertionError(f"{missing} of {len(keys)} replies never reached the widget")
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        for t in self._tasks:
            t.cancel()


async def stepped(
    rates: Sequence[float],
    seconds: float,
    threads: int,
    frames: Frames,
    send: Callable[[Step, int, int], Awaitable[None]],
) -> list[Step]:
    """At each rate for ``seconds``, replies on the clock round the threads; then until every frame came."""
    steps, counter = [], 0
    for rate in rates:
        step = Step(rate)
        count = max(threads, int(rate * seconds))
        started, tasks = time.monotonic(), []
        for n in range(count):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(send(step, n % threads, counter)))
            counter += 1
        await asyncio.gather(*tasks)
        await frames.wait_for(list(step.sent))
        steps.append(step)
        await asyncio.sleep(0.5)  # a breath between steps
    return steps


async def warm_up(clients: Sequence[Client]) -> None:
    await asyncio.gather(*(c.say(f"v{i}m0") for i, c in enumerate(clients)))


Arrivals = dict[tuple[int, int], float]


async def slack_steps(
    visitors: int, rates: Sequence[float], seconds: float, database: str | None = None
) -> tuple[list[Step], Arrivals]:
    """``database``: a PostgreSQL URL (None: a SQLite file)."""
    async with FakeSlack() as slack:
        slack.add_user(AGENT, "alice", display_name="Alice")
        with tempfile.TemporaryDirectory() as tmp:
            async with Server("bridge", slack, database or f"{tmp}/bench.db") as server:
                clients = [await connect(server, i) for i in range(visitors)]
                http = aiohttp.ClientSession()
                frames: Frames | None = None
                try:
                    await warm_up(clients)
                    await Seen(slack).wait_for(visitors)
                    threads = {}
                    for call in slack.calls_to("chat.postMessage"):
                        found = re.search(r"\bv(\d+)m0\b", str(call.params.get("text", "")))
                        if found and call.params.get("thread_ts"):
                            threads[int(found.group(1))] = str(call.params["thread_ts"])
                    frames = Frames(clients)

                    async def send(step: Step, i: int, n: int) -> None:
                        event = message_event("C0SUPPORT", AGENT, f"a{i}r{n}", thread_ts=threads[i])
                        data, headers = signed_json(SIGNING_SECRET, event_callback(event))
                        started = step.sent[(i, n)] = time.monotonic()
                        async with http.post(f"{server.url}/slack/events", data=data, headers=headers) as r:
                            await r.read()
                        step.acks.append(1000 * (time.monotonic() - started))
                        if r.status != 200:  # not stored in time: Slack would send it again later
                            step.refused += 1
                            del step.sent[(i, n)]

                    # the agent's first two replies in each conversation, not measured: the first shows her
                    # face, the second finds it shown; both take a unit of work (the others, on PostgreSQL,
                    # one database call): the steps measure the replies of a conversation under way
                    for first in range(2):
                        for i in range(visitors):
                            event = message_event("C0SUPPORT", AGENT, f"warm-up {i} {first}", thread_ts=threads[i])
                            data, headers = signed_json(SIGNING_SECRET, event_callback(event))
                            async with http.post(f"{server.url}/slack/events", data=data, headers=headers) as r:
                                assert r.status == 200, await r.text()

                    await server.mark()  # BENCH_CPROFILE / BENCH_SQL: the steps, profiled (relay_server.py)
                    steps = await stepped(rates, seconds, visitors, frames, send)
                    await server.mark()
                    return steps, frames.arrived
                finally:
                    if frames is not None:
                        frames.stop()
                    await http.close()
                    for c in clients:
                        await c.close()


async def matrix_steps(visitors: int, rates: Sequence[float], seconds: float) -> tuple[list[Step], Arrivals]:
    with tempfile.TemporaryDirectory() as tmp:
        async with matrix_room(Path(tmp)) as room:
            staff = await Timeline(room.synapse.base_url, room.staff.access_token, room.room_id).start()
            try:
                args = room.bridge_arguments(Path(tmp) / "store")
                async with Server("bridge", None, f"{tmp}/bench.db", args) as server:
                    clients = [await connect(server, i) for i in range(visitors)]
                    frames: Frames | None = None
                    try:
                        await warm_up(clients)
                        roots = await _matrix_threads(room, staff, visitors)
                        frames = Frames(clients)

                        async def send(step: Step, i: int, n: int) -> None:
                            started = step.sent[(i, n)] = time.monotonic()
                            await room.synapse.send_text(
                                room.staff.access_token, room.room_id, f"a{i}r{n}", thread_root=roots[i]
                            )
                            step.acks.append(1000 * (time.monotonic() - started))

                        await server.mark()  # BENCH_CPROFILE / BENCH_SQL: the steps, profiled (relay_server.py)
                        steps = await stepped(rates, seconds, visitors, frames, send)
                        await server.mark()
                        seen = {}
                        for t, event in staff.messages(room.staff.user_id):
                            if found := REPLY.search(body(event)):
                                seen[(int(found.group(1)), int(found.group(2)))] = t
                        return steps, frames.arrived, seen
                    finally:
                        if frames is not None:
                            frames.stop()
                        for c in clients:
                            await c.close()
            finally:
                await staff.stop()


async def _matrix_threads(room: MatrixRoom, staff: Timeline, visitors: int) -> dict[int, str]:
    """Each conversation's thread root, from its first line as the staff member's /sync shows it."""
    deadline = time.monotonic() + 60
    while True:
        roots = {}
        for _, event in staff.messages(room.bot.user_id):
            found = re.search(r"\bv(\d+)m0\b", body(event))
            if found and (root := thread_of(event)):
                roots[int(found.group(1))] = root
        if len(roots) == visitors:
            return roots
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(roots)} of {visitors} threads reached Matrix")
        await asyncio.sleep(0.05)


def report(side: str, steps: Sequence[Step], arrived: Arrivals, ack_name: str, seen: Arrivals | None = None) -> None:
    for s in steps:
        lat = s.frames(arrived)
        print(
            f"{side:6} {s.rate:5g}/s: {len(s.sent)} replies, {s.refused} refused;"
            f" {ack_name} p50 {percentile(s.acks, 0.5):.0f} ms p99 {percentile(s.acks, 0.99):.0f} ms;"
            f" → widget frame p50 {percentile(lat, 0.5):.0f} ms"
            f" p99 {percentile(lat, 0.99):.0f} ms"
        )
        if seen is not None:
            plain = s.frames(seen)
            after = s.after(arrived, seen)
            print(
                f"{'':6} {'':7}  a plain /sync client saw them p50 {percentile(plain, 0.5):.0f} ms"
                f" p99 {percentile(plain, 0.99):.0f} ms; the widget's frame came"
                f" p50 {percentile(after, 0.5):.0f} ms p99 {percentile(after, 0.99):.0f} ms after that"
            )


async def main(visitors: int, rates: list[float], matrix_rates: list[float], seconds: float, tiny: bool) -> None:
    slack, slack_frames = await slack_steps(visitors, rates, seconds)
    async with fresh_postgres() as url:
        on_pg, on_pg_frames = await slack_steps(visitors, rates, seconds, url)
    matrix, matrix_frames, seen = await matrix_steps(visitors, matrix_rates, seconds) if matrix_rates else ([], {}, {})
    print(f"{visitors} conversations, each step {seconds:g} s of replies on the clock")
    report("slack", slack, slack_frames, "ack")
    report("slack (PostgreSQL)", on_pg, on_pg_frames, "ack")
    report("matrix", matrix, matrix_frames, "send", seen)
    top = slack[-1]
    ack99, frame99 = percentile(top.acks, 0.99), percentile(top.frames(slack_frames), 0.99)
    judged = not tiny and top.rate >= AT_RATE
    figure(
        f"4. Slack event ack p99 at {top.rate:g}/s",
        f"< {ACK_MS:g} ms",
        f"{ack99:.0f} ms",
        ack99 < ACK_MS if judged else None,
    )
    figure(
        f"4. Slack event → widget p99 at {top.rate:g}/s",
        f"< {FRAME_MS:g} ms",
        f"{frame99:.0f} ms",
        frame99 < FRAME_MS if judged else None,
    )
    top = on_pg[-1]
    ack99, frame99 = percentile(top.acks, 0.99), percentile(top.frames(on_pg_frames), 0.99)
    figure(
        f"4. the same on PostgreSQL: ack / → widget p99 at {top.rate:g}/s",
        f"< {ACK_MS:g} / < {FRAME_MS:g} ms",
        f"{ack99:.0f} / {frame99:.0f} ms",
        (ack99 < ACK_MS and frame99 < FRAME_MS) if judged else None,
    )
    if matrix:
        m = matrix[-1]
        m99 = percentile(m.frames(matrix_frames), 0.99)
        plain99 = percentile(m.frames(seen), 0.99)
        after99 = percentile(m.after(matrix_frames, seen), 0.99)
        figure(
            f"4. Matrix reply → widget p99 at {m.rate:g}/s",
            f"< {FRAME_MS:g} ms",
            f"{m99:.0f} ms (a plain /sync client: {plain99:.0f} ms)",
            None if tiny else m99 < FRAME_MS,
        )
        figure(
            f"4. Matrix: the widget's frame after a plain /sync client's, p99 at {m.rate:g}/s",
            f"< {FRAME_MS:g} ms",
            f"{after99:.0f} ms",
            None if tiny else after99 < FRAME_MS,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=16)
    parser.add_argument("--rates", default="50,100,200", help="Slack events per second, one step each")
    parser.add_argument("--matrix-rates", default="10,20,40", help="Matrix replies per second (empty: no Matrix)")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each step goes on")
    parser.add_argument("--tiny", action="store_true", help="seconds, not a measurement: 2 visitors, one short step")
    args = parser.parse_args()
    if args.tiny:
        args.visitors, args.rates, args.matrix_rates, args.seconds = 2, "20", "10", 0.2
    rates = [float(r) for r in args.rates.split(",") if r]
    matrix_rates = [float(r) for r in args.matrix_rates.split(",") if r]
    asyncio.run(main(args.visitors, rates, matrix_rates, args.seconds, args.tiny))
