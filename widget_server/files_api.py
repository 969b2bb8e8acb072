"""Files through the widget API (CONTRACT §7): the visitor's upload, and the signed download of any
conversation file (the visitor's, or one a team member shared that the bridge fetched).

An upload streams: the multipart body is read a piece at a time into the store, its type decided from
its first bytes, and it is refused the moment it grows past the limit — never held whole in memory.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from bridge.files import FileRefused, Files, link_valid
from bridge.model import Status
from widget_server import answers
from widget_server.api import authorized, rate_limited
from widget_server.attachment_links import AttachmentLinks
from widget_server.context import CONTEXT, WidgetContext
from widget_server.responses import ApiError, answer

routes = web.RouteTableDef()

#: how much a read of the upload's body takes at once
READ_BYTES = 64 * 1024
#: what the multipart framing around the file may add to the declared length
FRAMING_BYTES = 64 * 1024
#: parts looked at before the one named ``file`` (a form may carry a few small fields first)
MAX_PARTS = 5
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NUMBER = re.compile(r"[0-9]{1,12}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")
REFUSED_STATUS = {"too_large": 413, "unsupported_type": 415, "empty": 422}


def _files(ctx: WidgetContext) -> tuple[Files, AttachmentLinks]:
    if ctx.files is None or ctx.links is None:
        raise ApiError(404, "not_found", "files are not available on this server")
    return ctx.files, ctx.links


@routes.post("/api/v1/conversations/{id}/attachments")
async def upload(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    conv = await authorized(request)
    files, _ = _files(ctx)
    if conv.status is not Status.OPEN:
        raise ApiError(409, "closed", "this conversation is closed; start a new chat")
    limit = files.rules.max_bytes
    if request.content_length is not None and request.content_length > limit + FRAMING_BYTES:
        # refused before a byte is read: a declared length far beyond the limit is not waited for
        raise _refused(FileRefused("too_large", f"files may be at most {limit // (1024 * 1024)} MB"))
    rate_limited(await ctx.new_message_wait(conv.id), "messages in this conversation")
    part = await _file_part(request)
    try:
        stored = await files.save(_pieces(part), name=part.filename, origin="widget", conversation_id=conv.id)
    except FileRefused as exc:
        raise _refused(exc) from None
    info = answers.AttachmentInfo(
        id=stored.id, name=stored.name, size=stored.size, content_type=stored.content_type, url=ctx.file_link(stored)
    )
    return answer(answers.Uploaded(attachment=info), 201)


async def _file_part(request: web.Request) -> BodyPartReader:
    if not request.content_type.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send the file as multipart/form-data, in a part named file")
    try:
        reader = await request.multipart()
        for _ in range(MAX_PARTS):
            part = await reader.next()
            if part is None:
                break
            if isinstance(part, BodyPartReader) and part.name == "file":
                return part
            if isinstance(part, BodyPartReader):
                await part.release()
    except (ValueError, AssertionError, RuntimeError) as exc:  # framing aiohttp cannot read
        raise ApiError(400, "bad_request", f"the multipart body cannot be read ({exc})") from None
    raise ApiError(422, "invalid", "no part named file in the form")


async def _pieces(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        piece = await part.read_chunk(READ_BYTES)
        if not piece:
            return
        yield piece


def _refused(exc: FileRefused) -> ApiError:
    return ApiError(REFUSED_STATUS.get(exc.code, 422), exc.code, exc.message)


@routes.get("/api/v1/attachments/{aid}")
async def download(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    files, links = _files(ctx)
    aid = request.match_info["aid"]
    expires, signature = request.query.get("exp", ""), request.query.get("sig", "")
    if not (_ID.fullmatch(aid) and _NUMBER.fullmatch(expires) and _HEX.fullmatch(signature)):
        raise _bad_link()
    if not link_valid(links.key, aid, int(expires), signature, time.time()):
        raise _bad_link()
    stored = await files.find(aid)
    if stored is None:
        raise ApiError(404, "not_found", "this file is no longer here")
    file = stored.file
    disposition = "inline" if file.is_image and file.content_type != "image/svg+xml" else "attachment"
    response = web.StreamResponse(
        headers={
            "Content-Type": file.content_type,
            "Content-Length": str(file.size),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(file.name, safe='')}",
            "Cache-Control": f"private, max-age={max(0, int(expires) - int(time.time()))}",
        }
    )
    await response.prepare(request)
    async for piece in files.pieces(stored):
        await response.write(piece)
    await response.write_eof()
    return response


def _bad_link() -> ApiError:
    return ApiError(403, "forbidden", "this link is not valid or has expired; reload the chat for a new one")
