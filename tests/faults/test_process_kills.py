"""Cases 1, 2 and 13 of "nothing lost, nothing doubled": a real ``sitechat run`` killed with SIGKILL."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.slack_api import FakeSlack
from tests.faults.conftest import ProcessFactory
from tests.faults.helpers import doubles, held_post, lookups_since, roots_for, thread_lines
from tests.faults.process import BridgeProcess, bridge_env, wait_drained, write_env
from tests.harness import Visitor, free_port, root_of


async def test_killed_between_commit_and_send_posts_exactly_once(
    bridge_process: ProcessFactory, fake_slack: FakeSlack
) -> None:
    """Case 1: messages committed (201) but not (or not yet) in Slack when the process dies."""
    bridge = await bridge_process()
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        # Slack holds the next post without storing it: the bridge is mid-send when it dies
        fake_slack.fail_next("chat.postMessage", kind="timeout", hold=120)
        assert (await visitor.say("first"))[0] == 201
        await fake_slack.wait_for(lambda: held_post(fake_slack, "first"), message="the post of 'first' in flight")
        # committed while the lane is busy: never tried before the kill
        for text in ("second", "third"):
            assert (await visitor.say(text))[0] == 201
        await bridge.kill()
        assert thread_lines(fake_slack, root["ts"]) == []

        restarted = time.monotonic()
        await bridge.start()
        await wait_drained(bridge, fake_slack)
        assert thread_lines(fake_slack, root["ts"]) == ["first", "second", "third"]
        assert not doubles(fake_slack)
        # "first" was in flight at the kill: the bridge looked before posting it again
        assert lookups_since(fake_slack, restarted)
        assert len(roots_for(fake_slack, "Ann")) == 1
    finally:
        await visitor.close()


@pytest.mark.parametrize("what", ["reply", "root"])
async def test_killed_after_slack_accepted_a_post_no_second_post(
    bridge_process: ProcessFactory, fake_slack: FakeSlack, what: str
) -> None:
    """Case 2: Slack stored the post, the answer (with its ts) never reached the bridge before the kill."""
    bridge = await bridge_process()
    visitor = Visitor(bridge.url)
    try:
        if what == "root":
            fake_slack.fail_next("chat.postMessage", kind="accept_then_hold", hold=120)
            await visitor.start()
            await fake_slack.wait_for(lambda: held_post(fake_slack) and root_of(fake_slack), message="root stored")
        else:
            await visitor.start()
            await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
            fake_slack.fail_next("chat.postMessage", kind="accept_then_hold", hold=120)
            assert (await visitor.say("only once"))[0] == 201
            await fake_slack.wait_for(lambda: held_post(fake_slack, "only once"), message="'only once' stored, held")
        await bridge.kill()

        restarted = time.monotonic()
        await bridge.start()
        assert (await visitor.say("after the restart"))[0] == 201
        await wait_drained(bridge, fake_slack)

        roots = roots_for(fake_slack, "Ann")
        assert len(roots) == 1, f"{len(roots)} thread roots for one conversation"
        expected = ["after the restart"] if what == "root" else ["only once", "after the restart"]
        assert thread_lines(fake_slack, roots[0]["ts"]) == expected
        assert not doubles(fake_slack)
        method = "conversations.history" if what == "root" else "conversations.replies"
        assert lookups_since(fake_slack, restarted, method), f"no {method} lookup before posting again"
    finally:
        await visitor.close()


async def test_second_instance_on_the_same_sqlite_file_refuses_to_start(
    bridge_process: ProcessFactory, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """Case 13: SQLite means one instance; a second ``sitechat run`` says so and stops."""
    first = await bridge_process()
    # its own port, so only the shared database can stop it
    other = tmp_path / "second"
    other.mkdir()
    port = free_port()
    env = write_env(other / "sitechat.env", bridge_env(first.db_path, fake_slack, port))
    second = BridgeProcess(env, port, other, first.db_path)
    try:
        await second.spawn()
        code = await second.wait_exit(30)
    finally:
        await second.kill()
    out = second.output
    assert code != 0, out
    assert str(first.db_path) in out, out
    assert "PostgreSQL" in out and "another sitechat instance" in out, out
    assert "Traceback" not in out, out
    async with aiohttp.ClientSession() as session, session.get(f"{first.url}/healthz") as r:
        assert r.status == 200  # the first one is unharmed
