"""The Slack endpoint: slack-bolt for what Slack sends us, slack-sdk's Web API client for what we send.

Slack has no idempotency key, so every post carries the delivery ids in its message metadata; a
delivery whose earlier attempt may have landed is looked for in the thread before it is sent again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, assert_never

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks
from adapters.slack.events import ThreadChange, split_ref, thread_change, thread_ref, thread_reply
from adapters.slack.format import display_name, escape, mentioned_users, to_plain
from adapters.slack.pacing import ChannelPacer
from bridge.endpoint import Inbox, Outgoing, Sent
from bridge.errors import DeliveryError, DestinationUnavailable, RetryLater
from bridge.events import Action, ActionRequested, InboundEvent, MessageDeleted, MessageEdited, MessageReceived
from bridge.model import EndpointName, Participant, RemoteId, Role, ThreadRef
from bridge.outbound import Deletion, Edit, Line, Notice, OpenThread, RootState, Transcript
from bridge.transcript import split_text

log = logging.getLogger(__name__)
METADATA_TYPE = "sitechat_delivery"
TEXT_CHUNK = 3900  # a readable post; Slack itself would cut at 40,000
BROKEN = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "no_permission",
    "team_access_not_granted",
}


class ThreadNotReady(Exception):
    """A reply under one of our roots that the store does not know yet."""


class SlackEndpoint:
    name = EndpointName("slack")
    max_batch = 20

    def __init__(
        self,
        *,
        bot_token: str,
        api_url: str,
        signing_secret: str | None,
        app_token: str | None,
        timeout: float = 10.0,
        store_deadline: float = 2.0,
    ) -> None:
        self._bot_token = bot_token
        self._api_url = api_url
        self._signing_secret = signing_secret
        self._app_token = app_token
        self._timeout = timeout
        #: an event not stored within this many seconds is answered 503 (Slack wants an answer within 3 s)
        self.store_deadline = store_deadline
        self._storing: set[asyncio.Future[bool]] = set()
        self.pacer = ChannelPacer()
        self._users: dict[str, tuple[str, str | None]] = {}
        self._inbox: Inbox | None = None
        self._session: aiohttp.ClientSession | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self.client: AsyncWebClient | None = None
        self.app: AsyncApp | None = None
        self.bot_user_id: str | None = None
        self._auth_problem: str | None = None
        self.bot_id: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._session = aiohttp.ClientSession()
        # retry_handlers=[]: slack-sdk would resend a post after a dropped connection, doubling it
        self.client = AsyncWebClient(
            token=self._bot_token,
            base_url=self._api_url,
            session=self._session,
            timeout=int(self._timeout),
            retry_handlers=[],
        )
        self.app = AsyncApp(
            client=self.client,
            signing_secret=self._signing_secret or "",
            request_verification_enabled=self._signing_secret is not None,
            # store the event before Slack gets its 200, so an ack always means "kept"
            process_before_response=True,
            raise_error_for_unhandled_request=False,
        )
        self.app.event("message")(self._on_message)
        self.app.event("app_mention")(self._ignore)
        self.app.action(blocks.CLAIM)(self._on_claim)
        self.app.action(blocks.CLOSE)(self._on_close)
        self.app.command("/sitechat")(self._on_command)
        self.app.error(self._on_error)
        try:
            auth = await self.client.auth_test()
            self.bot_user_id, self.bot_id = auth.get("user_id"), auth.get("bot_id")
        except Exception as exc:  # start anyway: deliveries wait and /readyz tells what is wrong
            self._auth_problem = f"Slack: auth.test failed at start ({_describe(exc)}); check SLACK_BOT_TOKEN"
            log.error("%s", self._auth_problem)
        if self._app_token:
            self._socket = AsyncSocketModeHandler(self.app, self._app_token)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        for task in list(self._storing):
            task.cancel()
        await asyncio.gather(*self._storing, return_exceptions=True)
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
        if self._session is not None:
            await self._session.close()

    async def http_handler(self, request: web.Request) -> web.StreamResponse:
        """``POST /slack/events``: events, Block Kit actions and the slash command, signature-checked by bolt."""
        assert self.app is not None
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not (timestamp.isascii() and timestamp.isdigit()):
            # bolt's verifier would int() it and raise: a forged request must get 401, not 503
            return web.json_response({"error": "invalid_signature"}, status=401)
        bolt_response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    def routes(self) -> list[web.RouteDef]:
        """In HTTP mode Slack posts to ``/slack/events`` on the widget server; Socket Mode serves nothing."""
        return [] if self._app_token else [web.post("/slack/events", self.http_handler)]

    def known_problems(self) -> list[str]:
        return [self._auth_problem] if self._auth_problem else []

    async def check(self, destinations: Sequence[str]) -> list[str]:
        """Token and channels, without starting (doctor must not take events the service should get)."""
        async with aiohttp.ClientSession() as session:
            client = AsyncWebClient(
                token=self._bot_token,
                base_url=self._api_url,
                session=session,
                timeout=int(self._timeout),
                retry_handlers=[],
            )
            try:
                await client.auth_test()
            except Exception as exc:
                return [f"Slack: auth.test failed ({_describe(exc)}); check SLACK_BOT_TOKEN"]
            problems = []
            for channel in destinations:
                try:
                    info = await client.conversations_info(channel=channel)
                    if not info["channel"].get("is_member", True):
                        problems.append(f"Slack: the app is not in channel {channel}; invite it with /invite @app")
                except Exception as exc:
                    problems.append(f"Slack: channel {channel} cannot be read ({_describe(exc)}); check the id")
            return problems

    # -- from Slack -----------------------------------------------------------------------------

    async def _ignore(self, **_: Any) -> None:
        return None

    async def _store(self, event: InboundEvent) -> bool:
        """Hand the event to the core, and fail (→ 503, so Slack retries) if it is not stored in time.

        A store that is late is not cancelled (a transaction cut off mid-commit helps nobody): it
        finishes when it can, and Slack's retry then finds the event stored, or stores it itself.
        """
        assert self._inbox is not None
        task: asyncio.Future[bool] = asyncio.ensure_future(self._inbox.handle(event))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)
        try:
            async with asyncio.timeout(self.store_deadline):
                return await asyncio.shield(task)
        except TimeoutError:
            task.add_done_callback(_log_late_failure)
            raise

    async def _on_error(self, error: Exception) -> BoltResponse:
        """A listener could not take the request (the database is down, say): 503, so Slack retries it."""
        if isinstance(error, TimeoutError):
            log.warning("Slack event not stored within %g s; answered 503 so Slack retries it", self.store_deadline)
        else:
            log.warning("Slack request failed (%s); answered 503 so Slack retries it", _describe(error))
        return BoltResponse(
            status=503,
            body=json.dumps({"error": "temporarily_unavailable"}),
            headers={"content-type": "application/json"},
        )

    async def _user(self, user_id: str) -> tuple[str, str | None]:
        """(display name, avatar) for a Slack user, cached; the id itself when Slack won't say."""
        if user_id not in self._users:
            assert self.client is not None
            try:
                user = (await self.client.users_info(user=user_id))["user"]
                profile = user.get("profile") or {}
                name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user["name"]
                self._users[user_id] = (name, profile.get("image_72"))
            except Exception as exc:
                log.warning("Slack users.info %s failed: %s", user_id, _describe(exc))
                return user_id, None
        return self._users[user_id]

    async def _on_message(self, event: dict[str, Any]) -> None:
        change = thread_change(event, own_user_id=self.bot_user_id)
        if change is not None and self._inbox is not None:
            await self._on_change(change)
            return
        reply = thread_reply(event, own_user_id=self.bot_user_id, own_bot_id=self.bot_id)
        if reply is None or self._inbox is None:
            return
        names = {uid: (await self._user(uid))[0] for uid in mentioned_users(reply.text)}
        text = to_plain(reply.text, names)
        for f in reply.files:
            label = f.get("name") or f.get("title") or "file"
            link = f.get("permalink_public") or f.get("url_private") or ""
            text = f"{text}\n{label} {link}".strip()
        name, avatar = await self._user(reply.user)
        known = await self._store(
            MessageReceived(
                endpoint=self.name,
                thread=ThreadRef(thread_ref(reply.channel, reply.thread_ts)),
                remote_id=RemoteId(thread_ref(reply.channel, reply.ts)),
                author=Participant(Role.AGENT, name, avatar, f"slack:{reply.user}"),
                text=text,
            )
        )
        if not known and self.bot_user_id and event.get("parent_user_id") == self.bot_user_id:
            # under a root of ours whose post's answer is not recorded yet (an agent quicker than
            # Slack's answer, or a crash in flight): not ours to drop — 503, and Slack retries it
            raise ThreadNotReady(reply.thread_ts)

    async def _on_change(self, change: ThreadChange) -> None:
        thread = ThreadRef(thread_ref(change.channel, change.thread_ts))
        original = RemoteId(thread_ref(change.channel, change.ts))
        remote_id = RemoteId(f"{thread_ref(change.channel, change.ts)}:change:{change.event_ts}")
        if change.text is None:
            await self._store(MessageDeleted(self.name, thread, remote_id, original))
            return
        names = {uid: (await self._user(uid))[0] for uid in mentioned_users(change.text)}
        await self._store(MessageEdited(self.name, thread, remote_id, original, to_plain(change.text, names)))

    async def _on_button(self, body: dict[str, Any], action: Action) -> None:
        message = body.get("message") or body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get("channel_id")
        ts = message.get("ts") or body.get("container", {}).get("message_ts")
        user_id = (body.get("user") or {}).get("id")
        if not (channel and ts and user_id) or self._inbox is None:
            return
        name, avatar = await self._user(user_id)
        action_ts = (body.get("actions") or [{}])[0].get("action_ts", "")
        await self._store(
            ActionRequested(
                endpoint=self.name,
                thread=ThreadRef(thread_ref(channel, ts)),
                remote_id=RemoteId(f"action:{channel}:{ts}:{user_id}:{action.value}:{action_ts}"),
                action=action,
                actor=Participant(Role.AGENT, name, avatar, f"slack:{user_id}"),
            )
        )

    async def _on_claim(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._on_button(body, Action.CLAIM)

    async def _on_close(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._on_button(body, Action.CLOSE)

    async def _on_command(self, ack: Any) -> None:
        await ack(
            "sitechat: each website chat is a thread in this channel. Reply in the thread to answer; "
            "start with // for an internal note; !help in a thread lists the commands."
        )

    # -- to Slack -------------------------------------------------------------------------------

    async def ready(self, destination: str) -> None:
        await self.pacer.ready(destination)

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        sent: list[Sent] = []
        try:
            landed = await self._landed(batch)
        except Exception as exc:
            raise _as_delivery_error(exc, batch[0].destination, self.pacer, sent) from exc
        todo: list[Outgoing] = []
        for item in batch:
            parts = landed.get(item.delivery_id, {})
            if parts and len(parts) >= _part_count(item):
                sent.extend(self._sent([item], item.destination, parts[max(parts)]))
            else:
                # not in Slack (or only some parts of a split post): what is missing goes out now,
                # and a line that did not land may combine with the next ones again
                todo.append(item if parts else replace(item, maybe_sent=False))
        for group in _groups(todo):
            try:
                sent.extend(await self._deliver_group(group, landed.get(group[0].delivery_id, {})))
            except DeliveryError as exc:
                exc.sent = sent + exc.sent
                raise
            except Exception as exc:
                raise _as_delivery_error(exc, group[0].destination, self.pacer, sent) from exc
        return sent

    async def _landed(self, batch: Sequence[Outgoing]) -> dict[int, dict[int, str]]:
        """Of the deliveries an earlier attempt may have posted, the parts that are in Slack: id → part → ts.

        One look per thread for the whole batch (not one per delivery), before anything is posted again.
        """
        places: dict[tuple[str, str | None], list[int]] = {}
        for item in batch:
            if not item.maybe_sent or isinstance(item.what, RootState | Edit | Deletion):
                continue  # an update or a removal may simply be made again
            thread_ts = split_ref(item.thread)[1] if item.thread else None
            if thread_ts is None and not isinstance(item.what, OpenThread):
                continue  # no thread yet: it cannot have been posted
            places.setdefault((item.destination, thread_ts), []).append(item.delivery_id)
        landed: dict[int, dict[int, str]] = {}
        for (channel, thread_ts), ids in places.items():
            landed.update(await self._find_posted(channel, thread_ts, ids))
        return landed

    async def _deliver_group(self, group: Sequence[Outgoing], landed_parts: Mapping[int, str]) -> list[Sent]:
        head = group[0]
        ids = [o.delivery_id for o in group]
        channel = head.destination
        thread_ts = split_ref(head.thread)[1] if head.thread else None
        if thread_ts is None and not isinstance(head.what, OpenThread):
            raise RetryLater("the thread's root is not posted yet")
        match head.what:
            case OpenThread():
                root = blocks.root_text(head.conversation, head.site_name)
                ts = await self._post(channel, None, root, ids, blocks=self._root_blocks(head))
            case RootState():
                await self._update_root(head)
                return [Sent(i) for i in ids]
            case Line(message):
                author = message.author
                text = "\n".join(escape(o.what.message.text) for o in group if isinstance(o.what, Line))
                ts = await self._post(
                    channel, thread_ts, text, ids, username=display_name(author.name), icon_url=author.avatar_url
                )
            case Transcript(text) | Notice(text):
                # the bridge speaking; long ones are split over several posts, and a part that landed
                # before a failure is not posted again: the rest follow it, in order
                for part, chunk in enumerate(split_text(text, TEXT_CHUNK)):
                    ts = landed_parts.get(part) or await self._post(channel, thread_ts, escape(chunk), ids, part=part)
            case Edit(message, copy):
                if copy is not None:
                    await self._change_copy(copy, escape(message.text))
                return [Sent(i) for i in ids]
            case Deletion(_, copy):
                if copy is not None:
                    await self._change_copy(copy, None)
                return [Sent(i) for i in ids]
            case _:
                assert_never(head.what)
        return self._sent(group, channel, ts)

    def _sent(self, group: Sequence[Outgoing], channel: str, ts: str) -> list[Sent]:
        """What ``group`` became: the post ``ts``; a root (posted now or found after a crash) is the thread."""
        ref = thread_ref(channel, ts)
        return [
            Sent(o.delivery_id, RemoteId(ref), ThreadRef(ref) if isinstance(o.what, OpenThread) else None)
            for o in group
        ]

    def _root_blocks(self, item: Outgoing) -> list[dict[str, Any]]:
        return blocks.root_blocks(item.conversation, item.site_name, item.topic_label)

    async def _post(
        self,
        channel: str,
        thread_ts: str | None,
        text: str,
        ids: Sequence[int],
        *,
        blocks: list[dict[str, Any]] | None = None,
        username: str | None = None,
        icon_url: str | None = None,
        part: int = 0,
    ) -> str:
        assert self.client is not None
        await self.pacer.take(channel)
        kwargs: dict[str, Any] = {}
        if username:
            kwargs["username"] = username
        if icon_url:
            kwargs["icon_url"] = icon_url
        if blocks:
            kwargs["blocks"] = blocks
        response = await self.client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            mrkdwn=bool(blocks),
            unfurl_links=False,
            unfurl_media=False,
            metadata={"event_type": METADATA_TYPE, "event_payload": {"delivery_ids": list(ids), "part": part}},
            **kwargs,
        )
        return str(response["ts"])

    async def _update_root(self, item: Outgoing) -> None:
        assert self.client is not None and item.thread is not None
        channel, ts = split_ref(item.thread)
        await self.pacer.take(channel)
        try:
            await self.client.chat_update(
                channel=channel,
                ts=ts,
                text=blocks.root_text(item.conversation, item.site_name),
                blocks=self._root_blocks(item),
            )
        except SlackApiError as exc:
            if exc.response.get("error") in ("message_not_found", "cant_update_message", "edit_window_closed"):
                log.warning("Slack: root %s cannot be updated (%s); leaving it", item.thread, exc.response.get("error"))
                return
            raise

    async def _change_copy(self, copy: str, text: str | None) -> None:
        """Edit (``text``) or delete (None) our own post ``copy``; one already gone stays gone."""
        assert self.client is not None
        channel, ts = split_ref(ThreadRef(copy))
        await self.pacer.take(channel)
        try:
            if text is None:
                await self.client.chat_delete(channel=channel, ts=ts)
            else:
                await self.client.chat_update(channel=channel, ts=ts, text=text)
        except SlackApiError as exc:
            if exc.response.get("error") in ("message_not_found", "cant_update_message", "cant_delete_message"):
                log.warning("Slack: %s cannot be changed (%s); leaving it", copy, exc.response.get("error"))
                return
            raise

    async def _find_posted(self, channel: str, thread_ts: str | None, ids: Sequence[int]) -> dict[int, dict[int, str]]:
        """Our earlier posts of these deliveries that landed, by their metadata: delivery id → part → ts."""
        assert self.client is not None
        wanted = set(ids)
        if thread_ts is None:
            response = await self.client.conversations_history(channel=channel, limit=100, include_all_metadata=True)
        else:
            response = await self.client.conversations_replies(
                channel=channel, ts=thread_ts, limit=1000, include_all_metadata=True
            )
        found: dict[int, dict[int, str]] = {}
        for message in response.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") != METADATA_TYPE:
                continue
            for did in wanted.intersection(payload.get("delivery_ids") or ()):
                found.setdefault(did, {}).setdefault(int(payload.get("part", 0)), str(message["ts"]))
        return found


def _part_count(item: Outgoing) -> int:
    """How many posts the delivery takes: the bridge's long texts are split, everything else is one."""
    if isinstance(item.what, Transcript | Notice):
        return len(split_text(item.what.text, TEXT_CHUNK))
    return 1


def _groups(batch: Sequence[Outgoing]) -> list[list[Outgoing]]:
    """Consecutive messages by the same author combine into one post; root updates into one update."""
    groups: list[list[Outgoing]] = []
    for item in batch:
        last = groups[-1][-1] if groups else None
        same_author = (
            last is not None
            and isinstance(item.what, Line)
            and isinstance(last.what, Line)
            and item.what.message.author == last.what.message.author
            and not item.maybe_sent
            and not last.maybe_sent
        )
        both_root = last is not None and isinstance(item.what, RootState) and isinstance(last.what, RootState)
        if same_author or both_root:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _log_late_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("a Slack event answered 503 was not stored either (Slack retries it): %s", _describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def _as_delivery_error(exc: BaseException, channel: str, pacer: ChannelPacer, sent: list[Sent]) -> DeliveryError:
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        code = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        if status == 429:
            retry_after = float(exc.response.headers.get("Retry-After", exc.response.headers.get("retry-after", 1)))
            pacer.block(channel, retry_after)
            return RetryLater(f"Slack rate limit on {channel}", retry_after=retry_after, sent=sent)
        if code in BROKEN:
            return DestinationUnavailable(f"Slack says {code} for {channel}", sent=sent)
        if status >= 500 or code is None:
            return RetryLater(f"Slack answered {status}", maybe_sent=True, sent=sent)
        return RetryLater(f"Slack refused: {code}", sent=sent)
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | ValueError):
        # a timeout or a dropped connection does not say whether the post landed
        return RetryLater(f"Slack did not answer ({_describe(exc)})", maybe_sent=True, sent=sent)
    return RetryLater(f"unexpected error: {_describe(exc)}", maybe_sent=True, sent=sent)
