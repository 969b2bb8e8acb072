"""What a stranger can make the server do, and how much: limits, malformed input, sockets that misbehave.

The limits' settings: ``SITECHAT_RATE_CONVERSATIONS_PER_HOUR`` and ``SITECHAT_RATE_MESSAGES_PER_MINUTE``;
the socket limits (open sockets per address, heartbeat, hello timeout) live on ``WidgetContext`` and are
set on the running server's context here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import BridgeFactory
from tests.e2e.test_email_transcript import Inbox
from tests.fakes.slack_api import FakeSlack
from tests.harness import ORIGIN, RunningBridge, Visitor, free_port, root_of, wait_until
from widget_server.context import CONTEXT, WidgetContext

# -- a WebSocket client by hand, for what aiohttp's will not do: stop reading, send broken frames --


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455 §5.2)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(
        cls, base_url: str, path: str, origin: str = "https://acme.example", receive_buffer: int | None = None
    ) -> RawSocket:
        host, port = base_url.split("://", 1)[1].split(":")
        sock = socket.socket()
        if receive_buffer is not None:  # before connecting, so the window the server sees is small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        # a small stream limit: once 2 KiB are buffered here, the client stops reading the socket
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send_json(self, data: Any) -> None:
        self.writer.write(_frame(json.dumps(data).encode()))

    def send_raw(self, payload: bytes, opcode: int = 0x1) -> None:
        self.writer.write(_frame(payload, opcode))

    async def read_frame(self, timeout: float = 5) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; (-1, b"") when the connection ended."""
        try:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            return b0 & 0x0F, await asyncio.wait_for(self.reader.readexactly(n), timeout)
        except (asyncio.IncompleteReadError, ConnectionError):
            return -1, b""

    def close(self) -> None:
        self.writer.close()


def _ctx(bridge: RunningBridge) -> WidgetContext:
    assert bridge.runtime is not None
    return bridge.runtime.app[CONTEXT]


def _ws_url(bridge: RunningBridge, cid: str) -> str:
    return bridge.url.replace("http", "ws", 1) + f"/api/v1/conversations/{cid}/ws"


# -- per address and per conversation ------------------------------------------------------------------


