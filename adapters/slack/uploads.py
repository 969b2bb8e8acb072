"""A line with files (the visitor's, or a Matrix staff member's on a mirrored site) as real files in the
thread: ``files.getUploadURLExternal`` per file, its bytes to the URL Slack gives, then one
``files.completeUploadExternal`` that shares them into the thread with the line as their comment.

This is slack-sdk's ``files_upload_v2`` taken apart, for one reason: Slack has no idempotency key and the
completion takes no metadata, so nothing in the thread says which delivery a share belongs to. The file
ids an attempt got are recorded in the endpoint's durable state *before* the completion is asked for; a
retry after a timeout asks ``files.info`` about them, and a file that was shared is not shared again.
Slack shares asynchronously (the completion's answer may lack ``shares``), so the share's ``ts`` — the
thread message an erasure deletes — is read from ``files.info`` when the answer does not carry it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.pacing import Pacer
from adapters.slack.format import display_name, escape
from adapters.slack.posts import MAX_POST_CHARS, formatted_line
from adapters.slack.session import SlackSession
from bridge.endpoint import Outgoing, StateStore
from bridge.model import Attachment, Message, RemoteId
from bridge.outbound import Line

log = logging.getLogger(__name__)

#: a remote id that is a Slack file, not a post: an erasure deletes it with ``files.delete``
FILE_PREFIX = "file:"
#: how long after an attempt recorded its files Slack may still be sharing them: within it a retry that
#: finds a file not shared yet waits for the share rather than uploading the file again
SHARE_GRACE = 60.0
#: what Slack answers for a file that is gone already: its removal is done
GONE = frozenset({"file_not_found", "file_deleted", "cant_delete_file"})


class UploadRefused(Exception):
    """The upload URL did not take the bytes (nothing was shared)."""


class InDoubt(Exception):
    """The files may be in the thread already (their share was asked for): a retry must look first. The
    cause, if any, is the failure that left it in doubt (``raise … from``)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Shared:
    """Files shared into a thread: the message that carries them (``ts``) and the files' ids."""

    ts: str
    file_ids: tuple[str, ...]


def carries_files(item: Outgoing) -> bool:
    """A line whose files go up to Slack (a line taken back before it was sent goes nowhere)."""
    return isinstance(item.what, Line) and bool(item.what.message.attachments) and not item.what.message.deleted


def file_ref(file_id: str) -> RemoteId:
    return RemoteId(FILE_PREFIX + file_id)


def is_file_ref(copy: str) -> bool:
    return copy.startswith(FILE_PREFIX)


def file_comment(message: Message) -> str | None:
    """The files' comment: who sent them and what they wrote (``Ann: look``), escaped like every line the
    bridge posts for someone (their formatting as mrkdwn when they had some); None when the words do not
    fit one comment — they then go first as posts of their own (``words_apart``)."""
    who = escape(display_name(message.author.name))
    if not message.text.strip():
        return f"{who} sent {'a file' if len(message.attachments) == 1 else 'files'}"
    comment = f"{who}: {formatted_line(message) or escape(message.text)}"
    return comment if len(comment) <= MAX_POST_CHARS else None


def words_apart(item: Outgoing) -> bool:
    """The line's words are too long for the files' comment: they are posts of their own (with metadata,
    so a retry finds them in the thread like any post)."""
    return carries_files(item) and isinstance(item.what, Line) and file_comment(item.what.message) is None


def share_ts(files: Sequence[Mapping[str, Any]], channel: str, thread_ts: str | None) -> str | None:
    """The ``ts`` of the message that shares these files in the thread ``thread_ts`` (None: in the channel
    itself), from their ``shares`` (public or private channel), if Slack says it yet."""
    for file in files:
        shares = file.get("shares") or {}
        for scope in ("public", "private"):
            for entry in (shares.get(scope) or {}).get(channel) or ():
                ts, parent = entry.get("ts"), entry.get("thread_ts")
                if ts and (parent == thread_ts if thread_ts else parent in (None, ts)):
                    return str(ts)
    return None


