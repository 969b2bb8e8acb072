"""One visitor cannot reach another's conversation, and the token that guards it never leaks.

Every test here talks to a running server over HTTP/WebSocket, as a stranger on the internet would.
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import types
from typing import Any

import aiohttp
import pytest

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, SlackAgent, Visitor, root_of, wait_until

# the six things a token opens (CONTRACT §3/§4); the socket is checked separately below
GUARDED: list[tuple[str, str, Any]] = [
    ("GET", "/messages?after=0", None),
    ("POST", "/messages", {"client_msg_id": "intruder-1", "text": "written by someone else"}),
    ("POST", "/close", None),
    ("POST", "/rating", {"score": 1, "comment": "not mine to rate"}),
    ("POST", "/transcript", {"email": "intruder@evil.example"}),
]
VOLATILE = {"date", "content-length"}  # the only headers two identical answers may differ in


def _comparable(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in VOLATILE}


def _random_bits(value: str) -> int:
    return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))) * 8


async def _hello(bridge: RunningBridge, session: aiohttp.ClientSession, cid: str, token: str) -> tuple[Any, Any]:
    """What the socket of conversation ``cid`` answers to a hello with ``token``: (frame, close code)."""
    ws = await session.ws_connect(
        bridge.url.replace("http", "ws", 1) + f"/api/v1/conversations/{cid}/ws",
        headers={"Origin": "https://acme.example"},
    )
    await ws.send_json({"type": "hello", "token": token, "after": 0})
    frame = await ws.receive_json(timeout=5)
    closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    code = ws.close_code
    await ws.close()
    return frame, code


async def test_a_token_opens_only_its_own_conversation(slack_bridge: RunningBridge) -> None:
    a, b = Visitor(slack_bridge.url), Visitor(slack_bridge.url)
    try:
        await a.start(name="A")
        await b.start(name="B")
        await b.say("B's private words", "b1")
        for method, tail, body in GUARDED:
            on_b = await a.request(
                method, f"/api/v1/conversations/{b.conversation_id}{tail}", body, headers=a.headers()
            )
            unknown = await a.request(method, f"/api/v1/conversations/{'x' * 24}{tail}", body, headers=a.headers())
            assert on_b[0] == 403 and on_b[1]["error"]["code"] == "forbidden", (tail, on_b)
            # the same status, body and headers: nothing tells a wrong token from a conversation that does not exist
            assert (on_b[0], on_b[1], _comparable(on_b[2])) == (unknown[0], unknown[1], _comparable(unknown[2])), tail
            assert a.token not in json.dumps(on_b[1]) and b.token not in json.dumps(on_b[1])
        # B's conversation is as B left it: A's attempts wrote, closed and rated nothing
        mine = await b.messages()
        assert mine["status"] == "open" and [m["text"] for m in mine["messages"]] == ["B's private words"]
        status, _, _ = await b.request("POST", f"/api/v1/conversations/{b.conversation_id}/close")
        assert status == 200
        status, _, _ = await b.request("POST", f"/api/v1/conversations/{b.conversation_id}/rating", {"score": 5})
        assert status == 200, "A's rating attempt must not have used up B's rating"

        # the socket: A's token in a hello for B's conversation is refused exactly like an unknown id
        on_b = await _hello(slack_bridge, a.session, b.conversation_id, a.token)
        unknown = await _hello(slack_bridge, a.session, "y" * 24, a.token)
        assert on_b == unknown
        assert on_b[0]["type"] == "error" and on_b[0]["code"] == "forbidden" and on_b[1] == 4403
        assert a.token not in json.dumps(on_b[0])
    finally:
        await a.close()
        await b.close()


async def test_ids_and_tokens_are_long_random_and_distinct(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack, rate_conversations_per_hour=1000)
    visitor = Visitor(bridge.url)
    try:
        ids, tokens = set(), set()
        for _ in range(30):
            started = await visitor.start()
            ids.add(started["conversation"]["id"])
            tokens.add(started["token"])
        assert len(ids) == len(tokens) == 30
        assert min(_random_bits(i) for i in ids) >= 128
        assert min(_random_bits(t) for t in tokens) >= 128
        assert not ids & tokens
    finally:
        await visitor.close()


async def test_a_token_in_the_url_opens_nothing(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    """The API never puts tokens in URLs (where logs, proxies and Referer headers keep them), and never takes them."""
    await visitor.start()
    path = f"/api/v1/conversations/{visitor.conversation_id}/messages"
    for query in (
        f"?token={visitor.token}",
        f"?access_token={visitor.token}",
        f"?authorization=Bearer%20{visitor.token}",
    ):
        status, body, _ = await visitor.request("GET", path + query, headers={"Origin": visitor.origin})
        assert status == 401 and body["error"]["code"] == "unauthorized", query
    status, doc, _ = await visitor.request("GET", "/api/v1/openapi.json")
    assert status == 200
    for item in doc["paths"].values():
        for operation in [item, *(op for op in item.values() if isinstance(op, dict))]:
            for parameter in operation.get("parameters", []):
                assert "token" not in parameter["name"].lower(), parameter
                # a file's link is signed for that one file and expires (exp, sig): it opens no conversation
                allowed = ("site", "id", "after", "language", "aid", "exp", "sig")
                assert parameter["in"] in ("path", "query") and parameter["name"] in allowed, parameter


async def test_the_token_never_reaches_logs_errors_or_the_team_chat(
    slack_bridge: RunningBridge, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole conversation, with the failures a real one meets, logged at DEBUG: the token appears nowhere."""
    caplog.set_level(logging.DEBUG)
    visitor, other = Visitor(slack_bridge.url), Visitor(slack_bridge.url)
    agent = SlackAgent(slack_bridge.url, fake_slack)
    seen: list[Any] = []  # every answer and frame the server gave
    try:
        started = await visitor.start()
        seen.append(started)
        await other.start(name="Other")
        cid, token = visitor.conversation_id, visitor.token
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="thread root")
        live = await visitor.socket()
        seen.append((await visitor.say("hello there", "c1"))[1])
        await agent.reply("C0SUPPORT", root["ts"], "Hi! How can I help?")
        await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
        # failures: bad JSON, bad fields, a frame that is not JSON, the token on someone else's conversation,
        # a wrong token, a token with junk around it, the token as a hello for another conversation
        base = f"/api/v1/conversations/{cid}"
        for method, path, body, headers in (
            ("POST", f"{base}/messages", "{oops", visitor.headers()),
            ("POST", f"{base}/messages", {"client_msg_id": "c2", "text": "\u0000"}, visitor.headers()),
            ("GET", f"{base}/messages?after=x", None, visitor.headers()),
            ("GET", f"/api/v1/conversations/{other.conversation_id}/messages", None, visitor.headers()),
            ("GET", f"{base}/messages", None, visitor.headers(token + "x")),
            ("GET", f"{base}/messages", None, {"Origin": visitor.origin, "Authorization": f"Basic {token}"}),
            ("POST", f"{base}/transcript", {"email": "ann@example.com"}, visitor.headers()),
            ("POST", f"{base}/rating", {"score": 3}, visitor.headers()),
        ):
            status, payload, _ = await visitor.request(method, path, body, headers=headers)
            assert 400 <= status < 600 and status != 500, (path, status, payload)
            seen.append(payload)
        await live.ws.send_str("{not json")
        await live.ws.send_json({"type": "message", "client_msg_id": "c3", "text": "\u202e"})
        seen.append(await live.wait_frame(lambda f: f["type"] == "error" and f["code"] == "invalid"))
        seen.append((await _hello(slack_bridge, visitor.session, other.conversation_id, token))[0])
        await visitor.request("POST", f"{base}/close")
        await live.wait_frame(lambda f: f == {"type": "status", "status": "closed"})
        seen.append((await visitor.request("POST", f"{base}/rating", {"score": 4}))[1])
        await live.close()
        await slack_bridge.wait_idle()
        seen.extend(live.frames)

        assert token not in json.dumps(seen[1:]), "an answer or frame carried the token"
        assert token not in caplog.text
        for record in caplog.records:
            assert token not in record.getMessage() and token not in str(record.exc_text or "")
        assert caplog.records, "nothing was logged at all: the capture is not looking at the server"
        assert all(token not in json.dumps(call.params) for call in fake_slack.calls)
    finally:
        await visitor.close()
        await other.close()
        await agent.close()


async def test_refused_tokens_leave_nothing_behind(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    """A stranger guessing tokens must not grow the server: refusals keep no traceback chains alive."""
    await visitor.start()
    path = f"/api/v1/conversations/{visitor.conversation_id}/messages"

    def tracebacks() -> int:
        gc.collect()
        return sum(isinstance(o, types.TracebackType) for o in gc.get_objects())

    async def guess(n: int) -> None:
        for i in range(n):
            status, _, _ = await visitor.request("GET", path, headers=visitor.headers(f"guess-{i}"))
            assert status == 403

    await guess(20)  # warm up: lazily created objects are not growth
    before = tracebacks()
    await guess(200)
    await wait_until(lambda: tracebacks() - before < 50, timeout=5, what="refusals to be forgotten")
