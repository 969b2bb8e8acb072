"""Files an agent shares in a thread, fetched into the bridge's store (CONTRACT §7), so the widget offers
them through the bridge's own signed links: the browser never sees a Slack URL or the bot token.

``url_private_download`` (else ``url_private``) with ``Authorization: Bearer xoxb-…``, streamed into the
store a piece at a time and refused as soon as it is too large. Without a valid token Slack answers with
a redirect to its sign-in page: redirects are never followed (the page would be kept as the file). The
token only ever goes to Slack's own file host (or, in tests, to the host of ``SLACK_API_URL``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError

from adapters.slack.failures import describe
from adapters.slack.session import SlackSession
from bridge.endpoint import FileStore
from bridge.files import FileRefused
from bridge.model import Attachment

log = logging.getLogger(__name__)

#: bytes read from Slack at once
READ_BYTES = 64 * 1024
#: files that have no bytes to fetch: beyond a free workspace's limits, kept elsewhere, deleted
UNFETCHABLE_MODES = frozenset({"hidden_by_limit", "external", "tombstone"})
#: answers of the file host that no retry of the event will change (a token without files:read, a file
#: gone): the file is reported to the thread and the words are relayed without it
PERMANENT = frozenset({301, 302, 303, 307, 308, 401, 403, 404, 410})


class DownloadFailed(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"Slack's file host answered {status}")
        self.status = status


@dataclass(frozen=True)
class Fetched:
    """What became of a message's files: the ones kept, and one line per file not passed on."""

    attachments: tuple[Attachment, ...] = ()
    problems: tuple[str, ...] = ()


def file_label(file: Mapping[str, Any]) -> str:
    return str(file.get("name") or file.get("title") or file.get("id") or "a file")


def download_url(file: Mapping[str, Any]) -> str | None:
    url = file.get("url_private_download") or file.get("url_private")
    return str(url) if url else None


def unfetchable(file: Mapping[str, Any]) -> bool:
    """Nothing to fetch: a file beyond the plan's limit, an external one (Google Drive…), a deleted one."""
    return bool(file.get("is_external")) or file.get("mode") in UNFETCHABLE_MODES


def trusted_host(url: str, api_url: str) -> bool:
    """Whether the bot token may go to ``url``: Slack's file host when the API is Slack's, else (a test's
    fake Slack) the API's own host."""
    target, api = urlsplit(url), urlsplit(api_url)
    if target.netloc == api.netloc and target.scheme == api.scheme:
        return True
    api_host = api.hostname or ""
    slack = api_host == "slack.com" or api_host.endswith(".slack.com")
    return slack and target.scheme == "https" and (target.hostname or "") == "files.slack.com"


class SlackDownloads:
    def __init__(self, session: SlackSession, files: FileStore) -> None:
        self._session = session
        self._files = files

    async def fetch(self, files: Sequence[Mapping[str, Any]]) -> Fetched:
        """Each shared file into the store. A failure the event's retry may cure (a 5xx, a timeout) raises:
        the event is answered 503 and Slack sends it again."""
        kept: list[Attachment] = []
        problems: list[str] = []
        for file in files:
            label = file_label(file)
            if unfetchable(file):
                problems.append(f"{label} (Slack does not let the bridge fetch it)")
                continue
            if not download_url(file) or file.get("file_access") == "check_file_info":
                file = await self._info(file)  # Socket Mode and big shares may leave the URLs out
            url = download_url(file)
            if url is None or unfetchable(file):
                problems.append(f"{label} (Slack does not let the bridge fetch it)")
                continue
            if not trusted_host(url, self._session.api_url):
                log.warning("Slack: file %s is not on Slack's file host (%s); not fetched", label, urlsplit(url).netloc)
                problems.append(f"{label} (not on Slack's file host)")
                continue
            size = file.get("size")
            try:
                kept.append(
                    await self._files.save(
                        self._pieces(url),
                        name=label,
                        origin="slack",
                        any_type=True,
                        declared_size=size if isinstance(size, int) else None,
                    )
                )
            except FileRefused as exc:
                problems.append(f"{label} ({exc.message})")
            except DownloadFailed as exc:
                if exc.status not in PERMANENT:
                    raise
                log.warning("Slack: file %s not fetched: %s (does the app have files:read?)", label, exc)
                problems.append(f"{label} (Slack refused it to the bridge: {exc.status})")
        return Fetched(tuple(kept), tuple(problems))

    async def _info(self, file: Mapping[str, Any]) -> Mapping[str, Any]:
        assert self._session.client is not None
        try:
            answer = await self._session.client.files_info(file=str(file.get("id") or ""))
        except SlackApiError as exc:
            log.warning("Slack: files.info for %s failed (%s)", file_label(file), describe(exc))
            return file
        found = answer.get("file")
        return found if isinstance(found, dict) else file

    async def _pieces(self, url: str) -> AsyncIterator[bytes]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._session.timeout, sock_read=self._session.timeout)
        async with self._session.http.get(
            url, headers=self._session.bearer(), allow_redirects=False, timeout=timeout
        ) as response:
            if response.status != 200:
                raise DownloadFailed(response.status)
            async for piece in response.content.iter_chunked(READ_BYTES):
                yield piece
