"""Case 6: a broken Slack destination pauses, says so everywhere an admin looks, keeps everything, drains in order."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fakes.slack_api import FakeSlack
from tests.faults.conftest import ProcessFactory
from tests.faults.helpers import doubles, thread_lines
from tests.faults.process import BridgeProcess, wait_drained
from tests.harness import Visitor, root_of, wait_until


async def _readyz(bridge: BridgeProcess) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{bridge.url}/readyz") as r:
        return r.status, await r.json()


async def _not_ready_because(bridge: BridgeProcess, *words: str) -> dict[str, Any] | None:
    status, body = await _readyz(bridge)
    problems = " ".join(body.get("problems", []))
    return body if status == 503 and all(w in problems for w in words) else None


async def _doctor(bridge: BridgeProcess) -> tuple[int, str]:
    """``sitechat doctor`` on the running bridge's own env file."""
    doctor = BridgeProcess(bridge.env_file, bridge.port, bridge.cwd, bridge.db_path)
    try:
        await doctor.spawn("doctor")
        code = await doctor.wait_exit(30)
    finally:
        await doctor.kill()
    return code, doctor.output


@pytest.mark.parametrize("fault", ["channel_not_found", "invalid_auth"])
async def test_broken_destination_pauses_reports_and_drains_in_order_once_fixed(
    bridge_process: ProcessFactory, fake_slack: FakeSlack, fault: str
) -> None:
    bridge = await bridge_process()
    ann, bob = Visitor(bridge.url), Visitor(bridge.url)
    try:
        await ann.start(name="Ann")
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="Ann's thread root")
        assert (await ann.say("one"))[0] == 201
        await fake_slack.wait_for(lambda: thread_lines(fake_slack, root["ts"]) == ["one"], message="'one' in Slack")
        assert (await _readyz(bridge))[0] == 200

        if fault == "channel_not_found":
            fake_slack.set_channel_missing("C0SUPPORT")  # deleted, or a wrong channel id
        else:
            fake_slack.bot_token = "xoxb-rotated"  # the bridge's token was revoked
        for text in ("two", "three", "four"):
            assert (await ann.say(text))[0] == 201  # still accepted: nothing is dropped

        body = await wait_until(
            lambda: _not_ready_because(bridge, "C0SUPPORT", fault), 15, f"/readyz to report {fault}"
        )
        assert body["status"] == "not_ready"
        assert f"slack C0SUPPORT paused: Slack says {fault}" in bridge.output
        code, report = await _doctor(bridge)
        assert code == 1, report
        assert fault in report, report
        if fault == "channel_not_found":
            assert "C0SUPPORT" in report, report
            # a stuck destination pauses only itself: the sales channel still works
            await bob.start(name="Bob", topic="sales")
            bob_root = await fake_slack.wait_for(lambda: root_of(fake_slack, "C0SALES", "Bob"), message="Bob's root")
            assert (await bob.say("sales still works"))[0] == 201
            await fake_slack.wait_for(
                lambda: thread_lines(fake_slack, bob_root["ts"], "C0SALES") == ["sales still works"],
                message="Bob's line in C0SALES",
            )
        assert thread_lines(fake_slack, root["ts"]) == ["one"]

        if fault == "channel_not_found":
            fake_slack.set_channel_missing("C0SUPPORT", missing=False)
        else:
            fake_slack.bot_token = "xoxb-test"
        await wait_drained(bridge, fake_slack, timeout=45)
        assert thread_lines(fake_slack, root["ts"]) == ["one", "two", "three", "four"]
        assert not doubles(fake_slack)
        assert (await _readyz(bridge))[0] == 200
        assert "slack C0SUPPORT works again" in bridge.output
    finally:
        await ann.close()
        await bob.close()
