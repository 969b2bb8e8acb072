"""Into Matrix against its ceiling (issue 24, target 2): throughput ≥ 0.8 of raw senders, p99 at a
steady 20 lines/s at most 50 ms over theirs, no line out of order in /sync nor in /messages.

A real Synapse (one support room, a staff member in it whose client syncs). In one run:

- raw: N senders on the bot's account, each in a thread of its own, each sending its next line as soon
  as Synapse took the last, while the account runs a /sync loop as the bridge does — the ceiling;
- bridge: a sitechat in a child process (SQLite, Matrix only), N visitors on WebSockets each sending
  its next line as soon as the bridge stored the last (its echo);

each measured until the staff member's /sync has every line. Then both again at a steady pace (lines
sent on the clock, whatever came back), each line timed from its send to the staff member's /sync.

Run: .venv/bin/python bench/matrix_ceiling.py [--visitors 16] [--messages 20] [--pace 20] [--seconds 10] [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.figures import figure
from bench.matrix_room import MatrixRoom, Timeline, body, matrix_room, room_history
from bench.relay_load import Client, Server, connect

TARGET_RATIO, TARGET_EXTRA_MS = 0.8, 50.0
TOKEN = re.compile(r"\b([vp])(\d+)m(\d+)\b")


@dataclass
class Phase:
    lines: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.lines / self.seconds


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Seen:
    """Which lines the staff member's /sync has shown, when, and in which order per sender."""

    def __init__(self, timeline: Timeline, sender: str, kind: str) -> None:
        self.timeline, self.sender, self.kind = timeline, sender, kind
        self.at: dict[tuple[int, int], float] = {}
        self.inversions = 0
        self._last: dict[int, int] = {}
        self._done = len(timeline.events)  # what came before is another part's

    def update(self) -> int:
        events = self.timeline.events
        for arrived, event in events[self._done :]:
            if event.get("type") != "m.room.message" or event.get("sender") != self.sender:
                continue
            for kind, v, m in TOKEN.findall(body(event)):
                key = (int(v), int(m))
                if kind != self.kind or key in self.at:
                    continue
                self.at[key] = arrived
                if key[1] < self._last.get(key[0], -1):
                    self.inversions += 1
                self._last[key[0]] = max(key[1], self._last.get(key[0], -1))
        self._done = len(events)
        return len(self.at)

    async def wait_for(self, count: int, timeout: float = 300) -> float:
        """Until ``count`` lines are seen; the moment the last one arrived."""
        deadline = time.monotonic() + timeout
        while self.update() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.at)} of {count} lines reached the staff member's /sync")
            await asyncio.sleep(0.005)
        return max(self.at.values())


def history_inversions(events: Sequence[dict[str, object]], kind: str) -> int:
    last: dict[int, int] = {}
    inversions = 0
    for event in events:
        for k, v, m in TOKEN.findall(body(event)):  # type: ignore[arg-type]
            if k != kind:
                continue
            if int(m) < last.get(int(v), -1):
                inversions += 1
            last[int(v)] = max(int(m), last.get(int(v), -1))
    return inversions


