"""Returning visitors (CONTRACT §8), end to end through the widget API and the fake Slack: the widget's key
for the browser links a visitor's chats; the root of a later chat says how many there were and the last
rating, with a link to the last chat's thread (Slack's permalink)."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import Visitor

KEY = "3f9a1c2b7d4e4f60a1b2c3d4e5f60718"


def roots(slack: FakeSlack, channel: str = "C0SUPPORT") -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("thread_ts") in (None, m["ts"]) and m.get("blocks")]


def returning_text(root: dict[str, Any]) -> str | None:
    found = [b["text"]["text"] for b in root["blocks"] if "Returning visitor" in json.dumps(b.get("text", ""))]
    return found[0] if found else None


async def chat(bridge_url: str, slack: FakeSlack, key: str | None, *, rating: int | None = None) -> dict[str, Any]:
    """One chat from a browser with ``key``: started, its root posted, closed (and rated); its root."""
    visitor = Visitor(bridge_url)
    try:
        before = len(roots(slack))
        who = {"name": "Ann", "email": "ann@example.com"} | ({"key": key} if key else {})
        await visitor.start(visitor=who)
        root = await slack.wait_for(lambda: len(roots(slack)) > before and roots(slack)[-1], message="the root")
        status, _, _ = await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
        assert status == 200
        if rating is not None:
            status, body, _ = await visitor.request(
                "POST", f"/api/v1/conversations/{visitor.conversation_id}/rating", {"score": rating}
            )
            assert status == 200, body
        return root
    finally:
        await visitor.close()


async def test_the_root_of_a_returning_visitors_chat_counts_the_earlier_ones_and_links_the_last(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str
) -> None:
    """On SQLite and PostgreSQL."""
    bridge = await make_bridge(fake_slack, database_url=database_url)
    first = await chat(bridge.url, fake_slack, KEY, rating=4)
    assert returning_text(first) is None  # a first chat is just a chat
    second = await chat(bridge.url, fake_slack, KEY)
    link = f"https://{fake_slack.team_domain}.slack.com/archives/C0SUPPORT/p{first['ts'].replace('.', '')}"
    assert returning_text(second) == f"*Returning visitor: 1 earlier chat, last rated 4/5* · <{link}|last chat>"
    third = await chat(bridge.url, fake_slack, KEY)
    link = f"https://{fake_slack.team_domain}.slack.com/archives/C0SUPPORT/p{second['ts'].replace('.', '')}"
    # the last chat was not rated: the last rating given is still the first one's
    assert returning_text(third) == f"*Returning visitor: 2 earlier chats, last rated 4/5* · <{link}|last chat>"
    # the line stays when the root is updated (closed, rated)
    updated = await fake_slack.wait_for(
        lambda: "Status: Closed" in json.dumps(m := fake_slack.message("C0SUPPORT", third["ts"])) and m,
        message="the root updated on close",
    )
    assert returning_text(updated) == returning_text(third)


async def test_another_browser_or_none_is_a_new_visitor(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack)
    await chat(bridge.url, fake_slack, KEY)
    assert returning_text(await chat(bridge.url, fake_slack, "0" * 32)) is None
    assert returning_text(await chat(bridge.url, fake_slack, None)) is None


async def test_a_verified_identity_wins_over_the_browsers_key(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    """The customer logged in on another browser is still returning; someone else on their browser is not."""
    import hashlib
    import hmac

    secret = "identity-secret-of-acme"
    bridge = await make_bridge(fake_slack, site={"identity_secret": secret})

    def identity(customer: str) -> dict[str, str]:
        digest = hmac.new(secret.encode(), customer.encode(), hashlib.sha256).hexdigest()
        return {"name": "Ann", "id": customer, "hash": digest}

    async def start(who: dict[str, str]) -> str | None:
        visitor = Visitor(bridge.url)
        try:
            before = len(roots(fake_slack))
            await visitor.start(visitor=who)
            return returning_text(
                await fake_slack.wait_for(lambda: len(roots(fake_slack)) > before and roots(fake_slack)[-1])
            )
        finally:
            await visitor.close()

    assert await start(identity("cust-1") | {"key": KEY}) is None
    assert (await start(identity("cust-1") | {"key": "f" * 32}) or "").startswith("*Returning visitor: 1 earlier chat")
    assert await start(identity("cust-2") | {"key": KEY}) is None


async def test_a_key_that_is_no_key_is_a_422(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack)
    visitor = Visitor(bridge.url)
    try:
        for bad in ["short", "x" * 65, "has spaces in it ....", "ümläüte-ümläüte-ümläüte", 12345678901234567]:
            status, body, _ = await visitor.request(
                "POST", "/api/v1/sites/acme/conversations", {"visitor": {"name": "Ann", "key": bad}}
            )
            assert status == 422 and body["error"]["code"] == "invalid", (bad, body)
            assert "key" in body["error"]["message"]
    finally:
        await visitor.close()