async def test_open_sockets_per_address_are_capped(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    ctx = _ctx(slack_bridge)
    ctx.sockets_per_address = 3
    await visitor.start()
    # many handshakes at once: the cap holds even when they race each other
    attempts = await asyncio.gather(
        *(
            visitor.session.ws_connect(_ws_url(slack_bridge, visitor.conversation_id), headers={"Origin": ORIGIN})
            for _ in range(8)
        ),
        return_exceptions=True,
    )
    opened = [ws for ws in attempts if isinstance(ws, aiohttp.ClientWebSocketResponse)]
    refused = [exc for exc in attempts if isinstance(exc, aiohttp.WSServerHandshakeError)]
    assert len(opened) == 3 and len(refused) == 5, attempts
    assert all(exc.status == 429 and int((exc.headers or {})["Retry-After"]) > 0 for exc in refused)
    await opened[0].close()
    await wait_until(lambda: ctx.sockets.get("127.0.0.1") == 2, what="a closed socket to free its place")
    again = await visitor.session.ws_connect(_ws_url(slack_bridge, visitor.conversation_id), headers={"Origin": ORIGIN})
    for ws in (again, *opened[1:]):
        await ws.close()
    await wait_until(lambda: not ctx.sockets, what="every place to be free")


async def test_socket_messages_and_frames_are_limited(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack, rate_messages_per_minute=3)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        live = await visitor.socket()
        for i in range(4):
            await live.ws.send_json({"type": "message", "client_msg_id": f"s{i}", "text": f"line {i}"})
        limited = await live.wait_frame(lambda f: f["type"] == "error")
        assert limited["code"] == "rate_limited"
        assert [m["text"] for m in (await visitor.messages())["messages"]] == ["line 0", "line 1", "line 2"]
        # a flood of cheap frames: one error, then silence; the flood does not reach the store or the team
        for _ in range(500):
            await live.ws.send_json({"type": "ping"})
        with contextlib.suppress(TimeoutError):
            while True:
                await live.next_frame(timeout=0.5)
        pongs = [f for f in live.frames if f["type"] == "pong"]
        assert 0 < len(pongs) <= _ctx(bridge).frames_per_10_seconds
        errors = [f for f in live.frames if f["type"] == "error" and f["code"] == "rate_limited"]
        assert len(errors) == 2, "one error for the messages, one for the flood"
        assert (await visitor.messages())["status"] == "open"
    finally:
        await visitor.close()


async def test_a_message_refused_for_what_it_is_costs_no_place(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, database_url: str
) -> None:
    """The limit counts stored messages: lines refused (a file that is not the conversation's) and
    resends take no place, on SQLite (counted in memory) and PostgreSQL (counted in the message's own
    transaction) alike."""
    bridge = await make_bridge(fake_slack, database_url=database_url, rate_messages_per_minute=2)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        for i in range(3):
            status, payload = await visitor.say("see the file", f"bad{i}", attachment_ids=["not-an-upload-of-yours"])
            assert status == 403 and payload["error"]["code"] == "forbidden", payload
        assert (await visitor.say("line 0", "ok0"))[0] == 201
        assert (await visitor.say("line 0", "ok0"))[0] == 200  # a resend
        assert (await visitor.say("line 1", "ok1"))[0] == 201
        status, payload = await visitor.say("line 2", "ok2")
        assert status == 429 and payload["error"]["code"] == "rate_limited", payload
        said = [m["text"] for m in (await visitor.messages())["messages"] if m["author"]["role"] == "visitor"]
        assert said == ["line 0", "line 1"]
    finally:
        await visitor.close()


async def test_page_views_cannot_flood_the_team_chat(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack)
    limit = _ctx(bridge).page_views_per_minute
    visitor = Visitor(bridge.url)
    try:
        await visitor.start()
        live = await visitor.socket()
        for i in range(60):  # each one would rewrite the thread's root in Slack
            await live.ws.send_json({"type": "page", "url": f"https://acme.example/p{i}", "title": f"P{i}"})
        await live.ws.send_json({"type": "ping"})
        await live.wait_frame(lambda f: f["type"] == "pong")
        await bridge.wait_idle()
        root = root_of(fake_slack)
        assert root is not None
        seen = re.search(r"Pages seen\*? \((\d+)\)", json.dumps(root["blocks"]))
        assert seen is not None and int(seen.group(1)) <= limit + 1, seen
    finally:
        await visitor.close()


async def test_transcripts_are_limited_so_the_server_is_no_mail_relay(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        bridge = await make_bridge(fake_slack, smtp_url=f"smtp://127.0.0.1:{smtp.port}", mail_from="help@acme.example")
        ctx = _ctx(bridge)
        per_conversation, per_address = ctx.transcripts_per_conversation, ctx.transcripts_per_address
        answers: list[tuple[int, Any]] = []
        visitor = Visitor(bridge.url)
        try:
            while len(answers) <= per_address + per_conversation:
                await visitor.start()
                path = f"/api/v1/conversations/{visitor.conversation_id}/transcript"
                for _ in range(per_conversation + 1):
                    status, _, headers = await visitor.request("POST", path, {"email": "victim@example.org"})
                    answers.append((status, headers.get("Retry-After")))
        finally:
            await visitor.close()
        accepted = [a for a in answers if a[0] == 202]
        assert len(accepted) == per_address
        assert all(status == 429 and int(retry) > 0 for status, retry in answers if status != 202)
        assert answers[per_conversation][0] == 429, "the conversation's own limit comes first"
    finally:
        smtp.stop()


@pytest.mark.parametrize("trusted", [False, True])
async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, trusted: bool
) -> None:
    proxies = ["127.0.0.1"] if trusted else []
    bridge = await make_bridge(fake_slack, rate_conversations_per_hour=2, trusted_proxies=proxies)
    visitor = Visitor(bridge.url)

    async def start(forwarded: str) -> int:
        headers = {"Origin": ORIGIN, "X-Forwarded-For": forwarded}
        return (await visitor.request("POST", "/api/v1/sites/acme/conversations", {"visitor": {}}, headers=headers))[0]

    try:
        # a stranger making up a new address for every request
        statuses = [await start(f"203.0.113.{i}") for i in range(4)]
        if not trusted:
            assert statuses == [201, 201, 429, 429], "a spoofed header from an untrusted peer dodged the limit"
        else:
            assert statuses == [201, 201, 201, 201], "behind a trusted proxy, each client has its own limit"
            # what the client itself writes comes first; the proxy appends the address it saw: that one counts
            assert [await start(f"198.51.100.{i}, 192.0.2.7") for i in range(3)] == [201, 201, 429]
    finally:
        await visitor.close()


# -- malformed input ----------------------------------------------------------------------------------


async def test_malformed_http_input_gets_4xx_never_500(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    await visitor.start()
    base = f"/api/v1/conversations/{visitor.conversation_id}"
    cases: list[tuple[str, str, Any, dict[str, str] | None, int]] = [
        ("GET", f"{base}/messages?after=²", None, None, 400),  # a digit to str.isdigit(), not to int()
        ("GET", f"{base}/messages?after=١٢", None, None, 400),  # Arabic-Indic digits
        ("GET", f"{base}/messages?after=-1", None, None, 400),
        ("GET", f"{base}/messages?after=9999999999999", None, None, 400),
        ("POST", f"{base}/messages", b"\xff\xfe not utf-8", None, 400),
        ("POST", f"{base}/messages", b"", None, 400),
        ("POST", f"{base}/messages", "null", None, 400),
        ("POST", f"{base}/messages", '{"client_msg_id": "a", "text": "x", "text": "\\u0000"}', None, 422),
        ("POST", f"{base}/messages", '{"client_msg_id": "a", "text": 1e999}', None, 422),
        ("POST", f"{base}/messages", '{"client_msg_id": "a", "text": ' + "1" * 5000 + "}", None, 400),
        ("POST", f"{base}/messages", {"client_msg_id": "a" * 101, "text": "x"}, None, 422),
        ("POST", f"{base}/messages", {"client_msg_id": "a/b", "text": "x"}, None, 422),
        ("POST", f"{base}/messages", {"client_msg_id": "a", "text": ["x"]}, None, 422),
        ("POST", f"{base}/messages", {"client_msg_id": "a", "text": "\u2066isolate"}, None, 422),
        ("POST", f"{base}/messages", {"client_msg_id": "a", "text": "C1 \u0085 control"}, None, 422),
        ("POST", f"{base}/rating", '{"score": 1e400}', None, 422),
        ("POST", "/api/v1/sites/acme/conversations", {"visitor": {"name": "\u202eevil"}}, None, 422),
        ("POST", "/api/v1/sites/acme/conversations", {"visitor": {"email": "a\u0000b@example.com"}}, None, 422),
        ("POST", "/api/v1/sites/acme/conversations", {"page": {"url": "javascript:alert(1)"}}, None, 422),
        (
            "POST",
            "/api/v1/sites/acme/conversations",
            {"page": {"url": "https://a.example", "referrer": "\u202e"}},
            None,
            422,
        ),
        ("POST", "/api/v1/sites/acme/conversations", {"visitor": "Ann"}, None, 422),
        ("POST", "/api/v1/sites/acme/conversations", '{"a": ' + "[" * 40 + "]" * 40 + "}", None, 400),
        ("POST", "/api/v1/sites/acme/offline-messages", {"email": "x@example.com", "text": "\ud83d"}, None, 422),
        ("PUT", f"{base}/messages", None, None, 405),
        ("GET", f"{base}/ws", None, None, 400),  # the socket's path without an upgrade
    ]
    for method, path, body, headers, expected in cases:
        status, payload, _ = await visitor.request(method, path, body, headers=headers)
        assert status == expected, (method, path, str(body)[:60], status, payload)
        assert payload["error"]["code"] and payload["error"]["message"]

    # a body without a length, over 64 KiB: refused as it streams in, not after
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    async with visitor.session.post(
        visitor.base_url + f"{base}/messages", data=chunks(), headers=visitor.headers()
    ) as response:
        assert response.status == 413 and (await response.json())["error"]["code"] == "too_large"
    assert (await visitor.messages())["messages"] == []


async def test_malformed_socket_frames_get_error_frames_and_the_socket_lives_on(
    slack_bridge: RunningBridge, visitor: Visitor
) -> None:
    await visitor.start()
    live = await visitor.socket()
    bad: list[str | bytes] = [
        "{broken",
        "[" * 10_000 + "]" * 10_000,
        json.dumps([1, 2]),
        '{"type": "message", "client_msg_id": "a", "text": "lone \\udc00"}',
        json.dumps({"type": "message", "client_msg_id": "a", "text": "nul \u0000"}),
        json.dumps({"type": "message", "client_msg_id": "a", "text": "bidi \u202e"}),
        json.dumps({"type": "message", "client_msg_id": "a", "text": " "}),
        json.dumps({"type": "page", "url": "javascript:alert(1)"}),
        json.dumps({"type": "hello", "token": "x"}),
        json.dumps({"type": "nonsense"}),
        json.dumps({"type": 1}),
        json.dumps({"no": "type"}),
        b"\x00\x01binary",
    ]
    for frame in bad:
        if isinstance(frame, bytes):
            await live.ws.send_bytes(frame)
        else:
            await live.ws.send_str(frame)
        error = await live.next_frame()
        assert error["type"] == "error" and error["code"] and error["message"], (str(frame)[:40], error)
    await live.ws.send_json({"type": "ping"})
    assert (await live.next_frame())["type"] == "pong"
    assert (await visitor.messages())["messages"] == []
    await live.close()


async def test_broken_hellos_and_broken_websocket_frames_are_refused(
    slack_bridge: RunningBridge, visitor: Visitor
) -> None:
    await visitor.start()
    path = f"/api/v1/conversations/{visitor.conversation_id}/ws"
    for hello in (
        {"type": "hello", "token": visitor.token, "after": 10**40},  # past any database integer
        {"type": "hello", "token": visitor.token, "after": -1},
        {"type": "hello", "token": visitor.token, "after": "0"},
        {"type": "hello", "token": ""},
    ):
        raw = await RawSocket.connect(slack_bridge.url, path)
        raw.send_json(hello)
        opcode, payload = await raw.read_frame()
        assert opcode == 0x1 and json.loads(payload)["code"] == "hello_expected", (hello, payload)
        opcode, payload = await raw.read_frame()
        assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 4400
        raw.close()
    # a text frame that is not UTF-8: a protocol error (1007), not a crash
    raw = await RawSocket.connect(slack_bridge.url, path)
    raw.send_json({"type": "hello", "token": visitor.token, "after": 0})
    assert json.loads((await raw.read_frame())[1])["type"] == "ready"
    raw.send_raw(b'{"type": "ping", "x": "\xff\xfe"}')
    while (frame := await raw.read_frame())[0] == 0x1:
        pass
    assert frame[0] == 0x8 and int.from_bytes(frame[1][:2], "big") == 1007
    raw.close()
    await wait_until(lambda: not _ctx(slack_bridge).sockets, what="the sockets to be counted out")
    live = await visitor.socket()  # the server is fine
    await live.close()


async def test_stored_text_is_valid_unicode_and_comes_back_unchanged(
    slack_bridge: RunningBridge, visitor: Visitor
) -> None:
    texts = [
        "family 👨‍👩‍👧‍👦 and flags 🇩🇪🇯🇵",
        "مرحبا، كيف يمكنني المساعدة؟",  # right-to-left script without overrides is just text
        "e\u0301 combining, \u200d joiner, \ufeff BOM, \U0010fffd last plane",
        "tabs\tand\nnew lines",
        "<script>alert(1)</script> &amp; <!channel>",
    ]
    await visitor.start(name="Zoë 李")
    live = await visitor.socket()
    for i, text in enumerate(texts):
        if i % 2:
            await live.ws.send_json({"type": "message", "client_msg_id": f"u{i}", "text": text})
        else:
            assert (await visitor.say(text, f"u{i}"))[0] == 201
    async with asyncio.timeout(10):
        while len(live.messages()) < len(texts):
            await live.next_frame()
    async with visitor.session.get(
        visitor.base_url + f"/api/v1/conversations/{visitor.conversation_id}/messages", headers=visitor.headers()
    ) as response:
        raw = await response.read()
    # socket and HTTP lines race each other into the store: compare them by client_msg_id
    sent = {f"u{i}": text for i, text in enumerate(texts)}
    stored = {m["client_msg_id"]: m["text"] for m in json.loads(raw.decode("utf-8", errors="strict"))["messages"]}
    assert stored == sent
    for text in stored.values():
        text.encode("utf-8", errors="strict")  # a lone surrogate (valid JSON, invalid Unicode) would fail here
    assert {m["client_msg_id"]: m["text"] for m in live.messages()} == sent
    await live.close()


# -- sockets that stop answering or stop reading ---------------------------------------------------------


async def test_hello_must_come_quickly(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    _ctx(slack_bridge).hello_timeout_seconds = 0.3
    await visitor.start()
    ws = await visitor.session.ws_connect(_ws_url(slack_bridge, visitor.conversation_id), headers={"Origin": ORIGIN})
    frame = await ws.receive_json(timeout=5)
    assert frame["code"] == "hello_timeout"
    assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 4408
    await wait_until(lambda: not _ctx(slack_bridge).sockets, what="the silent socket to be counted out")


async def test_a_client_that_stops_answering_pings_is_disconnected(
    slack_bridge: RunningBridge, visitor: Visitor
) -> None:
    ctx = _ctx(slack_bridge)
    ctx.heartbeat_seconds = 0.4
    ctx.sockets_per_address = 1  # the dead socket holds the only place until the heartbeat frees it
    await visitor.start()
    ws = await visitor.session.ws_connect(
        _ws_url(slack_bridge, visitor.conversation_id), headers={"Origin": ORIGIN}, autoping=False, heartbeat=None
    )
    await ws.send_json({"type": "hello", "token": visitor.token, "after": 0})
    assert (await ws.receive_json(timeout=5))["type"] == "ready"
    kinds = []
    async with asyncio.timeout(5):
        while True:  # we read the pings, and never answer
            msg = await ws.receive()
            kinds.append(msg.type)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
    assert aiohttp.WSMsgType.PING in kinds
    await wait_until(lambda: not ctx.sockets and not ctx.live.socket_count, what="the dead socket to be dropped")
    live = await visitor.socket()  # its place is free again
    await live.close()


async def test_a_slow_reader_costs_bounded_memory_and_others_are_served(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    """A client that stops reading: the server holds a bounded buffer for it (the store keeps the rest),
    keeps serving everyone else, gives it everything in order when it reads again, and drops it when it
    also stops answering pings."""
    bridge = await make_bridge(fake_slack, rate_messages_per_minute=100_000)
    assert bridge._runner is not None
    server = bridge._runner.server
    slow_visitor, other = Visitor(bridge.url), Visitor(bridge.url)
    try:
        await slow_visitor.start()
        await other.start(name="Other")
        other_live = await other.socket()
        known = set(server.connections)
        slow = await RawSocket.connect(
            bridge.url, f"/api/v1/conversations/{slow_visitor.conversation_id}/ws", receive_buffer=4096
        )
        slow.send_json({"type": "hello", "token": slow_visitor.token, "after": 0})
        assert json.loads((await slow.read_frame())[1])["type"] == "ready"
        (conn,) = [c for c in server.connections if c not in known]
        assert conn.transport is not None
        # a slow link: small kernel buffers on both ends, so the server's own buffering shows within seconds
        conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

        buffered: list[int] = []
        for i in range(1, 201):  # ~800 KB of frames for a reader that takes none of them
            assert (await slow_visitor.say(f"{i:03} " + "x" * 3990, f"m{i}"))[0] == 201
            buffered.append(conn.transport.get_write_buffer_size())
        assert max(buffered) > 0, "the reader never fell behind: the test proved nothing"
        assert max(buffered) < 512 * 1024, f"the server buffered {max(buffered)} bytes for one slow reader"
        # it levels off (at about 250 KB here) instead of growing with every frame (4 KB each)
        assert max(buffered[150:]) <= max(buffered[:150]) + 16 * 1024, "the buffer kept growing"

        # everyone else is served meanwhile
        async with asyncio.timeout(2):
            assert (await other.say("am I stuck behind them?", "o1"))[0] == 201
            await other_live.wait_frame(lambda f: f["type"] == "message")

        # when it reads again, it gets everything, in order, without gaps, from the store
        seqs: list[int] = []
        while len(seqs) < 200:
            opcode, payload = await slow.read_frame(timeout=5)
            assert opcode != -1, f"the socket ended after {len(seqs)} messages"
            if opcode == 0x1 and (frame := json.loads(payload))["type"] == "message":
                seqs.append(frame["message"]["seq"])
        assert seqs == list(range(1, 201))

        # a reader that stops reading and stops answering pings is dropped, buffer and all
        ctx = _ctx(bridge)
        ctx.heartbeat_seconds = 0.4
        before = ctx.sockets["127.0.0.1"]  # the slow one and the other visitor's
        stuck = await RawSocket.connect(
            bridge.url, f"/api/v1/conversations/{slow_visitor.conversation_id}/ws", receive_buffer=4096
        )
        stuck.send_json({"type": "hello", "token": slow_visitor.token, "after": 0})  # 200 messages to replay
        await wait_until(lambda: ctx.sockets["127.0.0.1"] == before + 1, what="the stuck socket to open")
        await wait_until(lambda: ctx.sockets["127.0.0.1"] == before, timeout=10, what="it to be dropped")
        await wait_until(
            lambda: all(c.transport is None or c.transport.get_write_buffer_size() == 0 for c in server.connections),
            what="its buffer to be released",
        )
        stuck.close()
        slow.close()
        await other_live.close()
    finally:
        await slow_visitor.close()
        await other.close()
