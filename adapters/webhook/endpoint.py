"""The webhook endpoint: each ``WebhookEvent`` delivery is one signed JSON POST, retried until a 2xx.

It rides the outbox like a team chat, so a receiver that is down, slow or refusing delays events and
never loses them; the delivery workers retry with back-off (honouring ``Retry-After``) for as long as
it takes. Every answer but a 2xx is retried — a 404 during the receiver's deploy or a 401 while its
secret is rotated must not lose an event — but a refusal (a 3xx or 4xx other than 408 and 429) waits
at least ``REFUSED_WAIT`` between tries and is listed by ``/readyz`` as a warning: it needs a person,
though never a reason to take the chat out of rotation. The body and ``X-Sitechat-Delivery`` are the
same on every retry; a receiver dedupes on that id (a crash between its 2xx and our record of it
means one repeat).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, assert_never

import aiohttp

from adapters.webhook.signature import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign
from bridge.endpoint import Inbox, Outgoing, Sent
from bridge.errors import RetryLater
from bridge.model import EndpointName
from bridge.outbound import (
    Deletion,
    Edit,
    Erase,
    FilePost,
    FollowUpMail,
    Invite,
    Line,
    Notice,
    OpenThread,
    Reminder,
    RootState,
    Seen,
    Transcript,
    WebhookEvent,
)

log = logging.getLogger(__name__)

#: the least wait between two tries at a receiver that refuses (a 4xx): it needs a person, not a flood
REFUSED_WAIT = 30.0
#: answers that say "later", not "no"
TRANSIENT = frozenset({408, 425, 429})


def body_of(event: str, conversation: Mapping[str, Any]) -> bytes:
    """The request body: the same bytes for the same stored event, on every retry."""
    document = {"event": event, "conversation": conversation}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookEndpoint:
    name = EndpointName("webhook")
    max_batch = 1

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        #: the receiver's last refusal, until it accepts again (a warning on /readyz)
        self._refusal: str | None = None

    async def start(self, inbox: Inbox) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def ready(self, destination: str) -> None:
        return None

    def known_problems(self) -> list[str]:
        return []  # a receiver that is down shows as postponed deliveries; the chat itself works

    def warnings(self) -> list[str]:
        return [self._refusal] if self._refusal else []

    async def check(self, destinations: Sequence[str]) -> list[str]:
        """Whether the receiver answers at all (any HTTP answer will do: nothing is posted to it)."""
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session, session.head(self.url) as response:
                response.release()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return [f"webhook: {self.url} cannot be reached ({type(exc).__name__}: {exc}); check SITECHAT_WEBHOOK_URL"]
        return []

    async def describe(self, destinations: Sequence[str]) -> list[str]:
        return [f"webhook: closed and rated conversations are POSTed to {self.url}, signed"]

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        item = batch[0]
        match item.what:
            case WebhookEvent(event, conversation, delivery):
                await self._post(event, conversation, delivery or str(item.delivery_id))
                return [Sent(item.delivery_id)]
            case OpenThread() | Line() | RootState() | Transcript() | Notice() | Edit() | Deletion() | Erase():
                return [Sent(item.delivery_id)]
            case FollowUpMail():
                return [Sent(item.delivery_id)]  # nothing else is the webhook's
            case Reminder() | Invite() | Seen() | FilePost():
                return [Sent(item.delivery_id)]  # for the team chats
            case _:
                assert_never(item.what)

    async def _post(self, event: str, conversation: Mapping[str, Any], delivery: str) -> None:
        if self._session is None:
            raise RetryLater("webhook: not started yet")
        body = body_of(event, conversation)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "sitechat-webhook/1",
            SIGNATURE_HEADER: sign(self._secret, int(self._clock()), body),
            DELIVERY_HEADER: delivery,
            EVENT_HEADER: event,
        }
        try:
            async with self._session.post(self.url, data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
                retry_after = _seconds(response.headers.get("Retry-After"))
                response.release()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryLater(f"webhook: {self.url} did not answer ({type(exc).__name__})", maybe_sent=True) from exc
        if 200 <= status < 300:
            if self._refusal is not None:
                log.info("webhook: %s accepts events again", self.url)
            self._refusal = None
            return
        if status >= 500 or status in TRANSIENT:
            raise RetryLater(f"webhook: {self.url} answered {status}", retry_after=retry_after)
        self._refusal = (
            f"webhook: {self.url} refuses events (HTTP {status}); they wait and are retried until it accepts "
            "them: check SITECHAT_WEBHOOK_URL and that the receiver verifies with SITECHAT_WEBHOOK_SECRET"
        )
        raise RetryLater(self._refusal, retry_after=max(REFUSED_WAIT, retry_after or 0.0))


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
