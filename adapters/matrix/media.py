"""Reading media from the homeserver (avatars, files staff share) as the bot: authenticated media.

Current homeservers serve media only through ``GET /_matrix/client/v1/media/download/{server}/{id}``
with the access token (Synapse: the old ``/_matrix/media/v3/download`` answers 404 for media uploaded
since, v1 without a token 401). A homeserver older than Matrix 1.11 does not know v1 (404 or 405 with
``M_UNRECOGNIZED``): then — and only then — the unauthenticated ``/_matrix/media/v3/download`` is used,
and remembered for that homeserver. A browser can use neither; whatever reaches a visitor goes through
the bridge.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

import aiohttp

log = logging.getLogger(__name__)

#: what one download may be at most unless the caller says otherwise
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
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
        where = parse_mxc(mxc)
        if where is None:
            raise MediaUnavailable(f"{mxc!r} is not an mxc:// URI")
        path = f"{quote(where[0], safe='')}/{quote(where[1], safe='')}"
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        if not self.legacy:
            token = await self._token()
            if not token:
                raise MediaUnavailable("the bot is not logged in to Matrix yet")
            url = f"{self.homeserver}/_matrix/client/v1/media/download/{path}?allow_redirect=true"
            async with self._http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
                if response.status == 200:
                    return await _read(response, max_bytes)
                body = await response.read()
                if not _unrecognized(response.status, body):
                    raise _refusal(mxc, response.status, body)
            log.info("Matrix: %s has no authenticated media; reading media the old way", self.homeserver)
            self.legacy = True
        url = f"{self.homeserver}/_matrix/media/v3/download/{path}?allow_redirect=true"
        async with self._http.get(url) as response:
            if response.status == 200:
                return await _read(response, max_bytes)
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


async def _read(response: aiohttp.ClientResponse, max_bytes: int) -> Media:
    if response.content_length is not None and response.content_length > max_bytes:
        raise MediaTooLarge(f"{response.content_length} bytes, more than {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise MediaTooLarge(f"more than {max_bytes} bytes")
        chunks.append(chunk)
    disposition = response.headers.get("Content-Disposition", "")
    found = _FILENAME.search(disposition)
    name = unquote(found.group(1)) if found else None
    return Media(b"".join(chunks), response.content_type or "application/octet-stream", name)
