"""What the core asks of Slack: posts in the thread, root updates, edits and removals of our copies."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, assert_never

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.pacing import Pacer
from adapters.slack import blocks
from adapters.slack.events import split_ref, thread_ref
from adapters.slack.failures import as_delivery_error
from adapters.slack.format import display_name, escape
from adapters.slack.history import find_landed, metadata
from adapters.slack.people import People, invitation, reminder_post
from adapters.slack.posts import Post, fit_escaped, formatted_line, groups, line_posts, part_count, text_posts
from adapters.slack.session import SlackSession
from bridge.endpoint import Outgoing, Sent
from bridge.errors import DeliveryError, RetryLater
from bridge.model import RemoteId, ThreadRef
from bridge.outbound import (
    Deletion,
    Edit,
    Erase,
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
#: the reaction that tells the team the visitor has seen an agent's message
SEEN_REACTION = "eyes"


class SlackOutbound:
    def __init__(self, session: SlackSession, pacer: Pacer) -> None:
        self._session = session
        self.pacer = pacer
        self._people = People(session)

    @property
    def _client(self) -> AsyncWebClient:
        assert self._session.client is not None, "deliver() before start()"
        return self._session.client

    async def ready(self, destination: str) -> None:
        await self.pacer.ready(destination)

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        sent: list[Sent] = []
        try:
            landed = await find_landed(self._client, batch)
        except Exception as exc:
            raise as_delivery_error(exc, batch[0].destination, self.pacer, sent) from exc
        todo: list[Outgoing] = []
        for item in batch:
            parts = landed.get(item.delivery_id, {})
            if parts and len(parts) >= part_count(item):
                last = max(parts)
                earlier = [parts[p] for p in sorted(parts) if p != last]
                sent.extend(self._sent([item], item.destination, parts[last], earlier))
            else:
                # not in Slack (or only some parts of a split post): what is missing goes out now,
                # and a line that did not land may combine with the next ones again
                todo.append(item if parts else replace(item, maybe_sent=False))
        for group in groups(todo):
            try:
                await self._deliver_group(group, landed.get(group[0].delivery_id, {}), sent)
            except DeliveryError:
                raise
            except Exception as exc:
                raise as_delivery_error(exc, group[0].destination, self.pacer, sent) from exc
        return sent

    async def _deliver_group(
        self, group: Sequence[Outgoing], landed_parts: Mapping[int, str], sent: list[Sent]
    ) -> None:
        """Send one group, adding to ``sent`` each delivery once all of it is in Slack."""
        head = group[0]
        ids = [o.delivery_id for o in group]
        channel = head.destination
        thread_ts = split_ref(head.thread)[1] if head.thread else None
        if thread_ts is None and not isinstance(head.what, OpenThread | Erase | WebhookEvent):
            raise RetryLater("the thread's root is not posted yet", sent=sent)
        match head.what:
            case OpenThread():
                root = blocks.root_text(head.conversation, head.site_name)
                ts = await self._post(channel, None, root, ids, blocks=_root_blocks(head))
                sent.extend(self._sent(group, channel, ts))
            case RootState():
                await self._update_root(head)
                sent.extend(Sent(i) for i in ids)
            case Line(message):
                # a line taken back before it was posted (an agent's deletion) is not posted at all
                lines = [(o, o.what.message) for o in group if isinstance(o.what, Line) and not o.what.message.deleted]
                live = [o for o, _ in lines]
                sent.extend(Sent(o.delivery_id) for o in group if o not in live)
                formatted = formatted_line(lines[0][1]) if len(lines) == 1 else None
                if formatted is not None:
                    posts = [Post((live[0].delivery_id,), 0, formatted)]
                else:
                    posts = line_posts([(o.delivery_id, m.text) for o, m in lines])
                if live:
                    await self._post_in_turn(
                        live,
                        posts,
                        landed_parts,
                        sent,
                        username=display_name(message.author.name),
                        icon_url=message.author.avatar_url,
                        mrkdwn=formatted is not None,
                    )
            case Transcript(text) | Notice(text):
                # the bridge speaking; a long text goes in parts, and a part that landed before a
                # failure is not posted again: the rest follow it, in order
                await self._post_in_turn(group, text_posts(head.delivery_id, text), landed_parts, sent)
            case Edit(message, copy):
                if copy is not None:
                    # one post is updated: a text that needs more is cut (its parts stay as they were)
                    await self._change_copy(copy, formatted_line(message) or fit_escaped(message.text))
                sent.extend(Sent(i) for i in ids)
            case Seen(_, copy):
                # the visitor has seen the agent's message: the bot's 👀 on it, once
                if copy is not None:
                    await self._react(copy, SEEN_REACTION)
                sent.extend(Sent(i) for i in ids)
            case Deletion(_, copy):
                if copy is not None:
                    await self._change_copy(copy, None)
                sent.extend(Sent(i) for i in ids)
            case Erase(copy):
                # the conversation was erased: our post goes (``copy`` None: the thread's root)
                target = copy or head.thread
                if target is not None:
                    await self._change_copy(target, None)
                sent.extend(Sent(i) for i in ids)
            case Reminder(text, mention):
                # the one place the bridge notifies people: a real mention, then its text escaped
                post = Post((head.delivery_id,), 0, reminder_post(text, mention))
                await self._post_in_turn(group, [post], landed_parts, sent, mrkdwn=True)
            case Invite(who, by):
                found = await self._people.resolve(who)
                text = invitation(found, by) if isinstance(found, list) else escape(found)
                await self._post_in_turn(group, [Post((head.delivery_id,), 0, text)], landed_parts, sent, mrkdwn=True)
            case WebhookEvent():
                sent.extend(Sent(i) for i in ids)  # not for a team chat
            case _:
                assert_never(head.what)

    async def _post_in_turn(
        self,
        group: Sequence[Outgoing],
        posts: Sequence[Post],
        landed_parts: Mapping[int, str],
        sent: list[Sent],
        *,
        username: str | None = None,
        icon_url: str | None = None,
        mrkdwn: bool = False,
    ) -> None:
        """The posts in order; a delivery counts as sent with its last part (``landed_parts``: those of
        the group's only delivery already in Slack, found after an earlier attempt)."""
        head = group[0]
        channel = head.destination
        thread_ts = split_ref(head.thread)[1] if head.thread else None
        by_id = {o.delivery_id: o for o in group}
        earlier: list[str] = []  # the parts before this one of the same delivery: an erasure removes them too
        for index, post in enumerate(posts):
            ts = landed_parts.get(post.part) if post.ids == (head.delivery_id,) else None
            if ts is None:
                try:
                    ts = await self._post(
                        channel,
                        thread_ts,
                        post.text,
                        post.ids,
                        part=post.part,
                        username=username,
                        icon_url=icon_url,
                        mrkdwn=mrkdwn,
                    )
                except Exception as exc:
                    # earlier parts of this delivery are in Slack: the retry must look for them first
                    raise as_delivery_error(exc, channel, self.pacer, sent, partly_posted=post.part > 0) from exc
            if index + 1 == len(posts) or posts[index + 1].ids != post.ids:
                sent.extend(self._sent([by_id[i] for i in post.ids], channel, ts, earlier))
                earlier = []
            else:
                earlier.append(ts)

    @staticmethod
    def _sent(group: Sequence[Outgoing], channel: str, ts: str, earlier: Sequence[str] = ()) -> list[Sent]:
        """What ``group`` became: the post ``ts`` (after the ``earlier`` parts of a long text); a root
        (posted now or found after a crash) is the thread."""
        ref = thread_ref(channel, ts)
        more = tuple(RemoteId(thread_ref(channel, part)) for part in earlier)
        return [
            Sent(o.delivery_id, RemoteId(ref), ThreadRef(ref) if isinstance(o.what, OpenThread) else None, more)
            for o in group
        ]

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
        mrkdwn: bool = False,
    ) -> str:
        await self.pacer.take(channel)
        kwargs: dict[str, Any] = {}
        if username:
            kwargs["username"] = username
        if icon_url:
            kwargs["icon_url"] = icon_url
        if blocks:
            kwargs["blocks"] = blocks
        response = await self._client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            mrkdwn=mrkdwn or bool(blocks),
            unfurl_links=False,
            unfurl_media=False,
            metadata=metadata(ids, part),
            **kwargs,
        )
        return str(response["ts"])

    async def _update_root(self, item: Outgoing) -> None:
        assert item.thread is not None
        channel, ts = split_ref(item.thread)
        await self.pacer.take(channel)
        try:
            await self._client.chat_update(
                channel=channel,
                ts=ts,
                text=blocks.root_text(item.conversation, item.site_name),
                blocks=_root_blocks(item),
            )
        except SlackApiError as exc:
            if exc.response.get("error") in ("message_not_found", "cant_update_message", "edit_window_closed"):
                log.warning("Slack: root %s cannot be updated (%s); leaving it", item.thread, exc.response.get("error"))
                return
            raise

    async def _react(self, copy: str, name: str) -> None:
        """The bot's reaction on a message; one that is there already, or a message gone, is fine."""
        channel, ts = split_ref(ThreadRef(copy))
        try:
            await self._client.reactions_add(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            if exc.response.get("error") in ("already_reacted", "message_not_found", "too_many_reactions"):
                return
            raise

    async def _change_copy(self, copy: str, text: str | None) -> None:
        """Edit (``text``) or delete (None) our own post ``copy``; one already gone stays gone."""
        channel, ts = split_ref(ThreadRef(copy))
        await self.pacer.take(channel)
        try:
            if text is None:
                await self._client.chat_delete(channel=channel, ts=ts)
            else:
                await self._client.chat_update(channel=channel, ts=ts, text=text)
        except SlackApiError as exc:
            if exc.response.get("error") in ("message_not_found", "cant_update_message", "cant_delete_message"):
                log.warning("Slack: %s cannot be changed (%s); leaving it", copy, exc.response.get("error"))
                return
            raise


def _root_blocks(item: Outgoing) -> list[dict[str, Any]]:
    return blocks.root_blocks(item.conversation, item.site_name, item.topic_label)
