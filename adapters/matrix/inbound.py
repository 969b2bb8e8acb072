"""From Matrix to the core: a sync loop of our own, its events turned into the core's events.

The ``next_batch`` token is stored only after the batch's events have been handed to the core, so a
crash replays a batch (the core dedupes on the event id) rather than losing one. nio's own token
handling cannot give that: it sets the token before running event callbacks. A ``limited`` timeline
(a gap) is backfilled with ``/messages`` first. The very first sync (no token stored) takes the room
state and skips the history: a new bridge does not answer last year's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nio

from adapters.matrix.intake import Intake
from adapters.matrix.responses import TOKEN_ERRORS, describe, describe_response, is_transient
from adapters.matrix.session import MatrixSession
from adapters.matrix.timeline import sync_filter, turns_on_encryption
from bridge.endpoint import Inbox, StateStore

log = logging.getLogger(__name__)

BACKFILL_PAGE = 100
BACKFILL_MAX_PAGES = 50
START_WAIT = 15.0  # seconds start() tries to log in and sync before leaving it to the sync loop


class SyncLoop:
    def __init__(self, session: MatrixSession, state: StateStore, intake: Intake, *, poll_ms: int) -> None:
        self._session = session
        self._state = state
        self._intake = intake
        self._poll_ms = poll_ms
        self._task: asyncio.Task[None] | None = None
        #: the last sync token whose events the core has
        self._token: str | None = None
        #: the session's login count at the last full-state sync: after a (re)login nio knows no
        #: room state, so the next sync asks for all of it
        self._state_of_login = 0

    async def start(self, inbox: Inbox) -> None:
        self._intake.inbox = inbox
        self._session.open()
        try:
            # a homeserver that does not answer must not hold up the widget server's start
            async with asyncio.timeout(START_WAIT):
                await self._log_in()
                if self._token is None:
                    await self._first_sync()
        except Exception as exc:  # start anyway: the sync loop keeps trying, deliveries wait
            log.error(
                "Matrix: cannot connect yet as %s to %s: %s",
                self._session.user_id,
                self._session.homeserver,
                describe(exc),
            )
        self._task = asyncio.create_task(self._run(), name="matrix-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _log_in(self) -> None:
        await self._session.ensure_logged_in()
        await self._intake.undecryptable.load()
        if self._token is None:
            self._token = await self._state.get("next_batch")

    @property
    def _need_full_state(self) -> bool:
        return self._state_of_login != self._session.logins

    # -- sync -----------------------------------------------------------------------------------

    async def _first_sync(self) -> None:
        """No token yet (first start): take the room state, skip the history, keep the token."""
        client = self._session.client
        assert client is not None
        async with asyncio.timeout(self._poll_ms / 1000 + 30):
            response = await client.sync(timeout=0, sync_filter=sync_filter(self._session.rooms, 1), full_state=True)
        if not isinstance(response, nio.SyncResponse):
            raise self._sync_failed(response)
        await self._session.encryption.maintain(client)
        await self._take_state(response)
        await self._state.put("next_batch", response.next_batch)
        self._token = response.next_batch
        self._state_of_login = self._session.logins

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._log_in()
                if self._token is None:
                    await self._first_sync()
                else:
                    await self._sync_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                wait = min(60.0, 0.5 * 2 ** min(failures, 8))
                log.warning("Matrix sync failed (%s); again in %.0f s", describe(exc), wait)
                await asyncio.sleep(wait)

    async def _sync_once(self) -> None:
        client = self._session.client
        assert client is not None
        full_state = self._need_full_state
        # our own deadline: nio leaves requests with timeout 0 unbounded
        async with asyncio.timeout(self._poll_ms / 1000 + 30):
            response = await client.sync(
                timeout=0 if full_state else self._poll_timeout_ms(),
                since=self._token,
                sync_filter=sync_filter(self._session.rooms),
                full_state=True if full_state else None,
            )
        if not isinstance(response, nio.SyncResponse):
            raise self._sync_failed(response)
        # what the batch brought for encryption (device changes, one-time key counts, keys to request)
        await self._session.encryption.maintain(client)
        await self._take_state(response)
        await self._take_events(client, response, self._token)
        await self._intake.after_batch(client)
        self._state_of_login = self._session.logins
        if response.next_batch != self._token:
            # only now: the batch's events are with the core, so a crash replays rather than loses
            await self._state.put("next_batch", response.next_batch)
            self._token = response.next_batch

    def _poll_timeout_ms(self) -> int:
        """The long poll, cut short when an unreadable event is due to be told to its thread."""
        due = self._intake.undecryptable.seconds_to_next_give_up()
        if due is None:
            return self._poll_ms
        return max(100, min(self._poll_ms, int(due * 1000) + 100))

    def _sync_failed(self, response: Any) -> Exception:
        if getattr(response, "status_code", None) in TOKEN_ERRORS:
            self._session.token_refused()
        return RuntimeError(describe_response(response))

    async def _take_state(self, response: nio.SyncResponse) -> None:
        """Invites to our rooms are accepted; encryption anywhere in our rooms is noticed."""
        session = self._session
        for room in response.rooms.invite:
            if room in session.rooms and room not in session.joined:
                await session.join(room)
        for room, info in response.rooms.join.items():
            for event in (*info.state, *info.timeline.events):
                if turns_on_encryption(event.source):
                    session.mark_encrypted(room)
        for room in response.rooms.leave:
            if room in session.joined:
                session.joined.discard(room)
                log.warning("Matrix: the bot is no longer in %s; it rejoins when it next posts there", room)

    async def _take_events(self, client: nio.AsyncClient, response: nio.SyncResponse, since: str | None) -> None:
        for room_id, info in response.rooms.join.items():
            if room_id not in self._session.rooms:
                continue
            was_joined = room_id in self._session.joined
            self._session.joined.add(room_id)
            events = [e.source for e in info.timeline.events]
            if info.timeline.limited and was_joined and since and info.timeline.prev_batch:
                events = await self._backfill(client, room_id, info.timeline.prev_batch, since) + events
            for source in events:
                await self._intake.take(client, room_id, source)
            for ephemeral in info.ephemeral:
                if isinstance(ephemeral, nio.TypingNoticeEvent):
                    await self._intake.take_typing(client, room_id, ephemeral.users)
                elif isinstance(ephemeral, nio.ReceiptEvent):
                    await self._intake.take_receipts(room_id, ephemeral.receipts)

    async def _backfill(self, client: nio.AsyncClient, room_id: str, start: str, until: str) -> list[dict[str, Any]]:
        """The events of a gap, oldest first (from the timeline's start back to our last token)."""
        found: list[dict[str, Any]] = []
        for _ in range(BACKFILL_MAX_PAGES):
            page = await client.room_messages(
                room_id, start=start, end=until, direction=nio.MessageDirection.back, limit=BACKFILL_PAGE
            )
            if not isinstance(page, nio.RoomMessagesResponse):
                if is_transient(page):
                    # the gap is readable, just not now: fail this sync so it is tried again (its
                    # token is not saved yet); skipping would lose the replies in the gap
                    raise RuntimeError(f"cannot backfill {room_id} yet ({describe_response(page)})")
                # stalling on a gap we may never read (history visibility) would stop every room
                log.warning(
                    "Matrix: cannot backfill %s (%s); some replies may be missed", room_id, describe_response(page)
                )
                break
            found.extend(e.source for e in page.chunk)
            if not page.chunk or not page.end or page.end == start:
                break
            start = page.end
        else:
            log.warning("Matrix: gap in %s longer than %d events; older replies skipped", room_id, len(found))
        found.reverse()
        log.info("Matrix: backfilled %d event(s) of a sync gap in %s", len(found), room_id)
        return found