@dataclass(frozen=True)
class _Attempt:
    """What an attempt recorded before asking for the completion: its files, and when (clock seconds)."""

    file_ids: tuple[str, ...]
    at: float

    def dump(self) -> str:
        return json.dumps({"files": list(self.file_ids), "at": self.at})

    @classmethod
    def parse(cls, raw: str | None) -> _Attempt | None:
        try:
            data = json.loads(raw) if raw else {}
            ids = tuple(str(f) for f in data.get("files") or ())
            return cls(ids, float(data["at"])) if ids else None
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class SlackUploads:
    def __init__(self, session: SlackSession, pacer: Pacer, state: StateStore, clock: Callable[[], float]) -> None:
        self._session = session
        self._pacer = pacer
        self._state = state
        self._clock = clock

    @property
    def _client(self) -> AsyncWebClient:
        assert self._session.client is not None, "deliver() before start()"
        return self._session.client

    async def share(
        self, item: Outgoing, files: Sequence[Attachment], comment: str, thread_ts: str | None
    ) -> Shared | None:
        """The delivery's ``files`` in the thread ``thread_ts`` (None: the channel itself), shared once however
        often this is tried; None when none of them is left to send (erased meanwhile)."""
        channel = item.destination
        key = f"upload:{item.delivery_id}"
        if item.maybe_sent:
            earlier = await self._earlier_share(key, channel, thread_ts)
            if earlier is not None:
                return earlier
        uploaded: list[tuple[str, str]] = []
        for attachment in files:
            file_id = await self._upload(attachment)
            if file_id is not None:
                uploaded.append((file_id, attachment.name))
        if not uploaded:
            return None
        ids = tuple(fid for fid, _ in uploaded)
        await self._state.put(key, _Attempt(ids, self._clock()).dump())  # before the share: a retry looks
        await self._pacer.take(channel)  # sharing posts a message into the channel
        answer = await self._client.files_completeUploadExternal(
            files=[{"id": fid, "title": name} for fid, name in uploaded],
            channel_id=channel,
            initial_comment=comment,
            thread_ts=thread_ts,
        )
        try:
            ts = share_ts(answer.get("files") or [], channel, thread_ts)
            ts = ts or await self._share_of(ids[0], channel, thread_ts)
        except Exception as exc:
            raise InDoubt("the files' share could not be read") from exc
        if ts is None:
            raise InDoubt("Slack is still sharing the files", retry_after=1.0)
        return Shared(ts, ids)

    async def _upload(self, attachment: Attachment) -> str | None:
        """One file's bytes to Slack (not shared yet): its file id; None when the bridge has it no more."""
        try:
            data = await self._state.files.read(attachment.id)
        except FileNotFoundError:
            log.info("Slack: file %s is gone (erased); not uploaded", attachment.id)
            return None
        answer = await self._client.files_getUploadURLExternal(filename=attachment.name, length=len(data))
        timeout = aiohttp.ClientTimeout(total=self._session.timeout)
        async with self._session.http.post(str(answer["upload_url"]), data=data, timeout=timeout) as response:
            if response.status != 200:
                raise UploadRefused(f"Slack's upload URL answered {response.status}")
        return str(answer["file_id"])

    async def _earlier_share(self, key: str, channel: str, thread_ts: str | None) -> Shared | None:
        """What an earlier attempt of this delivery shared, if anything (files.info about its files)."""
        attempt = _Attempt.parse(await self._state.get(key))
        if attempt is None:
            return None  # it never got as far as asking for the share
        exists, ts = await self._look(attempt.file_ids[0], channel, thread_ts)
        if ts is not None:
            return Shared(ts, attempt.file_ids)
        if exists and self._clock() - attempt.at < SHARE_GRACE:
            # the share may still be on its way (Slack shares asynchronously): wait for it, not twice
            raise InDoubt("Slack may still be sharing an earlier attempt's files", retry_after=5.0)
        return None

    async def _share_of(self, file_id: str, channel: str, thread_ts: str | None) -> str | None:
        return (await self._look(file_id, channel, thread_ts))[1]

    async def _look(self, file_id: str, channel: str, thread_ts: str | None) -> tuple[bool, str | None]:
        """Whether Slack has the file (completed), and the ts of its share in the thread if it says yet."""
        try:
            info = await self._client.files_info(file=file_id)
        except SlackApiError as exc:
            if exc.response.get("error") in GONE:
                return False, None
            raise
        found = info.get("file")
        return True, share_ts([found] if isinstance(found, dict) else [], channel, thread_ts)


async def delete_file(client: AsyncWebClient, copy: str) -> None:
    """An erased conversation's file in Slack (``file:F…``); one already gone counts as done."""
    try:
        await client.files_delete(file=copy.removeprefix(FILE_PREFIX))
    except SlackApiError as exc:
        if exc.response.get("error") in GONE:
            log.info("Slack: file %s already gone (%s)", copy, exc.response.get("error"))
            return
        raise
