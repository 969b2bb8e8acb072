"""Staff faces through the bridge (CONTRACT §8 "A face, not a bot"): a Matrix avatar is an ``mxc://`` URI that
no browser may fetch (authenticated media, the bot's token). The bridge reads a small thumbnail of it
once, keeps it in its own file store, and the participant's ``avatar_url`` names that file
(``attachment:{id}``, ``bridge/faces.py``); the widget server turns it into a signed link when it answers.

Kept once per (person, avatar): the file's id is stored in the endpoint's state, so a restart or
another instance finds it again, and a new avatar is read when the person changes theirs. A face that
cannot be had (the homeserver refuses it, it is no picture) is no reason to hold up a reply: the
person shows without one, and it is tried again a while later.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator

import aiohttp

from adapters.matrix.media import MediaReader, MediaUnavailable
from bridge.endpoint import StateStore
from bridge.faces import stored_face
from bridge.files import FileRefused, sniff

log = logging.getLogger(__name__)

#: the thumbnail's side in pixels: twice the widget's largest face, for sharp screens
THUMBNAIL_PX = 96
#: a face larger than this is not worth keeping (a thumbnail is a few KiB)
MAX_BYTES = 2 * 1024 * 1024
#: what a face may be: pictures every browser shows (never SVG: it can carry script)
FACE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: how long one attempt may hold up the reply it came with
FETCH_SECONDS = 15.0
#: after a failed attempt, how long the person shows without a face before the next one
RETRY_SECONDS = 600.0
#: faces remembered in memory (the state keeps them all)
REMEMBERED = 1000
#: the origin of a face in the store: kept for as long as messages name it (not purged as unsent)
ORIGIN = "avatar"


def state_key(user_id: str) -> str:
    return f"avatar:{user_id}"


def kept_face(stored: str | None, mxc: str) -> str | None:
    """The file id kept for ``mxc``, from the state's value; None when it is another avatar (or none)."""
    try:
        value = json.loads(stored) if stored else None
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("mxc") != mxc or not isinstance(value.get("id"), str):
        return None
    return str(value["id"]) or None


class Avatars:
    def __init__(self, media: MediaReader, state: StateStore) -> None:
        self._media = media
        self._state = state
        #: (person, mxc) → the ``avatar_url`` to give, or the loop time of a failed attempt
        self._known: OrderedDict[tuple[str, str], str | float] = OrderedDict()

    async def avatar_url(self, user_id: str, mxc: str | None) -> str | None:
        """The ``avatar_url`` for ``user_id`` whose Matrix avatar is ``mxc``: the bridge's own copy, or None."""
        if not mxc:
            return None
        key = (user_id, mxc)
        now = asyncio.get_running_loop().time()
        known = self._known.get(key)
        if isinstance(known, str):
            return known
        if known is not None and now - known < RETRY_SECONDS:
            return None
        aid = kept_face(await self._state.get(state_key(user_id)), mxc)
        if aid is None:
            aid = await self._fetch(user_id, mxc)
        result: str | float = stored_face(aid) if aid else now
        self._known[key] = result
        self._known.move_to_end(key)
        while len(self._known) > REMEMBERED:
            self._known.popitem(last=False)
        return result if isinstance(result, str) else None

    async def _fetch(self, user_id: str, mxc: str) -> str | None:
        try:
            async with asyncio.timeout(FETCH_SECONDS):
                try:
                    media = await self._media.thumbnail(mxc, THUMBNAIL_PX, max_bytes=MAX_BYTES)
                except MediaUnavailable:
                    # no thumbnail (a homeserver that makes none, a format it cannot scale): the picture
                    media = await self._media.download(mxc, max_bytes=MAX_BYTES)
                kind = sniff(media.content[:8192])
                if kind not in FACE_TYPES:
                    raise FileRefused("unsupported_type", f"a face of type {kind}")
                stored = await self._state.files.save(
                    _one(media.content),
                    name=f"{user_id.lstrip('@')}.{kind.split('/')[1]}",
                    origin=ORIGIN,
                    any_type=True,
                )
        except (MediaUnavailable, FileRefused, TimeoutError, aiohttp.ClientError) as exc:
            log.info("Matrix: no face for %s (%s): %s", user_id, mxc, exc)
            return None
        await self._state.put(state_key(user_id), json.dumps({"mxc": mxc, "id": stored.id}))
        return stored.id


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
