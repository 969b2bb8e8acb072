"""Files built ahead of time (the widget), served precompressed in the encoding the browser takes.

``make widget`` writes ``widget.js`` and, beside it, ``widget.js.br`` and ``widget.js.gz``, compressed
once at the highest levels. Each request gets the variant its ``Accept-Encoding`` allows — brotli, then
gzip, else the file as it is — so nothing is compressed per request. Every answer says
``Vary: Accept-Encoding``, so a cache in between keeps the variants apart; ETag and Last-Modified let a
browser revalidate with a 304.

A missing build is a deployment mistake, not an empty widget: 503 with a JSON error saying what to run.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from widget_server.responses import error

log = logging.getLogger(__name__)

#: content coding → file suffix, in our order of preference when the browser likes them equally
PRECOMPRESSED = {"br": ".br", "gzip": ".gz"}


@dataclass(frozen=True)
class Variant:
    body: bytes
    encoding: str | None  # None: the file as it is
    etag: str
    mtime: float


def accepted_codings(accept_encoding: str) -> dict[str, float]:
    """``Accept-Encoding`` as ``{coding: q}`` (lowercase; ``x-gzip`` is gzip; a bad q counts as 0)."""
    codings: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        codings["gzip" if coding == "x-gzip" else coding] = q
    return codings


def choose_encoding(accept_encoding: str, available: list[str]) -> str | None:
    """The available coding the browser accepts with the highest q (ties: our order), else None."""
    accepted = accepted_codings(accept_encoding)
    best, best_q = None, 0.0
    for coding in sorted(available, key=list(PRECOMPRESSED).index):
        q = accepted.get(coding, accepted.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


def read_variant(path: Path, accept_encoding: str) -> Variant | None:
    """The variant of ``path`` to send (blocking file I/O: run it in a thread); None when not built."""
    if not path.is_file():
        return None
    available = [c for c, suffix in PRECOMPRESSED.items() if path.with_name(path.name + suffix).is_file()]
    encoding = choose_encoding(accept_encoding, available)
    chosen = path.with_name(path.name + PRECOMPRESSED[encoding]) if encoding else path
    try:
        with chosen.open("rb") as file:
            stat = os.fstat(file.fileno())
            body = file.read()
    except FileNotFoundError:  # a rebuild replaced it between the look and the read
        return read_variant(path, "") if encoding else None
    etag = f"{stat.st_mtime_ns:x}-{stat.st_size:x}" + (f"-{encoding}" if encoding else "")
    return Variant(body, encoding, etag, stat.st_mtime)


async def serve_precompressed(
    request: web.Request, path: Path, *, content_type: str, cache_control: str, missing: str
) -> web.StreamResponse:
    """Answer ``request`` with ``path`` (or its .br/.gz); ``missing`` is the 503's message without a build."""
    variant = await asyncio.to_thread(read_variant, path, request.headers.get("Accept-Encoding", ""))
    if variant is None:
        log.error("%s is missing: %s", path, missing)
        return error(503, "not_built", missing, headers={"Cache-Control": "no-store"})
    headers = {"Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if variant.encoding:
        headers["Content-Encoding"] = variant.encoding
    if _not_modified(request, variant):
        response = web.Response(status=304, headers=headers)
    else:
        response = web.Response(body=variant.body, headers=headers, content_type=content_type, charset="utf-8")
    response.etag = variant.etag
    response.last_modified = variant.mtime
    return response


def _not_modified(request: web.Request, variant: Variant) -> bool:
    if request.if_none_match is not None:  # it wins over If-Modified-Since (RFC 9110 §13.1.3)
        return any(tag.value in (variant.etag, "*") for tag in request.if_none_match)
    since = request.if_modified_since
    return since is not None and int(variant.mtime) <= since.timestamp()
