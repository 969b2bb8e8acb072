"""Chaos: two real ``sitechat run`` processes on one PostgreSQL and one Slack channel, under visitor and
agent load, while instances are killed (-9) and restarted, lose every database connection
(``pg_terminate_backend``), and Slack loses the answer to one post in ten after storing the post.

At the end: nothing lost, nothing doubled, nothing out of order — every visitor line once in its
conversation's thread in the stored order, every agent reply once in the visitor's messages in the order
it was taken, one thread root per conversation.

The clients behave like the real ones: the widget resends a line with the same ``client_msg_id`` until
it is stored and goes to the other instance when the one it tried fails; Slack brings an event again
(same ``event_id``, ``X-Slack-Retry-Num``) until it gets a 2xx, through either instance. Faults come at
random moments drawn from ``random.Random(SEED)``, one after another (a killed instance is back before
the next fault), so one instance is always up.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres
from tests.fakes.slack_api import FakeSlack
from tests.faults.chaos import (
    ChaosAgent,
    ChaosVisitor,
    Tally,
    cut_instance,
    is_up,
    new_pg_bridge,
    notable_lines,
    pause,
    pending_deliveries,
)
from tests.faults.helpers import doubles, roots_for
from tests.harness import wait_until

SEED = 20261203
CHANNEL = "C0SUPPORT"
VISITORS = ("Ann Abbott", "Ben Bishop", "Cat Cole", "Dev Dunn", "Eli Eames", "Fay Ford", "Gil Grant")
LINES_PER_VISITOR = 15
REPLIES_PER_VISITOR = 3
FAULT_WINDOW = (2.0, 20.0)  # seconds into the load
LOAD_SECONDS = 60.0  # a line or reply not taken by then fails the test
DRAIN_SECONDS = 60.0
LOST_ANSWER_RATE = 0.10

ENV = {
    # the fake Slack has no rate limit; the default pace (1 post/s per channel) would only slow the drain
    "SLACK_POSTS_PER_SECOND": "50",
    # the limits are per instance and per visitor: resends must not meet them
    "SITECHAT_RATE_MESSAGES_PER_MINUTE": "600",
    "SITECHAT_RATE_CONVERSATIONS_PER_HOUR": "600",
}


def bot_lines(slack: FakeSlack, root_ts: str, agent_user: str) -> list[str]:
    """Every line the bridge posted in the thread, in ts order (a combined post holds several lines)."""
    return [
        line
        for m in slack.replies(CHANNEL, root_ts)
        if m.get("user") != agent_user
        for line in str(m.get("text", "")).split("\n")
    ]


@pytest.mark.slow
@pytest.mark.postgres
async def test_two_instances_under_kills_cuts_and_lost_answers_lose_and_double_nothing(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    began = time.monotonic()
    tally = Tally()
    kills: list[str] = []
    cuts: list[str] = []
    timings: dict[str, float] = {}

    async with fresh_postgres() as database_url:
        bridges = [new_pg_bridge(tmp_path / name, fake_slack, database_url, **ENV) for name in ("a", "b")]
        visitors: list[ChaosVisitor] = []
        agent = ChaosAgent(fake_slack, bridges, tally)
        replies_sent: dict[str, list[str]] = {name: [] for name in VISITORS}
        try:
            await asyncio.gather(*(b.start(timeout=45) for b in bridges))
            timings["start"] = time.monotonic() - began
            # Slack stores the post and the answer never comes (dropped at once, or after 2 s)
            fake_slack.random_faults(
                "chat.postMessage",
                rate=LOST_ANSWER_RATE,
                kinds=("accept_then_drop", "accept_then_timeout"),
                seed=SEED,
                hold=2.0,
            )
            # every post in flight long enough for a kill or a cut to land in the middle of one
            fake_slack.set_latency(0.2, "chat.postMessage")

            visitors = [ChaosVisitor(name, bridges, i % 2, tally) for i, name in enumerate(VISITORS)]
            load_began = time.monotonic()
            deadline = load_began + LOAD_SECONDS
            await asyncio.gather(*(v.start(deadline) for v in visitors))

            # the plan of faults, drawn up front from the seed
            n_kills, n_cuts = rng.choice((2, 3)), rng.choice((2, 3))
            plan = sorted(
                [("kill", rng.uniform(*FAULT_WINDOW), rng.randrange(2)) for _ in range(n_kills)]
                + [("cut", rng.uniform(*FAULT_WINDOW), rng.randrange(2)) for _ in range(n_cuts)],
                key=lambda f: f[1],
            )
            visitor_rngs = [random.Random(rng.random()) for _ in visitors]
            agent_rngs = [random.Random(rng.random()) for _ in visitors]

            async def faults() -> None:
                for kind, at, which in plan:
                    await asyncio.sleep(max(0.0, load_began + at - time.monotonic()))
                    bridge, label = bridges[which], "ab"[which]
                    t = time.monotonic() - load_began
                    if kind == "kill":
                        t0 = time.monotonic()
                        await bridge.restart()  # kill -9, then start again and wait until healthy
                        kills.append(f"{label}@{t:.1f}s (back in {time.monotonic() - t0:.1f}s)")
                    else:
                        names, n = await cut_instance(database_url, bridge)
                        assert n > 0, f"cut of instance {label} at {t:.1f}s found no connection to cut"
                        cuts.append(f"{label}@{t:.1f}s ({n} connections of {','.join(names)})")

            async def write(i: int, v: ChaosVisitor) -> None:
                for n in range(LINES_PER_VISITOR):
                    await asyncio.sleep(pause(visitor_rngs[i], 0.3, 1.6))
                    text = f"{v.name.split()[0]} line {n:02d} {uuid.uuid4().hex[:8]}"
                    await v.say(text, v.first + n, deadline)

            async def answer(i: int, v: ChaosVisitor) -> None:
                root = await fake_slack.wait_for(
                    lambda: roots_for(fake_slack, v.name, CHANNEL), timeout=30, message=f"{v.name}'s thread root"
                )
                for k in range(REPLIES_PER_VISITOR):
                    await asyncio.sleep(pause(agent_rngs[i], 1.0, 6.0))
                    text = f"Alice to {v.name.split()[0]}: reply {k} {uuid.uuid4().hex[:8]}"
                    await agent.reply(CHANNEL, root[0]["ts"], text, i + k, deadline)
                    replies_sent[v.name].append(text)

            async with asyncio.TaskGroup() as tg:
                tg.create_task(faults())
                for i, v in enumerate(visitors):
                    tg.create_task(write(i, v))
                    tg.create_task(answer(i, v))
            timings["load"] = time.monotonic() - load_began

            # ------------------------------------------------------------------ drain (bounded)
            drain_began = time.monotonic()
            all_lines = {t for v in visitors for t in v.sent}

            async def drained() -> bool:
                if not all(is_up(b) for b in bridges) or await pending_deliveries(database_url):
                    return False
                for v in visitors:
                    roots = roots_for(fake_slack, v.name, CHANNEL)
                    if not roots or not set(v.sent) <= set(bot_lines(fake_slack, roots[0]["ts"], agent.user_id)):
                        return False
                    texts = {m["text"] for m in await v.messages()}
                    if not set(replies_sent[v.name]) <= texts:
                        return False
                return True

            drain_problem = ""
            try:
                await wait_until(drained, DRAIN_SECONDS, "the outbox drained and everything delivered", 0.5)
            except AssertionError as exc:
                drain_problem = f"{exc}; deliveries still pending: {await pending_deliveries(database_url)}"
            timings["drain"] = time.monotonic() - drain_began

            # ------------------------------------------------------------------ verdict
            problems: list[str] = []
            if drain_problem:
                problems.append(drain_problem)
            for i, v in enumerate(visitors):
                stored = await v.messages(i)
                stored_visitor = [m["text"] for m in stored if m["author"]["role"] == "visitor"]
                stored_agent = [m["text"] for m in stored if m["author"]["role"] == "agent"]
                counts = Counter(stored_visitor)
                if stored_visitor != v.sent:
                    problems.append(
                        f"{v.name}: stored visitor lines differ from the lines sent: "
                        f"missing={[t for t in v.sent if t not in counts]} "
                        f"doubled={[t for t, c in counts.items() if c > 1]} "
                        f"unexpected={[t for t in counts if t not in v.sent]} "
                        f"order_ok={sorted(stored_visitor) == sorted(v.sent)}"
                    )
                agent_counts = Counter(stored_agent)
                if stored_agent != replies_sent[v.name]:
                    problems.append(
                        f"{v.name}: agent replies in the visitor's messages: got {stored_agent}, "
                        f"sent {replies_sent[v.name]} "
                        f"(missing={[t for t in replies_sent[v.name] if t not in agent_counts]}, "
                        f"doubled={[t for t, c in agent_counts.items() if c > 1]})"
                    )
                roots = roots_for(fake_slack, v.name, CHANNEL)
                if len(roots) != 1:
                    problems.append(f"{v.name}: {len(roots)} thread roots (ts {[r['ts'] for r in roots]})")
                if not roots:
                    continue
                in_thread = [ln for ln in bot_lines(fake_slack, roots[0]["ts"], agent.user_id) if ln in all_lines]
                thread_counts = Counter(in_thread)
                if in_thread != stored_visitor:
                    problems.append(
                        f"{v.name}: thread lines differ from the stored order: "
                        f"missing={[t for t in stored_visitor if t not in thread_counts]} "
                        f"doubled={[t for t, c in thread_counts.items() if c > 1]} "
                        f"foreign={[t for t in thread_counts if t not in stored_visitor]}\n"
                        f"    thread: {in_thread}\n    stored: {stored_visitor}"
                    )
            top_level = [m for m in fake_slack.messages(CHANNEL) if m.get("thread_ts") in (None, m["ts"])]
            if len(top_level) != len(visitors):
                problems.append(f"{len(top_level)} top-level messages in {CHANNEL} for {len(visitors)} conversations")
            double_posts = doubles(fake_slack, CHANNEL)
            if double_posts:
                problems.append(f"delivery ids posted more than once (delivery id, part → posts): {double_posts}")

            lost_answers = [
                c for c in fake_slack.calls_to("chat.postMessage") if c.fault and c.fault.startswith("accept")
            ]
            elapsed = time.monotonic() - began
            summary = (
                f"chaos summary: {sum(len(v.sent) for v in visitors)} visitor lines in {len(visitors)} conversations, "
                f"{sum(len(r) for r in replies_sent.values())} agent replies; "
                f"kills {len(kills)} {kills}; cuts {len(cuts)} {cuts}; "
                f"{len(lost_answers)} of {len(fake_slack.calls_to('chat.postMessage'))} chat.postMessage answers lost "
                f"after the post landed; visitor resends {tally.visitor_retries}, Slack event retries "
                f"{tally.agent_retries}; seconds: start {timings['start']:.1f}, load {timings['load']:.1f}, "
                f"drain {timings['drain']:.1f}, total {elapsed:.1f}; "
                f"problems {len(problems)}"
            )
            print("\n" + summary)
            for label, b in zip("ab", bridges, strict=True):
                print(
                    f"--- instance {label}: {b.output.count('Traceback')} tracebacks, "
                    f"{sum(1 for ln in b.output.splitlines() if 'ERROR' in ln)} ERROR lines, "
                    f"{sum(1 for ln in b.output.splitlines() if 'WARNING' in ln)} WARNING lines, {b.starts} starts"
                )
                log = tmp_path / f"instance-{label}.log"
                log.write_text(b.output, encoding="utf-8")  # the whole output, for a look after the run
                print(f"    full output: {log}")
                print(notable_lines(b, 15))
            if problems:
                evidence = "\n".join(
                    f"--- instance {label} (warnings/errors) ---\n{notable_lines(b)}"
                    for label, b in zip("ab", bridges, strict=True)
                )
                client_side = "\n".join(tally.failures[-40:])
                raise AssertionError(
                    summary
                    + "\n"
                    + "\n".join(problems)
                    + f"\n--- what the clients met (last 40) ---\n{client_side}\n{evidence}\n{fake_slack.describe()}"
                )
        finally:
            for v in visitors:
                await v.close()
            await agent.close()
            for b in bridges:
                await b.kill()