async def paced(
    send: Callable[[int, int], Awaitable[None]], senders: int, pace: float, count: int
) -> dict[tuple[int, int], float]:
    """``count`` lines on the clock, ``pace`` a second, round the senders; each line's send moment."""
    sent: dict[tuple[int, int], float] = {}
    started = time.monotonic()
    tasks = []
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n / pace - time.monotonic()))
        key = (n % senders, n // senders)
        sent[key] = time.monotonic()
        tasks.append(asyncio.create_task(send(*key)))
    await asyncio.gather(*tasks)
    return sent


async def raw(
    room: MatrixRoom, staff: Timeline, senders: int, messages: int, pace: float, count: int
) -> tuple[Phase, list[float], int]:
    hs, token = room.synapse, room.bot.access_token
    own_sync = await Timeline(hs.base_url, token, room.room_id).start()  # as the bridge runs one
    try:
        roots = [await hs.send_text(token, room.room_id, f"raw thread {i}") for i in range(senders)]

        async def sender(i: int) -> None:
            for m in range(messages):
                await hs.send_text(token, room.room_id, f"raw: v{i}m{m}", thread_root=roots[i])

        seen = Seen(staff, room.bot.user_id, "v")
        started = time.monotonic()
        await asyncio.gather(*(sender(i) for i in range(senders)))
        last = await seen.wait_for(senders * messages)
        phase = Phase(senders * messages, last - started)

        async def one(i: int, m: int) -> None:
            await hs.send_text(token, room.room_id, f"raw: p{i}m{m}", thread_root=roots[i])

        steady = Seen(staff, room.bot.user_id, "p")
        sent = await paced(one, senders, pace, count)
        await steady.wait_for(count)
        latencies = [1000 * (steady.at[k] - t) for k, t in sent.items()]
        return phase, latencies, seen.inversions + steady.inversions
    finally:
        await own_sync.stop()


async def bridge(
    room: MatrixRoom, staff: Timeline, tmp: str, visitors: int, messages: int, pace: float, count: int
) -> tuple[Phase, list[float], int, float]:
    """The bridge's phase; also its CPU per line (ms)."""
    async with Server("bridge", None, f"{tmp}/bench.db", room.bridge_arguments(Path(tmp) / "store")) as server:
        clients: list[Client] = [await connect(server, i) for i in range(visitors)]
        try:
            warm = Seen(staff, room.bot.user_id, "v")
            await asyncio.gather(*(c.say(f"v{i}m0") for i, c in enumerate(clients)))
            await warm.wait_for(visitors)  # every thread's root is out

            seen = Seen(staff, room.bot.user_id, "v")
            before = await server.mark()
            started = time.monotonic()

            async def talk(i: int, client: Client) -> None:
                for m in range(1, messages + 1):
                    await client.say(f"v{i}m{m}")

            await asyncio.gather(*(talk(i, c) for i, c in enumerate(clients)))
            last = await seen.wait_for(visitors * messages)
            after = await server.mark()
            phase = Phase(visitors * messages, last - started)
            cpu_ms = 1000 * (after["cpu"] - before["cpu"]) / (visitors * messages)

            async def one(i: int, m: int) -> None:
                # on the clock: the socket's answers are not waited for (the readers drop them)
                await clients[i].ws.send_json({"type": "message", "client_msg_id": f"p{i}m{m}", "text": f"p{i}m{m}"})

            readers = [asyncio.create_task(_drain(c)) for c in clients]
            steady = Seen(staff, room.bot.user_id, "p")
            sent = await paced(one, visitors, pace, count)
            await steady.wait_for(count)
            for r in readers:
                r.cancel()
            latencies = [1000 * (steady.at[k] - t) for k, t in sent.items()]
            return phase, latencies, seen.inversions + steady.inversions, cpu_ms
        finally:
            for c in clients:
                await c.close()


async def _drain(client: Client) -> None:
    while True:
        await client.ws.receive()


async def main(visitors: int, messages: int, pace: float, seconds: float, tiny: bool) -> None:
    count = max(visitors, int(pace * seconds))
    with tempfile.TemporaryDirectory() as tmp:
        async with matrix_room(Path(tmp)) as room:
            staff = await Timeline(room.synapse.base_url, room.staff.access_token, room.room_id).start()
            try:
                raw_phase, raw_latency, raw_inversions = await raw(room, staff, visitors, messages, pace, count)
                bridge_phase, bridge_latency, sync_inversions, cpu_ms = await bridge(
                    room, staff, tmp, visitors, messages, pace, count
                )
            finally:
                await staff.stop()
            history = await room_history(room, room.bot.user_id)
    history_bad = history_inversions([e for e in history if not body(e).startswith("raw: ")], "v")
    history_bad += history_inversions([e for e in history if not body(e).startswith("raw: ")], "p")
    ratio = bridge_phase.rate / raw_phase.rate
    raw_p99, bridge_p99 = percentile(raw_latency, 0.99), percentile(bridge_latency, 0.99)
    print(f"{visitors} senders × {messages} lines into one room; then {count} lines at {pace:g}/s")
    for name, phase, lat in (("raw", raw_phase, raw_latency), ("bridge", bridge_phase, bridge_latency)):
        print(
            f"{name:7} {phase.lines} lines in {phase.seconds:.2f} s: {phase.rate:.1f} lines/s;"
            f" paced send → staff /sync p50 {percentile(lat, 0.5):.0f} ms, p99 {percentile(lat, 0.99):.0f} ms"
        )
    print(f"ratio:   {ratio:.2f} of raw; bridge CPU {cpu_ms:.2f} ms per line")
    print(f"order:   {sync_inversions} inversions in /sync, {history_bad} in /messages (raw: {raw_inversions})")
    print(f"/sync left events out {staff.gaps} times (limited timelines)")
    figure(
        "2. Matrix rate / raw+sync",
        f"≥ {TARGET_RATIO:g}",
        f"{ratio:.2f} ({bridge_phase.rate:.0f} vs {raw_phase.rate:.0f} lines/s)",
        None if tiny else ratio >= TARGET_RATIO,
    )
    figure(
        f"2. Matrix p99 at {pace:g}/s over raw",
        f"≤ +{TARGET_EXTRA_MS:g} ms",
        f"{bridge_p99 - raw_p99:+.0f} ms ({bridge_p99:.0f} vs {raw_p99:.0f} ms)",
        None if tiny else bridge_p99 - raw_p99 <= TARGET_EXTRA_MS,
    )
    in_order = sync_inversions == 0 and history_bad == 0
    figure("2. Matrix inversions (/sync, /messages)", "0, 0", f"{sync_inversions}, {history_bad}", in_order)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=16)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--pace", type=float, default=20.0, help="lines per second in the paced part")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the paced part goes on")
    parser.add_argument("--tiny", action="store_true", help="seconds, not a measurement: 2 visitors × 3 lines")
    args = parser.parse_args()
    if args.tiny:
        args.visitors, args.messages, args.seconds = 2, 3, 0.3
    asyncio.run(main(args.visitors, args.messages, args.pace, args.seconds, args.tiny))
