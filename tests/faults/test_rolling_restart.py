"""A rolling restart: two real ``sitechat run`` processes, A and B, on one PostgreSQL database and one
(fake) Slack; A gets SIGTERM in the middle of a burst of visitor lines, while it is sending one of them.

What an operator relies on (issue "Production": rolling restarts):

* A stops being ready at once (``/readyz`` 503, then nothing listens): never a 200 once the drain began;
* every widget socket A holds is closed with 1012 (service restart), and A refuses new ones meanwhile;
* A exits with code 0 within ``SITECHAT_SHUTDOWN_SECONDS`` (plus a small margin);
* the widget reconnects to B with ``after`` = the last seq it had and gets every later message exactly
  once, in order;
* every visitor line of the burst (each with its ``client_msg_id``, resent to B when A failed it) is in
  Slack exactly once, in order, and the outbox is empty at the end;
* the delivery A was sending when the signal came is *finished* by A, not abandoned in doubt behind a
  15 s send lease for B to wait out (and resend, maybe twice).

Which instance sends a conversation's lane is decided by a PostgreSQL advisory lock, held while the lane
has work. A starts alone and the burst begins on it, so A holds the lanes; B joins while the burst runs
(as the new instance of a rolling restart does) and the lanes, never running dry, stay with A. The test
then waits until A holds a lane with a send in flight (``in_doubt``, not done) before it sends the
signal, so the "finished, not abandoned" check is never vacuous. A's connections are found from the
outside, as in ``chaos.py`` (the process's TCP ports → ``pg_stat_activity.application_name``).

/readyz is polled on a fresh connection every 20 ms from the signal until the process is gone. That A
answers 503 at least once is reliable here because its drain has a send to finish (``POST_LATENCY``);
"never a 200 once the drain began" counts from the first 503 or the first 1012, whichever came first
(a probe answered before the signal was handled may still say 200).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import fresh_postgres
from tests.fakes.slack_api import FakeSlack
from tests.faults.chaos import (
    ChaosAgent,
    ChaosVisitor,
    Tally,
    is_up,
    new_pg_bridge,
    notable_lines,
    pending_deliveries,
    plain_dsn,
    postgres_client_ports,
    tail,
)
from tests.faults.helpers import doubles, roots_for, thread_lines
from tests.faults.process import BridgeProcess
from tests.harness import ORIGIN, Visitor, wait_until

JSON = dict[str, Any]
CHANNEL = "C0SUPPORT"
SHUTDOWN_SECONDS = 5.0
#: the process must be gone this long after SHUTDOWN_SECONDS at most (interpreter exit, closing pools)
EXIT_MARGIN = 2.0
#: the send lease another instance would have to wait out for an abandoned delivery (SEND_LEASE_SECONDS)
SEND_LEASE = 15.0
#: from A's exit until the burst's last line is in Slack: well under the lease (a behaviour check)
HANDOVER_LIMIT = 8.0
POST_LATENCY = 0.5  # every chat.postMessage is in flight this long: the signal lands in the middle of one
VISITORS = ("Ann Abbott", "Ben Bishop", "Cat Cole")
LINE_PAUSE = 0.12
LINES_AFTER_SIGTERM = 6  # to A while it drains (refused, or stored there and sent by B), then to B
MAX_LINES = 150  # a bound only: the burst lasts until shortly after the signal

ENV = {
    "SITECHAT_SHUTDOWN_SECONDS": f"{SHUTDOWN_SECONDS:g}",
    # the fake Slack has no rate limit; the default pace (1 post/s per channel) would only slow things down
    "SLACK_POSTS_PER_SECOND": "50",
    # the limits are per instance and per visitor: the burst and its resends must not meet them
    "SITECHAT_RATE_MESSAGES_PER_MINUTE": "600",
    "SITECHAT_RATE_CONVERSATIONS_PER_HOUR": "600",
}


# ---------------------------------------------------------------------------------------------- the database


async def instance_name(database_url: str, bridge: BridgeProcess) -> str:
    """The instance's ``application_name`` (``sitechat-<id>``), from its own TCP connections to PostgreSQL."""
    assert bridge.proc is not None
    ports = postgres_client_ports(bridge.proc.pid)
    admin = await asyncpg.connect(plain_dsn(database_url))
    try:
        names = await admin.fetch(
            "SELECT DISTINCT application_name FROM pg_stat_activity"
            " WHERE datname = current_database() AND client_port = ANY($1::int[])"
            " AND application_name LIKE 'sitechat-%'",
            ports,
        )
    finally:
        await admin.close()
    assert len(names) == 1, f"cannot tell the instance's connections apart: ports {ports}, names {names}"
    return str(names[0]["application_name"])


