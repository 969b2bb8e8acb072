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
from adapters.slack.permalinks import Permalinks
from adapters.slack.posts import (
    Post,
    fit_escaped,
    formatted_line,
    groups,
    line_posts,
    part_count,
    sent_for,
    text_posts,
)
from adapters.slack.session import SlackSession
from adapters.slack.uploads import (
    InDoubt,
    SlackUploads,
    carries_files,
    delete_file,
    file_comment,
    file_ref,
    is_file_ref,
    words_apart,
)
from bridge.endpoint import Outgoing, Sent
from bridge.errors import DeliveryError, RetryLater
from bridge.model import Attachment, RemoteId, ThreadRef
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
#: the reaction that tells the team the visitor has seen an agent's message
SEEN_REACTION = "eyes"


class SlackOutbound:
    def __init__(
        self, session: SlackSession, pacer: Pacer, permalinks: Permalinks, uploads: SlackUploads | None = None
    ) -> None:
        self._session = session
        self.pacer = pacer
        #: files up to Slack (None without the endpoint's state: a file line then goes as its words)
        self._uploads = uploads
        self._people = People(session)
        self._permalinks = permalinks

    @property
    def _client(self) -> AsyncWebClient:
        assert self._session.client is not None, "deliver() before start()"
        return self._session.client

    async def ready(self, destination: str) -> None:
        await self.pacer.ready(destination)

    async def deliver(self, batch: Sequence[Outgoing]) -> Sequence[Sent]:
        sent: list[Sent] = []
        # a line's files are looked for by their ids (files.info), not in the thread's history
        files = [o for o in batch if self._uploads is not None and (carries_files(o) or isinstance(o.what, FilePost))]
        try:
            landed = await find_landed(self._client, [o for o in batch if o not in files or words_apart(o)])
        except Exception as exc:
            raise as_delivery_error(exc, batch[0].destination, self.pacer, sent) from exc
        todo: list[Outgoing] = []
        for item in batch:
            parts = landed.get(item.delivery_id, {})
            if item in files:
                todo.append(item)  # the words found (if they went apart) are not the files
                continue
            if parts and len(parts) >= part_count(item):
                last = max(parts)
                earlier = [parts[p] for p in sorted(parts) if p != last]
                sent.extend(sent_for([item], item.destination, parts[last], earlier))
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
        if thread_ts is None and not isinstance(head.what, OpenThread | Erase | WebhookEvent | FilePost):
            raise RetryLater("the thread's root is not posted yet", sent=sent)
        match head.what:
            case OpenThread():
                root = blocks.root_text(head.conversation, head.site_name)
                ts = await self._post(channel, None, root, ids, blocks=await self._root_blocks(head))
                sent.extend(sent_for(group, channel, ts))
            case RootState():
                await self._update_root(head)
                sent.extend(Sent(i) for i in ids)
            case Line(message) if self._uploads is not None and carries_files(head):
                await self._deliver_files(head, landed_parts, sent)
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
                    text = formatted_line(message) or fit_escaped(message.text)
                    await self._change_copy(copy, (file_comment(message) or text) if message.attachments else text)
                sent.extend(Sent(i) for i in ids)
            case Seen(_, copy):
                # the visitor has seen the agent's message: the bot's 👀 on it, once
                if copy is not None:
                    await self._react(copy, SEEN_REACTION)
                sent.extend(Sent(i) for i in ids)
            case Deletion(_, copy, more):
                # every post the message became: a long text's parts, the files shared with it
                for made in (c for c in (copy, *more) if c is not None):
                    if is_file_ref(made):
                        await delete_file(self._client, made)
                    else:
                        await self._change_copy(made, None)
                sent.extend(Sent(i) for i in ids)
            case Erase(copy):
                # the conversation was erased: our post goes (``copy`` None: the thread's root)
                target = copy or head.thread
                if target is not None and is_file_ref(target):
                    await delete_file(self._client, target)
                elif target is not None:
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
            case FilePost(file, text):
                # a file for the channel itself (the report's picture), with the bridge's words beside it
                if self._uploads is None:
                    await self._post_in_turn(group, text_posts(head.delivery_id, text), landed_parts, sent)
                else:
                    await self._share(head, (file,), fit_escaped(text), None, sent)
            case WebhookEvent() | FollowUpMail():
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
                sent.extend(sent_for([by_id[i] for i in post.ids], channel, ts, earlier))
                earlier = []
            else:
                earlier.append(ts)

    async def _deliver_files(self, item: Outgoing, landed_parts: Mapping[int, str], sent: list[Sent]) -> None:
        """A line with files: its files shared in the thread with its words as their comment — or, words too
        long for a comment, the words first as the line's usual posts (found again by their metadata)."""
        assert self._uploads is not None and isinstance(item.what, Line)
        message = item.what.message
        channel = item.destination
        thread_ts = split_ref(item.thread)[1] if item.thread else None
        comment = file_comment(message)
        words: list[str] = []
        if comment is None:
            formatted = formatted_line(message)
            posts = (
                [Post((item.delivery_id,), 0, formatted)]
                if formatted is not None
                else text_posts(item.delivery_id, message.text)
            )
            for post in posts:
                ts = landed_parts.get(post.part)
                if ts is None:
                    try:
                        ts = await self._post(
                            channel,
                            thread_ts,
                            post.text,
                            post.ids,
                            part=post.part,
                            username=display_name(message.author.name),
                            icon_url=message.author.avatar_url,
                            mrkdwn=formatted is not None,
                        )
                    except Exception as exc:
                        raise as_delivery_error(exc, channel, self.pacer, sent, partly_posted=bool(words)) from exc
                words.append(ts)
            comment = f"{escape(display_name(message.author.name))} sent the files of the message above"
        await self._share(item, message.attachments, comment, thread_ts, sent, words)

    async def _share(
        self,
        item: Outgoing,
        files: Sequence[Attachment],
        comment: str,
        thread_ts: str | None,
        sent: list[Sent],
        words: Sequence[str] = (),
    ) -> None:
        """The files shared with their comment (after the ``words`` posted for the same delivery)."""
        assert self._uploads is not None
        channel = item.destination
        try:
            shared = await self._uploads.share(item, files, comment, thread_ts)
        except InDoubt as exc:
            if exc.__cause__ is not None:
                raise as_delivery_error(exc.__cause__, channel, self.pacer, sent, partly_posted=True) from exc
            raise RetryLater(exc.reason, retry_after=exc.retry_after, maybe_sent=True, sent=sent) from exc
        except Exception as exc:
            raise as_delivery_error(exc, channel, self.pacer, sent, partly_posted=bool(words)) from exc
        if shared is None:  # its files were erased meanwhile: nothing (more) to post
            sent.append(Sent(item.delivery_id, RemoteId(thread_ref(channel, words[-1])) if words else None))
            return
        copies = (*(RemoteId(thread_ref(channel, ts)) for ts in words), *map(file_ref, shared.file_ids))
        sent.append(Sent(item.delivery_id, RemoteId(thread_ref(channel, shared.ts)), None, copies))

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
        if icon_url and icon_url.startswith(("https://", "http://")):
            # a Matrix face kept in the bridge's store (``attachment:…``) has no public address for Slack
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
                blocks=await self._root_blocks(item),
            )
        except SlackApiError as exc:
            if exc.response.get("error") in ("message_not_found", "cant_update_message", "edit_window_closed"):
                log.warning("Slack: root %s cannot be updated (%s); leaving it", item.thread, exc.response.get("error"))
                return
            raise

    async def _root_blocks(self, item: Outgoing) -> list[dict[str, Any]]:
        returning = item.conversation.returning
        last = returning.last_thread("slack") if returning else None
        previous = await self._permalinks.of(last[1]) if last else None
        return blocks.root_blocks(item.conversation, item.site_name, item.topic_label, previous)

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
