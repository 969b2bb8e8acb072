"""Media from the real Synapse, read as the bot reads it: authenticated media with the access token
(``/_matrix/client/v1/media/download``); the old unauthenticated endpoint no longer serves it."""

from __future__ import annotations

import aiohttp
import pytest

from adapters.matrix.media import MediaReader, MediaTooLarge, MediaUnavailable
from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser
from tests.fakes.synapse import media_upload

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]

PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


async def test_media_is_read_through_authenticated_media(
    synapse: LocalSynapse, synapse_bot: RegisteredUser, synapse_staff: RegisteredUser
) -> None:
    mxc = await media_upload(synapse, synapse_staff.access_token, PICTURE, "avatar of Sam.png", "image/png")

    async def token() -> str:
        return synapse_bot.access_token

    reader = MediaReader(synapse.base_url, token)
    try:
        media = await reader.download(mxc)
        assert media.content == PICTURE and media.content_type == "image/png" and media.name == "avatar of Sam.png"
        assert not reader.legacy

        # what the bridge must not rely on: the old endpoint refuses media uploaded since
        server_and_id = mxc.removeprefix("mxc://")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{synapse.base_url}/_matrix/media/v3/download/{server_and_id}") as r:
                assert r.status == 404
            async with http.get(f"{synapse.base_url}/_matrix/client/v1/media/download/{server_and_id}") as r:
                assert r.status == 401  # and the new one wants the token

        with pytest.raises(MediaTooLarge):
            await reader.download(mxc, max_bytes=1000)
        with pytest.raises(MediaUnavailable, match="404 M_NOT_FOUND"):
            await reader.download("mxc://localhost/NoSuchMediaHere")
        assert not reader.legacy  # a missing file is no reason to fall back to the old endpoint
        with pytest.raises(MediaUnavailable, match="not an mxc"):
            await reader.download("https://example.org/x.png")
    finally:
        await reader.close()


async def test_media_wants_a_login(synapse: LocalSynapse, synapse_staff: RegisteredUser) -> None:
    mxc = await media_upload(synapse, synapse_staff.access_token, b"hello", "hello.txt", "text/plain")

    async def no_token() -> str | None:
        return None

    reader = MediaReader(synapse.base_url, no_token)
    try:
        with pytest.raises(MediaUnavailable, match="not logged in"):
            await reader.download(mxc)
    finally:
        await reader.close()