def lane_lock_key(endpoint: str, conversation_id: str) -> int:
    """The advisory lock key of a lane, as ``Database.lane_lock`` derives it from ``Lane.key``."""
    lane = f"{endpoint}:{conversation_id}"
    return int.from_bytes(hashlib.blake2b(lane.encode(), digest_size=8).digest(), "big", signed=True)


async def sending_by(admin: asyncpg.Connection, app_name: str) -> set[int]:
    """Deliveries being sent by the instance right now: in doubt, not done, in a lane it holds the lock of.

    The rows are read before the locks: a row read as in doubt in a lane the instance holds afterwards
    was marked by that instance (nobody else can have held the lane in between and left it in doubt)."""
    rows = await admin.fetch("SELECT id, conversation_id, endpoint FROM delivery WHERE in_doubt AND NOT done")
    if not rows:
        return set()
    held = {
        int(r["k"])
        for r in await admin.fetch(
            "SELECT (l.classid::bigint << 32) | l.objid::bigint AS k FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND a.datname = current_database() AND a.application_name = $1",
            app_name,
        )
    }
    return {int(r["id"]) for r in rows if lane_lock_key(r["endpoint"], r["conversation_id"]) in held}


async def _lane_picture(admin: asyncpg.Connection) -> str:
    """Who holds which advisory lock, and the deliveries in doubt (for a failure message)."""
    locks = await admin.fetch(
        "SELECT a.application_name, (l.classid::bigint << 32) | l.objid::bigint AS k FROM pg_locks l"
        " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
        " AND a.datname = current_database()"
    )
    rows = await admin.fetch("SELECT id, conversation_id, endpoint, done, in_doubt FROM delivery ORDER BY id")
    lanes = {
        lane_lock_key(r["endpoint"], r["conversation_id"]): f"{r['endpoint']}:{r['conversation_id']}" for r in rows
    }
    return (
        "advisory locks: "
        + ", ".join(f"{r['application_name']} {lanes.get(int(r['k']), r['k'])}" for r in locks)
        + f"\ndeliveries in doubt: {[dict(r) for r in rows if r['in_doubt']]}"
    )


# ---------------------------------------------------------------------------------------------- the widget


@dataclass
class SocketLog:
    """Every frame one live socket received, and how it ended."""

    where: str
    after: int
    frames: list[JSON] = field(default_factory=list)
    close_code: int | None = None
    closed_at: float | None = None
    ended: str = ""

    def seqs(self) -> list[int]:
        return [int(f["message"]["seq"]) for f in self.frames if f["type"] == "message"]


async def follow(ws: aiohttp.ClientWebSocketResponse, log: SocketLog) -> None:
    """Read the socket until it ends (the ``ready`` frame was read by ``Visitor.socket``)."""
    while True:
        msg = await ws.receive()
        if msg.type is aiohttp.WSMsgType.TEXT:
            log.frames.append(json.loads(msg.data))
            continue
        log.closed_at = time.monotonic()
        if msg.type is aiohttp.WSMsgType.CLOSE:
            log.close_code = int(msg.data)
        else:
            log.close_code = ws.close_code
        log.ended = f"{msg.type.name} data={msg.data!r} extra={msg.extra!r}"
        return


