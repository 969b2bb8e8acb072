"""Case 12: closing while deliveries still wait for Slack; closing more than once."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.slack.blocks import CLOSE
from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.faults.helpers import METADATA_TYPE, doubles, recorded_root
from tests.harness import Visitor, visitor_and_agent

JSON = dict[str, Any]


def _delivery_ids(message: JSON) -> tuple[int, ...]:
    meta = message.get("metadata") or {}
    return tuple(meta["event_payload"]["delivery_ids"]) if meta.get("event_type") == METADATA_TYPE else ()


def _transcript_posts(replies: list[JSON]) -> list[JSON]:
    """The posts of the transcript delivery (a long one is split over several)."""
    starts = [m for m in replies if m["text"].startswith("Transcript")]
    assert len(starts) == 1, f"{len(starts)} transcripts in the thread"
    ids = _delivery_ids(starts[0])
    return [m for m in replies if _delivery_ids(m) == ids]


def _in_order_once(text: str, pieces: list[str]) -> bool:
    at = [text.find(p) for p in pieces]
    return all(text.count(p) == 1 for p in pieces) and at == sorted(at) and at[0] >= 0


async def test_close_while_slack_fails_transcript_comes_after_everything_once(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str
) -> None:
    bridge = await make_bridge(fake_slack, database_url=database_url)
    async with visitor_and_agent(bridge, fake_slack) as (visitor, agent):
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        fake_slack.fail_for("chat.postMessage", seconds=3, status=500)  # Slack failing for a while
        lines = [f"line {i}" for i in range(5)]
        for text in lines:
            assert (await visitor.say(text))[0] == 201
        # closed from every side, more than once, while all of it is still pending
        for _ in range(2):
            status, body, _ = await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
            assert (status, body) == (200, {"status": "closed"})
        assert await agent.click(CLOSE, "C0SUPPORT", root["ts"], visitor.conversation_id) == 200
        assert len(fake_slack.replies("C0SUPPORT", root["ts"])) == 0, "the failure window did not hold them back"

        await bridge.wait_idle(timeout=30)
        replies = fake_slack.replies("C0SUPPORT", root["ts"])
        transcript = _transcript_posts(replies)
        before = replies[: replies.index(transcript[0])]
        assert [line for m in before for line in m["text"].split("\n")] == lines
        assert replies[len(before) + len(transcript) :] == [], "something came after the transcript"
        assert _in_order_once(transcript[0]["text"], [f"Ann: {line}" for line in lines])
        assert not doubles(fake_slack)
        assert fake_slack.updates_of("C0SUPPORT", root["ts"]), "the root was not updated to closed"
        assert "Closed" in str(fake_slack.message("C0SUPPORT", root["ts"])["blocks"])


@pytest.mark.parametrize("fault", ["500", "accept_then_drop"])
async def test_long_transcript_split_over_posts_survives_a_failed_part(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, fault: str
) -> None:
    """The second part of a split transcript fails (500: not posted; accept_then_drop: posted, answer lost)."""
    bridge = await make_bridge(fake_slack)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        root = await recorded_root(bridge, fake_slack)
        lines = [f"{chr(ord('A') + i)}{i}" * 900 for i in range(3)]  # 1,800 characters each: two parts
        for text in lines:
            assert (await visitor.say(text))[0] == 201
        await bridge.wait_idle(timeout=20)
        faults: dict[str, dict[str, Any]] = {"500": {"status": 500}, "accept_then_drop": {"kind": "accept_then_drop"}}
        kind = faults[fault]
        fake_slack.fail_next("chat.postMessage", when=lambda p: p["metadata"]["event_payload"]["part"] == 1, **kind)
        status, _, _ = await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
        assert status == 200
        await bridge.wait_idle(timeout=20)

        assert [c.fault for c in fake_slack.calls_to("chat.postMessage") if c.fault], "the part did not fail"
        posts = _transcript_posts(fake_slack.replies("C0SUPPORT", root["ts"]))
        parts = [m["metadata"]["event_payload"]["part"] for m in posts]
        assert parts == list(range(len(parts))) and len(parts) >= 2, parts
        assert _in_order_once("\n".join(m["text"] for m in posts), lines), "the transcript lost or doubled a line"
        assert not doubles(fake_slack)
    finally:
        await visitor.close()
