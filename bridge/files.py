"""Files both ways (CONTRACT §7): take one in as it streams, decide its type from its bytes, keep it in
the database, hand it back in pieces, and sign the links the widget downloads it through.

A file is never held whole in memory on its way in or out: it arrives in pieces of any size, is cut
into ``CHUNK_BYTES`` rows as it comes, and is refused the moment it grows past the limit.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import filetype

from bridge.model import Attachment
from bridge.shared_key import SharedKey
from bridge.store import attachments as store
from bridge.store.database import Database

#: what the widget may send when ``SITECHAT_UPLOAD_TYPES`` is not set
DEFAULT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"})
#: bytes looked at to decide the type (filetype reads at most this many)
SNIFF_BYTES = 8192
#: how long a file that was never sent is kept (an upload the visitor never sent, one cut off)
UNSENT_KEPT = timedelta(hours=24)
#: the database key of the link-signing key, made once and shared by every instance
LINK_KEY = "attachments:link-key"
#: what no team-chat or visitor file may be named: paths, control characters
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]+")
#: the WHATWG sniffing signatures of markup a browser would run as a page (HTML, SVG, XML)
_MARKUP = re.compile(
    rb"^\s*(<\?xml|<!doctype\s+html|<html|<head|<body|<script|<iframe|<svg|<title|<style|<div|<a[\s>]|<img|<!--|<p[\s>])",
    re.IGNORECASE,
)


class FileRefused(Exception):
    """A file the bridge will not keep: ``too_large`` (413) or ``unsupported_type`` (415), or ``empty``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FileRules:
    """What may be kept: the types (None: any) and the size."""

    max_bytes: int
    types: frozenset[str] | None = DEFAULT_TYPES


def sniff(head: bytes) -> str:
    """The content type of a file that starts with ``head``, from its bytes alone: a known binary format
    by its signature (``filetype``); else markup a browser would run (``text/html``, ``image/svg+xml``,
    ``text/xml``); else UTF-8 text without NUL is ``text/plain``; anything else is opaque."""
    kind = filetype.guess_mime(head) if head else None
    if kind:
        return str(kind)
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        # not final: a multi-byte character cut at the end of the sample is still text
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "application/octet-stream"
    body = head.removeprefix(b"\xef\xbb\xbf")
    if match := _MARKUP.match(body):
        tag = match.group(1).lower()
        if tag.startswith(b"<svg") or (tag.startswith(b"<?xml") and b"<svg" in body.lower()):
            return "image/svg+xml"
        return "text/xml" if tag.startswith(b"<?xml") else "text/html"
    return "text/plain"


def safe_name(name: str | None, fallback: str = "file") -> str:
    """A file name to show and to offer for saving: no path, no control characters, at most 200 chars."""
    last = re.split(r"[/\\]", unicodedata.normalize("NFC", name or ""))[-1]  # a path's last part
    cleaned = _UNSAFE_NAME.sub("_", last).strip(" .")
    return (cleaned or fallback)[-200:]


def link_signature(key: bytes, aid: str, expires: int) -> str:
    return hmac.new(key, f"{aid}.{expires}".encode(), hashlib.sha256).hexdigest()


def link_valid(key: bytes, aid: str, expires: int, signature: str, now: float) -> bool:
    """A download link is good until it expires, and only as signed (a changed id or time breaks it)."""
    good = hmac.compare_digest(link_signature(key, aid, expires), signature.lower())
    return good and now <= expires


