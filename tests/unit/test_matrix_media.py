"""``adapters/matrix/media.py`` against a homeserver that knows no authenticated media (older than
Matrix 1.11): the unauthenticated endpoint is used then, and only then — and without the token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.matrix.media import MediaReader, MediaUnavailable, parse_mxc


class OldHomeserver:
    """v1 answers as an old Synapse does for an unknown endpoint; v3 serves the media."""

    def __init__(self, v1_answer: tuple[int, str]) -> None:
        self.v1_answer = v1_answer
        self.seen: list[tuple[str, str | None]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.path, request.headers.get("Authorization")))
        if request.path.startswith("/_matrix/client/v1/media/download/"):
            status, body = self.v1_answer
            return web.Response(status=status, text=body, content_type="application/json")
        if request.path == "/_matrix/media/v3/download/old.example/abc":
            return web.Response(
                body=b"old bytes",
                content_type="image/gif",
                headers={"Content-Disposition": "inline; filename*=UTF-8''caf%C3%A9.gif"},
            )
        return web.json_response({"errcode": "M_NOT_FOUND", "error": "no"}, status=404)


@pytest_asyncio.fixture
async def old() -> AsyncIterator[tuple[OldHomeserver, str]]:
    homeserver = OldHomeserver((404, '{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}'))
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", homeserver.handle)
    server = TestServer(app)
    await server.start_server()
    yield homeserver, str(server.make_url("")).rstrip("/")
    await server.close()


async def _token() -> str:
    return "syt_secret"


async def test_an_old_homeserver_is_read_the_old_way(old: tuple[OldHomeserver, str]) -> None:
    homeserver, url = old
    reader = MediaReader(url, _token)
    try:
        media = await reader.download("mxc://old.example/abc")
        assert (media.content, media.content_type, media.name) == (b"old bytes", "image/gif", "café.gif")
        assert reader.legacy
        await reader.download("mxc://old.example/abc")
    finally:
        await reader.close()
    paths = [path for path, _ in homeserver.seen]
    # v1 once (found out, then remembered), v3 twice; the token never goes to the old endpoint
    assert paths == [
        "/_matrix/client/v1/media/download/old.example/abc",
        "/_matrix/media/v3/download/old.example/abc",
        "/_matrix/media/v3/download/old.example/abc",
    ]
    assert homeserver.seen[0][1] == "Bearer syt_secret"
    assert [auth for _, auth in homeserver.seen[1:]] == [None, None]


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, '{"errcode": "M_NOT_FOUND", "error": "no media"}'), (403, '{"errcode": "M_FORBIDDEN", "error": "no"}')],
)
async def test_a_refusal_of_the_media_is_no_reason_to_fall_back(status: int, body: str) -> None:
    homeserver = OldHomeserver((status, body))
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", homeserver.handle)
    server = TestServer(app)
    await server.start_server()
    reader = MediaReader(str(server.make_url("")).rstrip("/"), _token)
    try:
        with pytest.raises(MediaUnavailable, match=str(status)):
            await reader.download("mxc://old.example/abc")
        assert not reader.legacy and len(homeserver.seen) == 1
    finally:
        await reader.close()
        await server.close()


@pytest.mark.parametrize(
    ("mxc", "expected"),
    [
        ("mxc://example.org/abc", ("example.org", "abc")),
        ("mxc://example.org/", None),
        ("mxc://example.org/a/b", None),
        ("https://example.org/abc", None),
        ("mxc:///abc", None),
    ],
)
def test_parse_mxc(mxc: str, expected: tuple[str, str] | None) -> None:
    assert parse_mxc(mxc) == expected
