"""Browsers on other sites are refused before any work (cross-site request forgery, WebSocket hijacking)."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, Visitor
from widget_server.context import CONTEXT

FOREIGN = [
    "https://evil.example",
    "null",  # sandboxed iframes and file: pages
    "http://acme.example",  # the right host on the wrong scheme
    "https://acme.example.evil.example",
    "https://acme.example:8443",
    "https://sub.acme.example",
]


def _cors(headers: Any) -> list[str]:
    return [h for h in headers if h.lower().startswith("access-control-")]


async def test_foreign_origins_get_403_with_no_cors_headers_and_do_no_work(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    # tight limits: had a refused request been counted, the friend below would be refused too
    bridge = await make_bridge(fake_slack, rate_conversations_per_hour=2, rate_messages_per_minute=1)
    assert bridge.runtime is not None
    ctx = bridge.runtime.app[CONTEXT]
    friend = Visitor(bridge.url)
    await friend.start()  # the first of the two new conversations this hour
    conversation = f"/api/v1/conversations/{friend.conversation_id}"
    try:
        for origin in FOREIGN:
            evil = Visitor(bridge.url, origin=origin)
            evil.token = friend.token  # even holding a stolen token, a foreign page gets nowhere
            try:
                for method, path, body in (
                    ("GET", "/api/v1/sites/acme", None),
                    ("POST", "/api/v1/sites/acme/conversations", {"visitor": {"name": "Mallory"}}),
                    ("POST", "/api/v1/sites/acme/offline-messages", {"email": "m@evil.example", "text": "spam"}),
                    ("OPTIONS", "/api/v1/sites/acme/conversations", None),
                    ("GET", f"{conversation}/messages", None),
                    ("POST", f"{conversation}/messages", {"client_msg_id": "evil", "text": "forged"}),
                    ("POST", f"{conversation}/close", None),
                    ("POST", f"{conversation}/messages", "x" * (100 * 1024)),  # refused before the body is read
                    ("GET", "/api/v1/openapi.json", None),
                ):
                    status, payload, headers = await evil.request(method, path, body)
                    assert status == 403, (origin, method, path, status)
                    assert payload["error"]["code"] == "origin_not_allowed"
                    assert not _cors(headers), (origin, path, headers)
                try:
                    await evil.session.ws_connect(
                        bridge.url.replace("http", "ws", 1) + f"{conversation}/ws", headers={"Origin": origin}
                    )
                    raise AssertionError(f"{origin} opened a socket")
                except aiohttp.WSServerHandshakeError as exc:
                    assert exc.status == 403
                    assert not _cors(exc.headers or {})
            finally:
                await evil.close()
        # nothing was done: no socket counted, no conversation, message or close, no rate-limit hit
        assert ctx.sockets == {}
        mine = await friend.messages()
        assert mine == {"status": "open", "messages": []}
        assert len([m for m in fake_slack.messages("C0SUPPORT") if "Mallory" in str(m)]) == 0
        assert (await friend.say("still mine", "f1"))[0] == 201  # the one message of this minute is still free
        status, _, headers = await friend.request("POST", "/api/v1/sites/acme/conversations", {"visitor": {}})
        assert status == 201 and headers["Access-Control-Allow-Origin"] == "https://acme.example"
        status, _, _ = await friend.request("POST", "/api/v1/sites/acme/conversations", {"visitor": {}})
        assert status == 429  # the limit is real: only the refused requests were not counted
    finally:
        await friend.close()


async def test_one_sites_origin_cannot_use_another_site(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    sites = {
        "acme": {"name": "Acme", "origins": ["https://acme.example"], "slack_channel": "C0SUPPORT"},
        "globex": {"name": "Globex", "origins": ["https://globex.example"], "slack_channel": "C0SALES"},
    }
    bridge = await make_bridge(fake_slack, sites=sites)
    acme, globex = Visitor(bridge.url), Visitor(bridge.url, site="globex", origin="https://globex.example")
    try:
        await acme.start()
        # globex's page, using acme's site or acme's conversation (even with its token), is refused
        status, _, headers = await globex.request("POST", "/api/v1/sites/acme/conversations", {"visitor": {}})
        assert status == 403 and not _cors(headers)
        status, body, headers = await globex.request(
            "GET", f"/api/v1/conversations/{acme.conversation_id}/messages", headers=globex.headers(acme.token)
        )
        assert status == 403 and body["error"]["code"] == "origin_not_allowed" and not _cors(headers)
        ws = await globex.session.ws_connect(
            bridge.url.replace("http", "ws", 1) + f"/api/v1/conversations/{acme.conversation_id}/ws",
            headers={"Origin": "https://globex.example"},
        )
        await ws.send_json({"type": "hello", "token": acme.token, "after": 0})
        frame = await ws.receive_json(timeout=5)
        assert frame["type"] == "error" and frame["code"] == "origin_not_allowed"
        await ws.close()
        assert (await acme.messages())["messages"] == []
    finally:
        await acme.close()
        await globex.close()


async def test_allowed_origins_get_cors_for_themselves_only(slack_bridge: RunningBridge) -> None:
    for origin in ("https://acme.example", "HTTPS://ACME.EXAMPLE", slack_bridge.url):
        friend = Visitor(slack_bridge.url, origin=origin)
        try:
            status, _, headers = await friend.request("GET", "/api/v1/sites/acme")
            assert status == 200
            assert headers["Access-Control-Allow-Origin"] == origin and headers["Vary"] == "Origin"
            assert "Access-Control-Allow-Credentials" not in headers  # no cookies: the token is the only credential
        finally:
            await friend.close()
    # no Origin at all: not a browser (curl, the server's own checks); answered, with no CORS headers
    anonymous = Visitor(slack_bridge.url, origin=None)
    try:
        status, _, headers = await anonymous.request("GET", "/api/v1/sites/acme")
        assert status == 200 and not _cors(headers)
    finally:
        await anonymous.close()
