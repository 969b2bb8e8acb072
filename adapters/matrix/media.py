"""Reading media from the homeserver (avatars, files staff share) as the bot: authenticated media.

Current homeservers serve media only through ``GET /_matrix/client/v1/media/download/{server}/{id}``
(and ``…/thumbnail/…``) with the access token (Synapse: the old ``/_matrix/media/v3/download`` answers
404 for media uploaded since, v1 without a token 401). A homeserver older than Matrix 1.11 does not
know v1 (404 or 405 with ``M_UNRECOGNIZED``): then — and only then — the unauthenticated
``/_matrix/media/v3/download`` is used, and remembered for that homeserver. A browser can use neither;
whatever reaches a visitor goes through the bridge.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

import aiohttp

log = logging.getLogger(__name__)

#: what one download may be at most unless the caller says otherwise
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: how much one read of a response takes at once
READ_BYTES = 64 * 1024
_FILENAME = re.compile(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", re.I)


class MediaUnavailable(Exception):
    """The media cannot be had (no such media, refused, too large, the homeserver away)."""


class MediaTooLarge(MediaUnavailable):
    pass


@dataclass(frozen=True)
class Media:
    content: bytes
    content_type: str
    #: the name it was uploaded with, when the homeserver says
    name: str | None = None


def parse_mxc(mxc: str) -> tuple[str, str] | None:
    """(server name, media id) of an ``mxc://server/id`` URI; None when it is no such URI."""
    if not mxc.startswith("mxc://"):
        return None
    server, _, media_id = mxc.removeprefix("mxc://").partition("/")
    if not server or not media_id or "/" in media_id:
        return None
    return server, media_id


@dataclass(frozen=True)
class MediaStream:
    """Media being read: what the homeserver says of it, and its bytes as they come."""

    content_type: str
    #: the name it was uploaded with, when the homeserver says
    name: str | None
    #: the length the homeserver announced, if it did
    size: int | None
    pieces: AsyncIterator[bytes]

    async def read(self, max_bytes: int) -> Media:
        """All of it, refused (``MediaTooLarge``) as soon as it is known to be past ``max_bytes``."""
        if self.size is not None and self.size > max_bytes:
            raise MediaTooLarge(f"{self.size} bytes, more than {max_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.pieces:
            size += len(chunk)
            if size > max_bytes:
                raise MediaTooLarge(f"more than {max_bytes} bytes")
            chunks.append(chunk)
        return Media(b"".join(chunks), self.content_type, self.name)


class MediaReader:
    def __init__(self, homeserver: str, token: Callable[[], Awaitable[str | None]]) -> None:
        self.homeserver = homeserver.rstrip("/")
        self._token = token
        self._http: aiohttp.ClientSession | None = None
        #: the homeserver knows no authenticated media (found out once, then kept)
        self.legacy = False

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def download(self, mxc: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Media:
        """The whole media, at most ``max_bytes`` (``MediaTooLarge`` past it)."""
        async with self.open(mxc) as stream:
            return await stream.read(max_bytes)

    async def thumbnail(self, mxc: str, size: int, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Media:
        """A square thumbnail of about ``size`` pixels (what a face needs), as the homeserver makes it."""
        async with self.open(mxc, thumbnail=size) as stream:
            return await stream.read(max_bytes)

    @contextlib.asynccontextmanager
    async def open(self, mxc: str, *, thumbnail: int | None = None) -> AsyncIterator[MediaStream]:
        """The media as it streams in (a file staff share goes into the store a piece at a time), or a
        ``thumbnail`` of it (``size`` × ``size``, cropped)."""
        where = parse_mxc(mxc)
        if where is None:
            raise MediaUnavailable(f"{mxc!r} is not an mxc:// URI")
        kind = "download" if thumbnail is None else "thumbnail"
        path = f"{kind}/{quote(where[0], safe='')}/{quote(where[1], safe='')}?allow_redirect=true"
        if thumbnail is not None:
            path += f"&width={thumbnail}&height={thumbnail}&method=crop"
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        if not self.legacy:
            token = await self._token()
            if not token:
                raise MediaUnavailable("the bot is not logged in to Matrix yet")
            url = f"{self.homeserver}/_matrix/client/v1/media/{path}"
            async with self._http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                if response.status == 200:
                    yield _stream(response)
                    return
                body = await response.read()
                if not _unrecognized(response.status, body):
                    raise _refusal(mxc, response.status, body)
            log.info("Matrix: %s has no authenticated media; reading media the old way", self.homeserver)
            self.legacy = True
        async with self._http.get(f"{self.homeserver}/_matrix/media/v3/{path}") as response:
            if response.status == 200:
                yield _stream(response)
                return
            raise _refusal(mxc, response.status, await response.read())


def _errcode(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    code = data.get("errcode") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


def _unrecognized(status: int, body: bytes) -> bool:
    """The homeserver does not know the endpoint (as opposed to the media): 404/405 ``M_UNRECOGNIZED``,
    or a bare 404/405 from a server or proxy that answers no Matrix error at all."""
    code = _errcode(body)
    return (status in (400, 404, 405) and code == "M_UNRECOGNIZED") or (status in (404, 405) and code is None)


def _refusal(mxc: str, status: int, body: bytes) -> MediaUnavailable:
    code = _errcode(body)
    return MediaUnavailable(f"the homeserver answered {status}{' ' + code if code else ''} for {mxc}")


def _stream(response: aiohttp.ClientResponse) -> MediaStream:
    found = _FILENAME.search(response.headers.get("Content-Disposition", ""))
    return MediaStream(
        response.content_type or "application/octet-stream",
        unquote(found.group(1)) if found else None,
        response.content_length,
        response.content.iter_chunked(READ_BYTES),
    )
