"""The widget API from a stranger's side: validation, tokens, origins, limits. Never a 500."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import ORIGIN, RunningBridge, Visitor, root_of


async def test_site_info(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    status, info, headers = await visitor.request("GET", "/api/v1/sites/ACME")
    assert status == 200
    assert info == {
        "site": "acme",
        "name": "Acme",
        "online": True,
        "greeting": "Hi! Ask us anything.",
        "topics": [{"id": "sales", "label": "Sales"}, {"id": "support", "label": "Support"}],
        "office_hours": None,
        # the site's one greeting in every language (CONTRACT §10: no per-language texts set)
        "greetings": dict.fromkeys(("en", "de", "fr", "es"), "Hi! Ask us anything."),
    }
    assert headers["Access-Control-Allow-Origin"] == "https://acme.example"
    status, body, _ = await visitor.request("GET", "/api/v1/sites/nope")
    assert status == 404 and body["error"]["code"] == "unknown_site"


async def test_foreign_origin_is_refused_without_cors_headers(slack_bridge: RunningBridge) -> None:
    evil = Visitor(slack_bridge.url, origin="https://evil.example")
    try:
        status, body, headers = await evil.request("POST", "/api/v1/sites/acme/conversations", {"visitor": {}})
        assert status == 403 and body["error"]["code"] == "origin_not_allowed"
        assert not [h for h in headers if h.lower().startswith("access-control-")]
        status, _, headers = await evil.request("OPTIONS", "/api/v1/sites/acme/conversations")
        assert status == 403 and "Access-Control-Allow-Origin" not in headers
        try:
            await evil.session.ws_connect(
                slack_bridge.url.replace("http", "ws") + "/api/v1/conversations/x/ws",
                headers={"Origin": "https://evil.example"},
            )
            raise AssertionError("a foreign origin opened a socket")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 403
    finally:
        await evil.close()
    friend = Visitor(slack_bridge.url)
    try:
        status, _, headers = await friend.request("OPTIONS", "/api/v1/sites/acme/conversations")
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://acme.example"
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
    finally:
        await friend.close()


async def test_tokens_belong_to_one_conversation(slack_bridge: RunningBridge) -> None:
    a, b = Visitor(slack_bridge.url), Visitor(slack_bridge.url)
    try:
        await a.start(name="A")
        await b.start(name="B")
        path = f"/api/v1/conversations/{a.conversation_id}"
        status, body, _ = await a.request("GET", f"{path}/messages", headers={"Origin": a.origin})
        assert status == 401 and body["error"]["code"] == "unauthorized"
        for method, tail, payload in (
            ("GET", "/messages", None),
            ("POST", "/messages", {"client_msg_id": "x", "text": "hi"}),
            ("POST", "/close", None),
            ("POST", "/rating", {"score": 5}),
        ):
            status, wrong, _ = await a.request(method, path + tail, payload, headers=b.headers())
            assert status == 403, (tail, wrong)
            status, unknown, _ = await a.request(
                method, "/api/v1/conversations/nope" + tail, payload, headers=a.headers()
            )
            assert status == 403 and unknown == wrong
        assert (await a.messages())["messages"] == []
        assert (await a.messages())["status"] == "open"
        ws = await a.session.ws_connect(
            slack_bridge.url.replace("http", "ws") + f"{path}/ws", headers={"Origin": a.origin}
        )
        await ws.send_json({"type": "hello", "token": b.token, "after": 0})
        frame = await ws.receive_json(timeout=5)
        assert frame["type"] == "error" and frame["code"] == "forbidden"
        assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert b.token not in json.dumps(frame)
    finally:
        await a.close()
        await b.close()


async def test_bad_input_gets_clear_4xx(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    await visitor.start()
    msgs = f"/api/v1/conversations/{visitor.conversation_id}/messages"
    cases = [
        ("{not json", 400, "bad_json"),
        ("[1, 2]", 400, "bad_json"),
        ("[" * 5000 + "]" * 5000, 400, "bad_json"),
        ({"client_msg_id": "a", "text": "   "}, 422, "invalid"),
        ({"client_msg_id": "a", "text": "x" * 4001}, 422, "invalid"),
        ({"client_msg_id": "a", "text": "nul \u0000 byte"}, 422, "invalid"),
        ({"client_msg_id": "a", "text": "evil \u202e text"}, 422, "invalid"),
        ('{"client_msg_id": "a", "text": "lone \\ud800 surrogate"}', 422, "invalid"),
        ({"client_msg_id": "", "text": "hi"}, 422, "invalid"),
        ({"text": "hi"}, 422, "invalid"),
        ("x" * (65 * 1024), 413, "too_large"),
    ]
    for body, status, code in cases:
        got, payload, _ = await visitor.request("POST", msgs, body)
        assert (got, payload["error"]["code"]) == (status, code), (str(body)[:40], payload)
        assert payload["error"]["message"]
    status, payload, _ = await visitor.request("GET", msgs + "?after=abc")
    assert status == 400
    status, payload, _ = await visitor.request("POST", "/api/v1/sites/acme/conversations", {"topic": "nope"})
    assert status == 422 and "topic" in payload["error"]["message"]
    rating = f"/api/v1/conversations/{visitor.conversation_id}/rating"
    assert (await visitor.request("POST", rating, {"score": 5}))[0] == 409  # before close
    await visitor.request("POST", f"/api/v1/conversations/{visitor.conversation_id}/close")
    for bad in ({"score": 0}, {"score": 6}, {"score": "5"}, {"score": True}, {}):
        assert (await visitor.request("POST", rating, bad))[0] == 422, bad
    status, _ = await visitor.say("after close")
    assert status == 409
    assert (await visitor.messages())["messages"] == []


async def test_socket_messages_dedupe_and_frames(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    await visitor.start()
    live = await visitor.socket()
    await live.ws.send_json({"type": "message", "client_msg_id": "s1", "text": "over the socket"})
    first = await live.wait_frame(lambda f: f["type"] == "message")
    assert first["message"]["client_msg_id"] == "s1" and first["message"]["seq"] == 1
    await live.ws.send_json({"type": "message", "client_msg_id": "s1", "text": "over the socket"})
    await live.ws.send_json({"type": "ping"})
    await live.wait_frame(lambda f: f["type"] == "pong")
    await live.ws.send_json({"type": "message", "client_msg_id": "s2", "text": ""})
    error = await live.wait_frame(lambda f: f["type"] == "error")
    assert error["code"] == "invalid"
    await live.ws.send_str("{broken")
    await live.ws.send_json({"type": "page", "url": "https://acme.example/checkout", "title": "Checkout"})
    await live.ws.send_json({"type": "typing"})
    await live.ws.send_json({"type": "ping"})
    await live.wait_frame(lambda f: f["type"] == "pong" and [x["type"] for x in live.frames].count("pong") >= 2)
    assert [f["code"] for f in live.frames if f["type"] == "error"] == ["invalid", "bad_json"]
    messages = (await visitor.messages())["messages"]
    assert [m["client_msg_id"] for m in messages] == ["s1"]
    await live.ws.send_str(json.dumps({"type": "message", "client_msg_id": "big", "text": "x" * 70_000}))
    closing = await live.ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert live.ws.close_code == 1009


async def test_rate_limits(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack, rate_conversations_per_hour=2, rate_messages_per_minute=3)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        await visitor.start()
        status, body, headers = await visitor.request("POST", "/api/v1/sites/acme/conversations", {"visitor": {}})
        assert status == 429 and int(headers["Retry-After"]) > 0 and body["error"]["code"] == "rate_limited"
        for i in range(3):
            assert (await visitor.say(f"m{i}", f"id{i}"))[0] == 201
        status, body = await visitor.say("one too many", "id9")
        assert status == 429
        assert (await visitor.say("m0", "id0"))[0] == 200  # a resend is not a new message
    finally:
        await visitor.close()


async def test_health_ready_metrics_widget_and_demo(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    assert (await visitor.request("GET", "/healthz"))[0] == 200
    status, ready, _ = await visitor.request("GET", "/readyz")
    assert status == 200 and ready["problems"] == []
    status, _, headers = await visitor.request("GET", "/metrics")
    assert status == 200 and "text/plain" in headers["Content-Type"]
    status, js, headers = await visitor.request("GET", "/widget.js")
    assert status == 200 and "javascript" in headers["Content-Type"] and "attachShadow" in js
    status, html, headers = await visitor.request("GET", "/demo")
    assert status == 200 and 'data-site="acme"' in html and f"{slack_bridge.url}/widget.js" in html
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_offline_message_reaches_the_channel(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, visitor: Visitor
) -> None:
    status, body, _ = await visitor.request(
        "POST",
        "/api/v1/sites/acme/offline-messages",
        {"name": "Olga", "email": "olga@example.com", "text": "Call me <!here>"},
    )
    assert status == 202, body
    root = await fake_slack.wait_for(lambda: root_of(fake_slack, visitor="Olga"), message="offline root")
    assert "Offline message" in root["text"]
    note = await fake_slack.wait_for(lambda: fake_slack.replies("C0SUPPORT", root["ts"]), message="offline text")
    assert "olga@example.com" in note[0]["text"] and "Call me &lt;!here&gt;" in note[0]["text"]
    status, body, _ = await visitor.request("POST", "/api/v1/sites/acme/offline-messages", {"text": "no email"})
    assert status == 422


async def test_answers_keep_their_shapes(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    """The typed answers serialise to exactly what the widget has always had (CONTRACT §3)."""
    started = await visitor.start()
    assert set(started) == {"conversation", "token"}
    assert set(started["conversation"]) == {"id", "status", "created_at"}
    assert started["conversation"]["status"] == "open" and started["conversation"]["created_at"].endswith("Z")
    status, posted = await visitor.say("Hello there", "shape-1")
    assert status == 201 and set(posted) == {"message"}
    message = posted["message"]
    # empty optional keys are left out, never null: no edited_at, deleted or avatar_url here
    assert set(message) == {"id", "seq", "conversation_id", "author", "text", "created_at", "client_msg_id"}
    assert message["author"] == {"role": "visitor", "name": "Ann"}
    assert message["created_at"].endswith("Z") and message["seq"] == 1
    listed = await visitor.messages()
    assert listed == {"status": "open", "messages": [message]}
    assert (await visitor.say("Hello there", "shape-1")) == (200, posted)
    base = f"/api/v1/conversations/{visitor.conversation_id}"
    assert (await visitor.request("POST", f"{base}/close"))[:2] == (200, {"status": "closed"})
    assert (await visitor.request("POST", f"{base}/rating", {"score": 4}))[:2] == (200, {"score": 4, "comment": None})
    status, body, _ = await visitor.request("GET", "/api/v1/sites/nope")
    assert body == {"error": {"code": "unknown_site", "message": "there is no site 'nope'"}}


async def test_odd_values_the_schema_admits_are_4xx_never_5xx(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str
) -> None:
    """Values that got through to code (or a database) that could not take them: each was a 500 or 503."""
    bridge = await make_bridge(fake_slack, database_url=database_url, site={"identity_secret": "s3cret"})
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        base = f"/api/v1/conversations/{visitor.conversation_id}"
        # a non-ASCII identity hash: hmac.compare_digest refused the str (500); it is simply not valid
        start = "/api/v1/sites/acme/conversations"
        status, body, _ = await visitor.request("POST", start, {"visitor": {"id": "u1", "hash": "é" * 64}})
        assert status == 201, body
        # a seq past a 32-bit INTEGER: PostgreSQL refused the query (503); SQLite took it
        status, body, _ = await visitor.request("GET", f"{base}/messages?after={2**31}")
        assert status == 400 and body["error"]["code"] == "invalid", body
        assert (await visitor.request("GET", f"{base}/messages?after={2**31 - 1}"))[0] == 200
        # a NUL in the conversation id: PostgreSQL refused the query (503); the answer of an unknown id
        assert (await visitor.request("GET", "/api/v1/conversations/a%00b/messages"))[0] == 403
        # a bearer token that is not UTF-8: hashing it raised UnicodeEncodeError (500)
        assert await _raw_status(bridge.url, f"{base}/messages", b"Bearer \xff\xfe") == 401
    finally:
        await visitor.close()


async def _raw_status(base_url: str, path: str, authorization: bytes) -> int:
    """GET with an Authorization header of raw bytes (an HTTP client library would refuse to send them)."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {ORIGIN}\r\nConnection: close\r\n".encode()
        writer.write(head + b"Authorization: " + authorization + b"\r\n\r\n")
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
    return int(status_line.split()[1])