class Files:
    """The attachments of every conversation: kept in the database, so every instance serves them."""

    def __init__(self, db: Database, clock: Callable[[], datetime], rules: FileRules) -> None:
        self.db = db
        self.clock = clock
        self.rules = rules
        self._link_key = SharedKey(db, LINK_KEY, clock)

    async def save(
        self,
        pieces: AsyncIterable[bytes],
        *,
        name: str | None,
        origin: str,
        conversation_id: str | None = None,
        any_type: bool = False,
        declared_size: int | None = None,
    ) -> Attachment:
        """Keep a file as it streams in; refuse it (``FileRefused``) as soon as it is too large or its
        first bytes show a type the rules do not allow (``any_type``: a team member's file may be any
        type; it is offered for download, never shown inline). Nothing of a refused file is left behind."""
        limit = self.rules.max_bytes
        allowed = None if any_type else self.rules.types
        if declared_size is not None and declared_size > limit:
            raise _too_large(limit)
        aid = secrets.token_urlsafe(18)
        filename = safe_name(name)
        buffer = bytearray()
        size, n, kind = 0, 0, ""
        began = False
        try:
            async for piece in pieces:
                size += len(piece)
                if size > limit:
                    raise _too_large(limit)
                buffer += piece
                if not began and len(buffer) >= SNIFF_BYTES:
                    kind = self._checked(bytes(buffer[:SNIFF_BYTES]), allowed)
                    await self._begin(aid, filename, kind, origin, conversation_id)
                    began = True
                while began and len(buffer) >= store.CHUNK_BYTES:
                    await self._chunk(aid, n, bytes(buffer[: store.CHUNK_BYTES]))
                    del buffer[: store.CHUNK_BYTES]
                    n += 1
            if size == 0:
                raise FileRefused("empty", "the file is empty")
            if not began:
                kind = self._checked(bytes(buffer), allowed)
                await self._begin(aid, filename, kind, origin, conversation_id)
                began = True
            async with self.db.write() as conn:
                if buffer:
                    await store.add_chunk(conn, aid, n, bytes(buffer))
                await store.finish(conn, aid, size)
        except BaseException:
            if began:
                async with self.db.write() as conn:
                    await store.discard(conn, [aid])
            raise
        return Attachment(aid, filename, size, kind)

    def _checked(self, head: bytes, allowed: frozenset[str] | None) -> str:
        kind = sniff(head)
        if allowed is not None and kind not in allowed:
            raise FileRefused("unsupported_type", f"files of type {kind} are not accepted")
        return kind

    async def _begin(self, aid: str, name: str, kind: str, origin: str, cid: str | None) -> None:
        async with self.db.write() as conn:
            await store.begin(
                conn, aid, name=name, content_type=kind, origin=origin, now=self.clock(), conversation_id=cid
            )

    async def _chunk(self, aid: str, n: int, data: bytes) -> None:
        async with self.db.write() as conn:
            await store.add_chunk(conn, aid, n, data)

    async def find(self, aid: str) -> store.StoredFile | None:
        """A complete file, or None (unknown, still being uploaded, or gone with its message)."""
        async with self.db.read() as conn:
            found = await store.get(conn, aid)
        return found if found is not None and found.complete else None

    async def pieces(self, stored: store.StoredFile) -> AsyncIterator[bytes]:
        """A file's bytes, a chunk at a time (one short read each: nothing is held meanwhile)."""
        for n in range(stored.chunks):
            async with self.db.read() as conn:
                data = await store.chunk(conn, stored.file.id, n)
            if data is None:
                return  # erased while being read
            yield data

    async def read(self, aid: str) -> bytes:
        """A whole file (at most the size limit): what a team chat's upload call takes."""
        stored = await self.find(aid)
        if stored is None:
            raise FileNotFoundError(aid)
        return b"".join([piece async for piece in self.pieces(stored)])

    async def purge(self, before: datetime) -> int:
        """Forget the files never sent since ``before`` (read first: most ticks find none, and write nothing)."""
        async with self.db.read() as conn:
            found = await store.unfinished(conn, before)
        if found:
            async with self.db.write() as conn:
                await store.discard(conn, found)
        return len(found)

    async def link_key(self) -> bytes:
        """The key download links are signed with (one for every instance)."""
        return await self._link_key.get()


def _too_large(limit: int) -> FileRefused:
    return FileRefused("too_large", f"files may be at most {limit // (1024 * 1024)} MB")