async def try_socket(session: aiohttp.ClientSession, bridge: BridgeProcess, conversation_id: str) -> str:
    """What a new socket on ``bridge`` meets: an HTTP status, ``refused``, or ``accepted``."""
    url = bridge.url.replace("http", "ws", 1) + f"/api/v1/conversations/{conversation_id}/ws"
    try:
        ws = await session.ws_connect(url, headers={"Origin": ORIGIN}, timeout=aiohttp.ClientWSTimeout(ws_close=2))
    except aiohttp.WSServerHandshakeError as exc:
        return str(exc.status)
    except aiohttp.ClientConnectorError:
        return "refused"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__
    await ws.close()
    return "accepted"


@dataclass
class Reader:
    visitor: ChaosVisitor
    on_a: SocketLog
    on_b: SocketLog | None = None
    a_again: str = ""  # what a new socket on A met right after the 1012
    browsers: list[Visitor] = field(default_factory=list)  # the widget's sessions: on A, then on B
    on_b_ws: aiohttp.ClientWebSocketResponse | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- readiness


@dataclass
class Probe:
    sent: float
    answered: float
    outcome: str  # "200", "503", …, "refused", or an exception's name


async def probe_readiness(bridge: BridgeProcess, probes: list[Probe]) -> None:
    """``/readyz`` on a fresh connection every 20 ms, until the process is gone."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=1)) as session:
        while is_up(bridge):
            sent = time.monotonic()
            try:
                async with session.get(f"{bridge.url}/readyz") as r:
                    await r.read()
                    outcome = str(r.status)
            except aiohttp.ClientConnectorError:
                outcome = "refused"
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome = type(exc).__name__
            probes.append(Probe(sent, time.monotonic(), outcome))
            await asyncio.sleep(0.02)


async def ready_status(bridge: BridgeProcess) -> tuple[int, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.get(f"{bridge.url}/readyz") as r:
            return r.status, await r.json()


# ---------------------------------------------------------------------------------------------- the test


@pytest.mark.slow
@pytest.mark.postgres
async def test_sigterm_during_a_burst_hands_everything_over_once_and_in_order(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    began = time.monotonic()
    tally = Tally()
    timings: dict[str, float] = {}

    async with fresh_postgres() as database_url:
        a, b = (new_pg_bridge(tmp_path / name, fake_slack, database_url, **ENV) for name in ("a", "b"))
        bridges = [a, b]
        visitors: list[ChaosVisitor] = []
        readers: list[Reader] = []
        agent = ChaosAgent(fake_slack, bridges, tally)
        admin: asyncpg.Connection | None = None
        try:
            # A alone first: it takes every lane of the burst, and keeps them while they stay busy
            await a.start(timeout=45)
            timings["start_a"] = time.monotonic() - began
            deadline = time.monotonic() + 50
            a_name = await instance_name(database_url, a)
            admin = await asyncpg.connect(plain_dsn(database_url))

            # ------------------------------------------------------------ conversations, threads, sockets on A
            visitors = [ChaosVisitor(name, bridges, 0, tally) for name in VISITORS]
            await asyncio.gather(*(v.start(deadline) for v in visitors))
            for v in visitors:
                await v.say(f"{v.name.split()[0]} hello {uuid.uuid4().hex[:8]}", 0, deadline)
            roots: dict[str, str] = {}
            for v in visitors:
                roots[v.name] = await fake_slack.wait_for(
                    _thread_with(fake_slack, v.name, v.sent[0]), timeout=15, message=f"{v.name}'s first line"
                )
            for v in visitors:
                browser = Visitor(a.url)
                browser.conversation_id, browser.token = v.conversation_id, v.token
                live = await browser.socket(after=0)
                reader = Reader(v, SocketLog("A", 0), browsers=[browser])
                reader.tasks.append(asyncio.create_task(follow(live.ws, reader.on_a)))
                readers.append(reader)

            fake_slack.set_latency(POST_LATENCY, "chat.postMessage")

            # ------------------------------------------------------------ the burst, the signal, the drain
            sigterm = asyncio.Event()
            a_gone = asyncio.Event()
            probes: list[Probe] = []
            in_flight_at_signal: set[int] = set()
            sent_by_a_during_drain: set[int] = set()
            replies_sent: dict[str, list[str]] = {v.name: [] for v in visitors}

            def target() -> int:
                """Where the load balancer sends a request: A while its process is there, then B."""
                return 0 if is_up(a) else 1

            async def burst(v: ChaosVisitor) -> None:
                """A line every LINE_PAUSE (each posted in LATENCY: the lane never runs dry) until
                LINES_AFTER_SIGTERM lines after the signal — to A while it drains, then to B."""
                after = 0
                for n in range(MAX_LINES):
                    if sigterm.is_set():
                        if after == LINES_AFTER_SIGTERM:
                            return
                        after += 1
                    await v.say(f"{v.name.split()[0]} burst {n:02d} {uuid.uuid4().hex[:8]}", target(), deadline)
                    await asyncio.sleep(LINE_PAUSE)
                raise AssertionError(f"{v.name}: {MAX_LINES} lines and still no SIGTERM")

            async def replies(v: ChaosVisitor) -> None:
                """An agent's reply while A is sending, and one right after the signal (to A or to B)."""
                first = v.name.split()[0]
                await asyncio.sleep(0.5)
                text = f"Alice to {first}: before {uuid.uuid4().hex[:8]}"
                await agent.reply(CHANNEL, roots[v.name], text, target(), deadline)
                replies_sent[v.name].append(text)
                await sigterm.wait()
                await asyncio.sleep(0.05)
                text = f"Alice to {first}: during {uuid.uuid4().hex[:8]}"
                await agent.reply(CHANNEL, roots[v.name], text, target(), deadline)
                replies_sent[v.name].append(text)

            async def hand_over(reader: Reader) -> None:
                """The widget: on 1012, reconnect — A must refuse; then B, after the last seq it has."""
                await reader.tasks[0]
                reader.a_again = await try_socket(reader.browsers[0].session, a, reader.visitor.conversation_id)
                seqs = reader.on_a.seqs()
                after = seqs[-1] if seqs else 0
                browser = Visitor(b.url)
                browser.conversation_id, browser.token = reader.visitor.conversation_id, reader.visitor.token
                reader.browsers.append(browser)
                live = await browser.socket(after=after)
                reader.on_b = SocketLog("B", after)
                reader.on_b_ws = live.ws
                reader.tasks.append(asyncio.create_task(follow(live.ws, reader.on_b)))

            left_behind: list[asyncpg.Record] = []
            in_doubt_after_exit = -1

            async def restart_a() -> None:
                nonlocal left_behind, in_doubt_after_exit
                assert admin is not None
                # B joins while the burst runs on A (a rolling restart has the new instance up first)
                b_began = time.monotonic()
                await b.start(timeout=45)
                timings["start_b"] = time.monotonic() - b_began
                status, body = await ready_status(b)
                assert status == 200, f"B is not ready: {body}"
                status, body = await ready_status(a)
                assert status == 200, f"A is not ready before the restart: {body}"
                try:
                    in_flight = await wait_until(
                        lambda: sending_by(admin, a_name), 10, "A sending a delivery (in doubt, in a lane it holds)"
                    )
                except AssertionError:
                    raise AssertionError(
                        f"A ({a_name}) never held a lane with a send in flight during the burst; the test cannot "
                        f"check the drain\n{await _lane_picture(admin)}\n{fake_slack.describe()}"
                    ) from None
                assert a.proc is not None
                in_flight_at_signal.update(in_flight)
                timings["sigterm"] = time.monotonic()
                a.proc.send_signal(signal.SIGTERM)
                sigterm.set()
                watcher = asyncio.create_task(probe_readiness(a, probes))
                try:
                    while is_up(a):
                        sent_by_a_during_drain.update(await sending_by(admin, a_name))
                        await asyncio.sleep(0.05)
                finally:
                    await watcher
                await a_gone.wait()
                # at once, before B could take over anything A left behind (it would wait out the lease)
                handed = in_flight_at_signal | sent_by_a_during_drain
                left_behind = await admin.fetch(
                    "SELECT id, done, in_doubt, attempts, next_attempt_at - now() AS lease_left, last_error"
                    " FROM delivery WHERE id = ANY($1::bigint[]) AND NOT done ORDER BY id",
                    sorted(handed),
                )
                in_doubt_after_exit = int(
                    await admin.fetchval("SELECT count(*) FROM delivery WHERE in_doubt AND NOT done")
                )

            async def wait_exit() -> int:
                await sigterm.wait()
                assert a.proc is not None
                async with asyncio.timeout(SHUTDOWN_SECONDS + 20):
                    code = await a.proc.wait()
                timings["exit"] = time.monotonic()
                a_gone.set()
                await a.wait_exit()  # the rest of its output
                return code

            load_began = time.monotonic()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(restart_a())
                exit_code = tg.create_task(wait_exit())
                for v in visitors:
                    tg.create_task(burst(v))
                    tg.create_task(replies(v))
                for reader in readers:
                    tg.create_task(hand_over(reader))
            timings["load"] = time.monotonic() - load_began
            exit_seconds = timings["exit"] - timings["sigterm"]

            # ------------------------------------------------------------ B delivers the rest
            all_lines = {t for v in visitors for t in v.sent}

            def everything_in_slack() -> bool:
                for v in visitors:
                    in_thread = set(thread_lines(fake_slack, roots[v.name], CHANNEL))
                    if not set(v.sent) <= in_thread:
                        return False
                return True

            handover_problem = ""
            try:
                await fake_slack.wait_for(everything_in_slack, SEND_LEASE + 10, "every burst line in Slack")
            except AssertionError as exc:
                handover_problem = str(exc)
            timings["all_in_slack_after_exit"] = time.monotonic() - timings["exit"]
            drain_problem = ""
            try:
                await wait_until(
                    lambda: _none_pending(database_url), 20, "the outbox drained (no delivery NOT done)", 0.1
                )
            except AssertionError as exc:
                drain_problem = f"{exc}: {await pending_deliveries(database_url)} pending"

            # every socket on B has seen every stored message: a ping's pong comes after what was queued
            stored: dict[str, list[JSON]] = {}
            for reader in readers:
                v = reader.visitor
                stored[v.name] = await v.messages(1)
                log = reader.on_b
                assert log is not None
                want = {int(m["seq"]) for m in stored[v.name] if int(m["seq"]) > log.after}
                await wait_until(_has_seqs(log, want), 10, f"{v.name}'s socket on B")
                # and nothing more: a ping's pong comes after every frame the server had queued before it
                assert reader.on_b_ws is not None
                await reader.on_b_ws.send_json({"type": "ping"})
                await wait_until(_has_seqs(log, set(), "pong"), 10, f"{v.name}'s pong on B")

            # ------------------------------------------------------------ verdict
            problems: list[str] = []
            code = exit_code.result()
            if code != 0:
                problems.append(f"A exited with code {code}")
            if exit_seconds > SHUTDOWN_SECONDS + EXIT_MARGIN:
                problems.append(
                    f"A took {exit_seconds:.2f} s from SIGTERM to exit "
                    f"(SITECHAT_SHUTDOWN_SECONDS={SHUTDOWN_SECONDS:g}, margin {EXIT_MARGIN:g} s)"
                )

            # readiness: 503 (or nothing listening) from the drain on, never a 200 again
            first_close = min((r.on_a.closed_at for r in readers if r.on_a.closed_at is not None), default=None)
            first_503 = next((p.answered for p in probes if p.outcome == "503"), None)
            drain_seen = min((t for t in (first_close, first_503) if t is not None), default=None)
            if first_503 is None:
                problems.append(f"/readyz on A never answered 503 while A drained: {_outcomes(probes)}")
            if drain_seen is not None:
                late_200 = [p for p in probes if p.outcome == "200" and p.sent > drain_seen]
                if late_200:
                    problems.append(
                        f"/readyz on A answered 200 after the drain began "
                        f"({len(late_200)} times, first {late_200[0].sent - timings['sigterm']:.3f} s after SIGTERM): "
                        f"{_outcomes(probes)}"
                    )
            odd = [p.outcome for p in probes if p.outcome not in ("200", "503", "refused")]

            for reader in readers:
                v, on_a, on_b = reader.visitor, reader.on_a, reader.on_b
                assert on_b is not None
                if on_a.close_code != 1012:
                    problems.append(f"{v.name}: the socket on A ended with {on_a.close_code} ({on_a.ended}), not 1012")
                if reader.a_again not in ("503", "refused"):
                    problems.append(f"{v.name}: a new socket on A during its drain met {reader.a_again!r}")
                seqs = [int(m["seq"]) for m in stored[v.name]]
                got = on_a.seqs() + on_b.seqs()
                if got != seqs:
                    seq_counts = Counter(got)
                    problems.append(
                        f"{v.name}: the sockets (A, then B after={on_b.after}) did not give every message once in "
                        f"order: doubled={[s for s, c in seq_counts.items() if c > 1]} "
                        f"missing={[s for s in seqs if s not in seq_counts]}\n"
                        f"    on A: {on_a.seqs()}\n    on B: {on_b.seqs()}\n    stored: {seqs}"
                    )
                stored_visitor = [m["text"] for m in stored[v.name] if m["author"]["role"] == "visitor"]
                if stored_visitor != v.sent:
                    problems.append(f"{v.name}: stored visitor lines {stored_visitor} != acknowledged {v.sent}")
                stored_agent = [m["text"] for m in stored[v.name] if m["author"]["role"] == "agent"]
                if stored_agent != replies_sent[v.name]:
                    problems.append(f"{v.name}: agent replies stored {stored_agent} != sent {replies_sent[v.name]}")
                if len(roots_for(fake_slack, v.name, CHANNEL)) != 1:
                    problems.append(f"{v.name}: {len(roots_for(fake_slack, v.name, CHANNEL))} thread roots")
                in_thread = [ln for ln in thread_lines(fake_slack, roots[v.name], CHANNEL) if ln in all_lines]
                if in_thread != v.sent:
                    counts = Counter(in_thread)
                    problems.append(
                        f"{v.name}: Slack thread lines differ from the lines sent: "
                        f"missing={[t for t in v.sent if t not in counts]} "
                        f"doubled={[t for t, c in counts.items() if c > 1]}\n"
                        f"    thread: {in_thread}\n    sent:   {v.sent}"
                    )
            double_posts = doubles(fake_slack, CHANNEL)
            if double_posts:
                problems.append(f"delivery ids posted more than once (delivery id, part → posts): {double_posts}")
            if handover_problem:
                problems.append(handover_problem)
            if drain_problem:
                problems.append(drain_problem)

            # finished, not abandoned
            if left_behind:
                problems.append(
                    f"A abandoned deliveries it was sending (not done when it exited): {[dict(r) for r in left_behind]}"
                )
            if timings["all_in_slack_after_exit"] > HANDOVER_LIMIT:
                problems.append(
                    f"the last burst line reached Slack {timings['all_in_slack_after_exit']:.1f} s after A exited "
                    f"(limit {HANDOVER_LIMIT:g} s; an abandoned send lease is {SEND_LEASE:g} s)"
                )

            summary = (
                f"rolling restart: {sum(len(v.sent) for v in visitors)} visitor lines, "
                f"{sum(len(r) for r in replies_sent.values())} agent replies in {len(visitors)} conversations; "
                f"A sending {sorted(in_flight_at_signal)} at SIGTERM, {sorted(sent_by_a_during_drain)} seen "
                f"during the drain; A exit code {code} after {exit_seconds:.2f} s; "
                f"readyz after SIGTERM: {_outcomes(probes)}; "
                f"new socket on A after 1012: {[r.a_again for r in readers]}; "
                f"socket hand-over after seq {[r.on_b.after for r in readers if r.on_b]}; "
                f"in doubt right after A's exit (any instance): {in_doubt_after_exit}; "
                f"visitor resends {tally.visitor_retries}, event retries {tally.agent_retries}; seconds: "
                f"start A {timings['start_a']:.1f}, B {timings.get('start_b', -1):.1f} (during the burst), "
                f"load {timings['load']:.1f}, "
                f"exit → all in Slack {timings['all_in_slack_after_exit']:.2f}, "
                f"total {time.monotonic() - began:.1f}; problems {len(problems)}"
            )
            print("\n" + summary)
            if odd:
                print(f"readyz: other outcomes {Counter(odd)}")
            for label, bridge in (("a", a), ("b", b)):
                log_file = tmp_path / f"instance-{label}.log"
                log_file.write_text(bridge.output, encoding="utf-8")
                print(f"--- instance {label}: full output in {log_file}\n{notable_lines(bridge, 15)}")
            if problems:
                raise AssertionError(
                    summary
                    + "\n"
                    + "\n".join(problems)
                    + "\n--- what the clients met ---\n"
                    + "\n".join(tally.failures[-30:])
                    + f"\n--- instance A (last lines) ---\n{tail(a, 40)}"
                    + f"\n--- instance B (warnings/errors) ---\n{notable_lines(b)}\n{fake_slack.describe()}"
                )
        finally:
            for reader in readers:
                for task in reader.tasks:
                    task.cancel()
                await asyncio.gather(*reader.tasks, return_exceptions=True)
                for browser in reader.browsers:
                    await browser.close()
            for v in visitors:
                await v.close()
            await agent.close()
            if admin is not None:
                await admin.close()
            for bridge in bridges:
                await bridge.kill()


