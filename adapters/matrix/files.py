"""Files between the widget and the Matrix threads (CONTRACT §7, §11), both ways.

Out: a line's files follow its text, one ``m.image`` (a picture a browser shows) or ``m.file`` event each,
``m.thread`` replies like every line. The bytes come from the bridge's store and go to the homeserver's
media repository — encrypted first in an encrypted room, where the event carries the key (``file``)
instead of a plain ``url``. Each file's event has a transaction id of its own, so a resend posts nothing
twice; the upload before it may repeat, which leaves an unused copy on the homeserver and nothing else.

In: a staff member's ``m.image``/``m.file``/``m.video``/``m.audio`` is read with the bot's token through
authenticated media, decrypted as it streams when it is encrypted (the hash is checked at the end: a
file that does not match is dropped whole), and kept in the bridge's store, which decides its type from
its bytes and stops it at the size limit. The widget only ever gets the bridge's own signed link.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import io
import logging
import struct
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import nio
from Crypto.Cipher import AES  # matrix-nio's own dependency: what it encrypts attachments with

from adapters.matrix.format import FILE_TYPES
from adapters.matrix.media import MediaReader, MediaUnavailable
from adapters.matrix.responses import Refusal, classify_refusal, describe_response
from bridge.endpoint import StateStore
from bridge.files import FileRefused
from bridge.model import Attachment

log = logging.getLogger(__name__)

#: pictures every Matrix client shows inline; anything else goes as a file to download
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: an upload has no deadline in nio (it sets none for transfers): ours
UPLOAD_SECONDS = 120.0


class FileCorrupt(Exception):
    """An encrypted file whose bytes are not what its event promised (hash or key wrong)."""


# -- out: the events a line's files become --------------------------------------------------------


def outbound_msgtype(content_type: str) -> str:
    return "m.image" if content_type in INLINE_IMAGES else "m.file"


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF, JPEG or WebP from its header; None when that is not quickly found."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_size(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return int(w) & 0x3FFF, int(h) & 0x3FFF
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length: standalone markers
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


def file_content(
    file: Attachment, data: bytes, *, url: str | None = None, encrypted: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The event of one file: its name as ``body`` (and ``filename``, so no client reads it as a caption),
    what it is in ``info``, and where it is — ``url``, or ``encrypted`` (the ``file`` object) in an
    encrypted room. No mentions, whatever the name says."""
    msgtype = outbound_msgtype(file.content_type)
    info: dict[str, Any] = {"mimetype": file.content_type, "size": len(data)}
    if msgtype == "m.image" and (size := image_size(data)) is not None:
        info["w"], info["h"] = size
    content: dict[str, Any] = {
        "msgtype": msgtype,
        "body": file.name,
        "filename": file.name,
        "info": info,
        "m.mentions": {},
    }
    if encrypted is not None:
        content["file"] = encrypted
    else:
        content["url"] = url
    return content


def not_posted_content(file: Attachment, why: str) -> dict[str, Any]:
    """What the thread shows instead of a file the homeserver would not take."""
    return {"msgtype": "m.notice", "body": f"{file.name} could not be posted here: {why}", "m.mentions": {}}


class FileUploads:
    """A line's files as the events they become in the thread, each uploaded first."""

    def __init__(self, state: StateStore) -> None:
        self._state = state  # its ``files``: the bridge's store

    async def contents(
        self, client: nio.AsyncClient, files: Sequence[Attachment], *, encrypt: bool
    ) -> list[tuple[str, dict[str, Any]]]:
        """(transaction part, content) per file, in order. A file gone from the store (its
        conversation erased meanwhile) is left out; one the homeserver refuses for good becomes a notice.
        A refusal worth trying again raises :class:`UploadRefused` (the whole delivery is tried again)."""
        contents: list[tuple[str, dict[str, Any]]] = []
        for n, file in enumerate(files):
            try:
                data = await self._state.files.read(file.id)
            except FileNotFoundError:
                log.info("Matrix: %s is no longer in the store; not posted", file.id)
                continue
            contents.append((f"file{n}", await self._content(client, file, data, encrypt)))
        return contents

    async def _content(self, client: nio.AsyncClient, file: Attachment, data: bytes, encrypt: bool) -> dict[str, Any]:
        async with asyncio.timeout(UPLOAD_SECONDS):
            response, keys = await client.upload(
                io.BytesIO(data),
                content_type=file.content_type,
                filename=file.name,
                encrypt=encrypt,
                filesize=len(data),
            )
        if not isinstance(response, nio.UploadResponse):
            if classify_refusal(response) in (Refusal.REFUSED, Refusal.NO_ACCESS):
                # too large for this homeserver, or uploads not allowed: trying again changes nothing
                log.warning("Matrix: the homeserver refused %s (%s)", file.name, describe_response(response))
                return not_posted_content(file, f"the homeserver refused it ({describe_response(response)})")
            raise UploadRefused(response)
        uri = str(response.content_uri)
        if encrypt:
            assert keys is not None
            return file_content(file, data, encrypted={**keys, "url": uri})
        return file_content(file, data, url=uri)


