"""The widget's live channel (CONTRACT §4).

The socket subscribes to the conversation's signals *before* replaying from the store, and a signal
makes it read what is after the last ``seq`` it sent: a message committed during the replay is neither
lost nor doubled. One exception saves the read: a message this process stored, signalled with the message
itself, that directly follows what the client has, with no other signal waiting — it is sent as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any, assert_never

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import ValidationError

from bridge.live import MessageChanged, NewMessage, RatingRequested, Recheck, Signal, Snapshot, StatusChanged, Typing
from bridge.model import Conversation, Message, PageView, Status
from widget_server import answers, schemas
from widget_server.api import accept_message
from widget_server.context import CONTEXT, WidgetContext
from widget_server.ratelimit import SlidingWindow
from widget_server.responses import ApiError, message_json, parse_json, validation_message

log = logging.getLogger(__name__)
MAX_FRAME = 64 * 1024
STORE_RETRIES = 6  # about 20 s of backoff before a socket gives up on the store
TYPING_EVERY = 3.0  # seconds: the visitor's typing goes on to the team at most this often (CONTRACT §7)
routes = web.RouteTableDef()


class _Session:
    def __init__(
        self,
        ctx: WidgetContext,
        ws: web.WebSocketResponse,
        conv: Conversation,
        after: int,
        transport: asyncio.Transport | None,
        *,
        news: list[Message],
    ) -> None:
        self.ctx = ctx
        self.ws = ws
        self.transport = transport
        #: a client that takes no frame for a whole heartbeat is gone or hopelessly slow
        self.send_timeout = ctx.heartbeat_seconds
        self.conv = conv
        self.last_seq = after
        self.status = conv.status
        self.rating_asked = False
        #: the last "read" frame sent (the visitor's messages up to there are seen by the team)
        self.read_seq = 0
        #: when the visitor's last typing frame went on to the team (at most one every TYPING_EVERY)
        self.typing_told = -TYPING_EVERY
        self.frames = SlidingWindow(ctx.frames_per_10_seconds, 10)
        self.flood_told = False
        self._send_lock = asyncio.Lock()
        #: the signal queue ran full, so it may have dropped one (``LiveHub.publish``): the next signal
        #: catches up in full, whatever it is
        self.missed_signals = False
        #: what the socket's opening read found (the lines after ``after``, and ``conv``): the first
        #: catch-up sends it instead of reading again
        self.news: tuple[list[Message], Conversation | None] | None = (news, conv)

    async def send(self, frame: dict[str, Any]) -> None:
        """One frame, waiting while the client's buffers are full (so a slow reader costs a bounded buffer;
        what it has not taken stays in the store) — but not forever."""
        async with self._send_lock:
            try:
                async with asyncio.timeout(self.send_timeout):
                    await self.ws.send_json(frame)
            except TimeoutError:
                if self.transport is not None:
                    self.transport.abort()
                raise ConnectionResetError("the client stopped reading") from None

    async def catch_up(self) -> None:
        """Send whatever is after the last seq sent, then any change of status."""
        self.missed_signals = False
        if self.news is not None:
            (messages, conv), self.news = self.news, None
        else:
            messages, conv = await self.ctx.conversations.news_after(self.conv.id, self.last_seq)
        for m in messages:
            if m.seq > self.last_seq:
                await self.send({"type": "message", "message": message_json(m, self.ctx.file_link)})
                self.last_seq = m.seq
        if conv is not None and conv.team_read_seq > self.read_seq:
            # the team has read the visitor's messages up to there: the widget shows "Seen"
            self.read_seq = conv.team_read_seq
            await self.send({"type": "read", "seq": conv.team_read_seq})
        if conv is not None and conv.status is not self.status:
            self.status = conv.status
            await self.send({"type": "status", "status": conv.status.value})
        if conv is not None and conv.status is Status.CLOSED and conv.rating_score is None and not self.rating_asked:
            self.rating_asked = True
            await self.send({"type": "rating_requested"})

    async def on_signal(self, signal: Signal, *, alone: bool = True) -> None:
        """``alone``: no other signal waits behind this one."""
        match signal:
            case Typing(author):
                shown = answers.Author.of(author, self.ctx.file_link)  # a kept photo as a signed link
                await self.send({"type": "typing", "author": shown.dump()})
            case MessageChanged():
                had = self.last_seq
                await self.catch_up()
                await self._changed(signal, had)
            case NewMessage(seq) if seq <= self.last_seq and not self.missed_signals:
                pass  # sent already (the visitor's own message, sent as it was stored)
            case NewMessage(seq, message) if message is not None and alone and self._next_in_line(seq):
                # stored by this process, right after what the client has, nothing else waiting (an edit,
                # a deletion: then the store says what it is now): no need to read it back. The seq
                # first, as ``on_frame`` does: the visitor's own line is never sent twice meanwhile
                self.last_seq = seq
                await self.send({"type": "message", "message": message_json(message, self.ctx.file_link)})
            case Recheck(seen) if seen is not None and self._has(seen):
                pass  # the periodic recheck: what the store held then is here already
            case NewMessage() | StatusChanged() | RatingRequested() | Recheck():
                # a hint only: the store says what is new, so a signal early, late or twice is harmless
                await self.catch_up()
            case _:
                assert_never(signal)

    def _has(self, seen: Snapshot) -> bool:
        """Everything ``catch_up`` would send for ``seen`` was sent, and nothing waits to be caught up on."""
        sent = seen.all_sent(
            last_seq=self.last_seq, status=self.status, read_seq=self.read_seq, rating_asked=self.rating_asked
        )
        return sent and self._nothing_waiting()

    def _next_in_line(self, seq: int) -> bool:
        """``seq`` directly follows what the client has, and nothing is waiting to be caught up on."""
        return seq == self.last_seq + 1 and self._nothing_waiting()

    def _nothing_waiting(self) -> bool:
        """No signal may have been dropped, and the opening read's lines have been sent."""
        return not self.missed_signals and self.news is None

    async def _changed(self, signal: MessageChanged, had: int) -> None:
        """An edit or delete of a message the client already has: its current state, read from the store
        (a reply edited into a note is taken back, never shown in its new form)."""
        if signal.seq > had:
            return  # not sent before: the replay just gave it in its current state
        message = await self.ctx.conversations.message(self.conv.id, signal.id)
        if message is None:
            return
        if message.deleted:
            await self.send({"type": "message_deleted", "id": message.id})
        else:
            await self.send({"type": "message_updated", "message": message_json(message, self.ctx.file_link)})

    async def on_frame(self, raw: str) -> None:
        if self.frames.hit("frames") is not None:
            # a flood of frames (typing, pings, pages) is not answered frame by frame: one error, then silence
            if not self.flood_told:
                self.flood_told = True
                await self.send({"type": "error", "code": "rate_limited", "message": "too many frames; slow down"})
            return
        self.flood_told = False
        try:
            frame = parse_json(raw)
        except ApiError as exc:
            await self.send({"type": "error", "code": exc.code, "message": exc.message})
            return
        kind = frame.get("type")
        try:
            if kind == "message":
                data = schemas.PostMessage.model_validate(frame)
                # the status as this socket last read it (every change signals it): a close it has not
                # seen yet is still refused by the store, in the same transaction that would take it
                conv = dataclasses.replace(self.conv, status=self.status)
                message, created = await accept_message(self.ctx, conv, data)
                if not created:
                    # a resend of something already stored: acknowledge it again (the widget dedupes by seq)
                    await self.send({"type": "message", "message": message})
                elif message["seq"] == self.last_seq + 1:
                    # next in line, just stored and known in full: sent now, so the signal of its commit
                    # need not read it back (the send lock keeps frames in the order they are taken)
                    self.last_seq = message["seq"]
                    await self.send({"type": "message", "message": message})
            elif kind == "typing":
                # to the team chats that can show it (Matrix); at most one every few seconds, whatever
                # the widget sends
                now = asyncio.get_running_loop().time()
                if now - self.typing_told >= TYPING_EVERY:
                    self.typing_told = now
                    await self.ctx.conversations.visitor_typing(self.conv.id)
            elif kind == "seen":
                # {"type": "seen", "seq": N}: the visitor had the conversation on screen up to N
                seq = frame.get("seq")
                if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
                    await self.send({"type": "error", "code": "invalid", "message": "seen: seq must be a number ≥ 1"})
                else:
                    await self.ctx.conversations.visitor_saw(self.conv.id, min(seq, self.last_seq))
            elif kind == "page":
                page = schemas.PageFrame.model_validate(frame)
                # every page view rewrites the thread's root in the team chat: a flood must not reach it
                if self.ctx.page_views.hit(self.conv.id) is None:
                    await self.ctx.conversations.visitor_viewed(self.conv.id, PageView(page.url, page.title))
            elif kind == "ping":
                await self.send({"type": "pong"})
            else:
                await self.send({"type": "error", "code": "unknown_frame", "message": f"unknown frame type {kind!r}"})
        except ValidationError as exc:
            await self.send({"type": "error", "code": "invalid", "message": validation_message(exc)})
        except ApiError as exc:
            await self.send({"type": "error", "code": exc.code, "message": exc.message})