def _thread_with(slack: FakeSlack, visitor: str, line: str) -> Callable[[], str | None]:
    """The ts of the visitor's thread root once ``line`` is in the thread (the bridge recorded the thread)."""

    def check() -> str | None:
        roots = roots_for(slack, visitor, CHANNEL)
        if roots and line in thread_lines(slack, roots[0]["ts"], CHANNEL):
            return str(roots[0]["ts"])
        return None

    return check


def _has_seqs(log: SocketLog, seqs: set[int], frame_type: str = "") -> Callable[[], bool]:
    """The socket got every message of ``seqs`` (and a frame of ``frame_type``, if given)."""

    def check() -> bool:
        if frame_type and not any(f["type"] == frame_type for f in log.frames):
            return False
        return seqs <= set(log.seqs())

    return check


async def _none_pending(database_url: str) -> bool:
    return await pending_deliveries(database_url) == 0


def _outcomes(probes: list[Probe]) -> str:
    """The run-length sequence of /readyz answers, e.g. ``200×2 503×31 refused×4``."""
    runs: list[tuple[str, int]] = []
    for p in probes:
        if runs and runs[-1][0] == p.outcome:
            runs[-1] = (p.outcome, runs[-1][1] + 1)
        else:
            runs.append((p.outcome, 1))
    return " ".join(f"{o}×{n}" for o, n in runs) or "none"