class UploadRefused(Exception):
    """The homeserver did not take an upload, for a reason that may pass (rate limit, login, a bad gateway)."""

    def __init__(self, response: Any) -> None:
        super().__init__(describe_response(response))
        self.response = response


# -- in: a staff member's file, into the bridge's store -----------------------------------------


@dataclass(frozen=True)
class FileKey:
    """How an encrypted file is read (the event's ``file``: AES-256-CTR key and IV, SHA-256 of the ciphertext)."""

    key: bytes
    iv: bytes
    sha256: bytes


@dataclass(frozen=True)
class SharedFile:
    """A file a staff member shared, as its event describes it."""

    mxc: str
    name: str
    #: what ``info.size`` says (a hint: the store counts for itself)
    size: int | None = None
    #: set when the file is encrypted (an encrypted room)
    key: FileKey | None = None


def shared_file(content: dict[str, Any]) -> SharedFile | None:
    """The file of an ``m.image``/``m.file``/``m.video``/``m.audio`` event; None for anything else, or a
    file event that says not where its file is."""
    if content.get("msgtype") not in FILE_TYPES:
        return None
    info = content.get("info")
    size = info.get("size") if isinstance(info, dict) else None
    size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
    name = file_name(content)
    url = content.get("url")
    if isinstance(url, str) and url.startswith("mxc://"):
        return SharedFile(url, name, size)
    encrypted = content.get("file")
    key = file_key(encrypted) if isinstance(encrypted, dict) else None
    url = encrypted.get("url") if isinstance(encrypted, dict) else None
    if key is None or not isinstance(url, str) or not url.startswith("mxc://"):
        return None
    return SharedFile(url, name, size, key)


def file_name(content: dict[str, Any]) -> str:
    """The name a staff member's file was shared with: ``filename`` (MSC2530), else ``body`` when it is no caption."""
    for candidate in (content.get("filename"), content.get("body")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return "file"


def file_key(encrypted: dict[str, Any]) -> FileKey | None:
    """The key of an ``EncryptedFile``; None when it is not one this bridge can read (v2, A256CTR)."""
    jwk, hashes = encrypted.get("key"), encrypted.get("hashes")
    if not isinstance(jwk, dict) or not isinstance(hashes, dict) or encrypted.get("v") not in ("v2", None):
        return None
    k, iv, sha256 = jwk.get("k"), encrypted.get("iv"), hashes.get("sha256")
    if jwk.get("alg", "A256CTR") != "A256CTR" or not all(isinstance(x, str) for x in (k, iv, sha256)):
        return None
    try:
        found = FileKey(_unpadded(str(k)), _unpadded(str(iv)), _unpadded(str(sha256)))
    except (ValueError, binascii.Error):
        return None
    return found if len(found.key) == 32 and len(found.iv) == 16 and len(found.sha256) == 32 else None


def _unpadded(value: str) -> bytes:
    """Unpadded base64, standard or URL-safe (a JWK's ``k`` is URL-safe, the IV and hash standard)."""
    return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=False)


async def decrypted(pieces: AsyncIterable[bytes], key: FileKey) -> AsyncIterator[bytes]:
    """The plaintext of an encrypted file as its ciphertext streams in; raises :class:`FileCorrupt` after the
    last piece when the ciphertext is not the one the event named (the store then drops what it kept)."""
    cipher = AES.new(key.key, AES.MODE_CTR, nonce=key.iv[:8], initial_value=key.iv[8:])
    digest = hashlib.sha256()
    async for piece in pieces:
        digest.update(piece)
        yield cipher.decrypt(piece)
    if not hmac.compare_digest(digest.digest(), key.sha256):
        raise FileCorrupt("the file does not match its event's hash")


class FileIntake:
    """Staff members' files into the bridge's store, for the widget to offer."""

    def __init__(self, media: MediaReader, state: StateStore) -> None:
        self._media = media
        self._state = state  # its ``files``: the bridge's store

    async def fetch(self, shared: SharedFile) -> Attachment:
        """Read the file in; ``FileRefused`` (too large, empty), ``MediaUnavailable`` or ``FileCorrupt``."""
        async with self._media.open(shared.mxc) as stream:
            pieces = stream.pieces if shared.key is None else decrypted(stream.pieces, shared.key)
            declared = stream.size if stream.size is not None else shared.size
            return await self._state.files.save(
                pieces, name=shared.name, origin="matrix", any_type=True, declared_size=declared
            )

    async def take(self, shared: SharedFile, who: str) -> tuple[tuple[Attachment, ...], str | None]:
        """The file as the message's attachments, or none and what the thread should be told. A file that
        cannot be read now is not waited for (a remote server's media may never come, and the sync of every
        room would wait with it): the thread says so, and staff can share it again."""
        try:
            return (await self.fetch(shared),), None
        except FileRefused as exc:
            return (), f"{shared.name} from {who} was not passed on to the visitor: {exc.message}."
        except (MediaUnavailable, FileCorrupt, TimeoutError, aiohttp.ClientError) as exc:
            log.warning("Matrix: cannot read %s (%s): %s", shared.name, shared.mxc, exc)
            return (), f"{shared.name} from {who} could not be read from the homeserver, so the visitor did not get it."
