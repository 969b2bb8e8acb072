"""What the fault tests read back from the fake Slack: lines in threads, posts, calls."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.fakes.slack_api import Call, FakeSlack
from tests.harness import RunningBridge, root_of

JSON = dict[str, Any]

METADATA_TYPE = "sitechat_delivery"


def thread_lines(slack: FakeSlack, root_ts: str, channel: str = "C0SUPPORT") -> list[str]:
    """Every line the bridge posted in the thread, in ts order (a combined post holds several lines)."""
    return [line for m in slack.replies(channel, root_ts) for line in str(m["text"]).split("\n")]


def delivery_ids_posted(slack: FakeSlack, channel: str = "C0SUPPORT") -> Counter[tuple[int, int]]:
    """(delivery id, part) → how many stored posts carry it: anything above 1 is a double post."""
    seen: Counter[tuple[int, int]] = Counter()
    for m in slack.messages(channel):
        meta = m.get("metadata") or {}
        if meta.get("event_type") == METADATA_TYPE:
            payload = meta["event_payload"]
            for did in payload["delivery_ids"]:
                seen[(int(did), int(payload.get("part", 0)))] += 1
    return seen


def doubles(slack: FakeSlack, *channels: str) -> dict[tuple[int, int], int]:
    found: dict[tuple[int, int], int] = {}
    for channel in channels or ("C0SUPPORT",):
        found.update({k: n for k, n in delivery_ids_posted(slack, channel).items() if n > 1})
    return found


def held_post(slack: FakeSlack, text: str | None = None) -> Call | None:
    """A chat.postMessage still waiting for its answer (held by a fault), optionally with ``text``."""
    for call in slack.calls_to("chat.postMessage"):
        if call.status == 0 and call.fault and (text is None or call.params.get("text") == text):
            return call
    return None


def lookups_since(slack: FakeSlack, since: float, method: str = "conversations.replies") -> list[Call]:
    """Calls that looked for our earlier posts by their metadata after ``since`` (monotonic)."""
    return [
        c
        for c in slack.calls_to(method)
        if c.at > since and str(c.params.get("include_all_metadata")).lower() in ("1", "true")
    ]


def roots_for(slack: FakeSlack, visitor: str, channel: str = "C0SUPPORT") -> list[JSON]:
    return [
        m
        for m in slack.messages(channel)
        if m.get("thread_ts") in (None, m["ts"]) and visitor in json.dumps(m.get("blocks", ""))
    ]


async def recorded_root(
    bridge: RunningBridge, slack: FakeSlack, channel: str = "C0SUPPORT", visitor: str = "Ann"
) -> JSON:
    """The thread root, once the bridge has recorded its ts: from then on replies in it are recognised.

    (A reply that comes before is not taken for one of ours; see the xfail test in test_slack_retries.)
    """
    root: JSON = await slack.wait_for(lambda: root_of(slack, channel, visitor), message=f"{visitor}'s thread root")
    await bridge.wait_idle()
    return root