async def _refuse(ws: web.WebSocketResponse, code: str, message: str, close_code: int = 4403) -> web.WebSocketResponse:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json({"type": "error", "code": code, "message": message})
        await ws.close(code=close_code, message=code.encode())
    return ws


OPEN_SOCKETS: web.AppKey[set[Any]] = web.AppKey("sitechat_open_sockets", set)


async def close_open_sockets(app: web.Application) -> None:
    """On shutdown tell every widget to come back (1012, service restart): it reconnects at once — to
    another instance behind a load balancer — and resumes after the last seq it has, so nothing is lost;
    nor does the shutdown wait out its timeout for sockets that would otherwise stay open."""
    sockets: set[Any] = app[OPEN_SOCKETS]
    for ws in list(sockets):
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"server restarting: reconnect")


@routes.get("/api/v1/conversations/{id}/ws")
async def live_channel(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    if ctx.draining:
        raise ApiError(503, "shutting_down", "this server is restarting; connect again", {"Retry-After": "1"})
    ws = web.WebSocketResponse(heartbeat=ctx.heartbeat_seconds, max_msg_size=MAX_FRAME, compress=False, autoping=True)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_expected", "this is the live channel: connect with a WebSocket upgrade")
    address = ctx.client_address(request)
    # taken before the handshake, in one transaction serialised per address across the instances:
    # concurrent handshakes from one address, on any instances, cannot slip past the cap
    place = await ctx.take_socket_place(address)
    if place is None:
        raise ApiError(429, "rate_limited", "too many open chats from your address", {"Retry-After": "30"})
    ctx.sockets[address] = ctx.sockets.get(address, 0) + 1
    open_sockets = request.app[OPEN_SOCKETS]
    open_sockets.add(ws)
    try:
        await ws.prepare(request)
        return await _serve(ctx, request, ws)
    finally:
        open_sockets.discard(ws)
        if ws.close_code == WSCloseCode.ABNORMAL_CLOSURE and request.transport is not None:
            # a peer that stopped answering (no pong) may also have stopped reading: a graceful close
            # would wait for it to take what is still buffered, so drop the connection instead
            request.transport.abort()
        try:
            # the place first, then this instance's count: whoever sees the count drop finds it free;
            # shielded, so a handler cancelled at shutdown still gives it back
            await asyncio.shield(ctx.limits.close_socket(place))
        finally:
            ctx.sockets[address] -= 1
            if not ctx.sockets[address]:
                del ctx.sockets[address]


async def _serve(ctx: WidgetContext, request: web.Request, ws: web.WebSocketResponse) -> web.WebSocketResponse:
    try:
        first = await ws.receive(timeout=ctx.hello_timeout_seconds)
    except TimeoutError:
        return await _refuse(ws, "hello_timeout", "send a hello frame first", 4408)
    if first.type is not WSMsgType.TEXT:
        return await _refuse(ws, "hello_expected", "the first frame must be a JSON hello", 4400)
    try:
        hello = schemas.Hello.model_validate(parse_json(first.data))
    except (ApiError, ValidationError):
        return await _refuse(ws, "hello_expected", 'the first frame must be {"type": "hello", "token", "after"}', 4400)
    if hello.type != "hello":
        return await _refuse(ws, "hello_expected", "the first frame must be a hello", 4400)
    cid = request.match_info["id"]
    # subscribed before the read: a line stored after it is signalled, one stored before it is in it
    with ctx.live.subscribe(cid) as signals:
        opened = await ctx.conversations.open_socket(cid, hello.token, hello.after)
        if opened is None:
            return await _refuse(ws, "forbidden", "this token does not give access to that conversation")
        messages, conv = opened
        if not ctx.origin_allowed(conv.site_id, request.headers.get("Origin")):
            return await _refuse(ws, "origin_not_allowed", "this site does not allow your origin")
        session = _Session(ctx, ws, conv, hello.after, request.transport, news=messages)
        await session.send({"type": "ready", "status": conv.status.value})
        session.status = conv.status
        # the replay runs in the pump, not here: this loop must keep reading, or a client that stopped
        # reading (and answering pings) would hold this handler in a send forever
        pump = asyncio.create_task(_pump(session, signals))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await session.on_frame(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await session.send({"type": "error", "code": "invalid", "message": "frames are JSON text"})
                elif msg.type is WSMsgType.ERROR:
                    break
        except ConnectionError:
            pass  # the client is gone (or was dropped for not reading)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
    return ws


async def _pump(session: _Session, signals: asyncio.Queue[Signal]) -> None:
    """Replay, then follow the signals. A store failure (a database blip) is retried with backoff and a
    full catch-up; only if the store stays away is the socket closed (1013) for the widget to come back."""
    signal: Signal | None = None  # None: catch up from the store
    failures = 0
    while True:
        try:
            if signal is None:
                await session.catch_up()
            else:
                await session.on_signal(signal, alone=signals.empty())
            failures = 0
            signal = await signals.get()
            if signals.maxsize > 0 and signals.qsize() >= signals.maxsize - 1:
                session.missed_signals = True  # full a moment ago: the hub drops the oldest signal then
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if session.ws.closed:
                return  # the visitor left
            failures += 1
            if failures > STORE_RETRIES:
                log.warning(
                    "live channel: the store stays unavailable (%s); asking the widget to reconnect", type(exc).__name__
                )
                with contextlib.suppress(Exception):
                    await session.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"try again")
                return
            await asyncio.sleep(min(5.0, 0.2 * 2**failures))  # backoff before the next full catch-up
            signal = None
