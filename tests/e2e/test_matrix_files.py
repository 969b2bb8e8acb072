"""Files between the widget and Matrix staff, against the real Synapse (CONTRACT §7, §8, §11).

The visitor's file reaches the thread as an ``m.image``/``m.file`` uploaded to the homeserver's media
repository (encrypted in an encrypted room); a staff member's file reaches the widget as an attachment
the bridge fetched with its own token and serves through its signed link; a staff member's face is the
bridge's copy of their avatar. Nothing the browser gets names the homeserver or an ``mxc://`` URI.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import nio
import pytest
import pytest_asyncio
from nio.crypto.attachments import decrypt_attachment

from adapters.matrix.format import thread_relation
from sitechat.demo.local_homeserver import LocalSynapse, RegisteredUser
from tests import images
from tests.fakes.synapse import EncryptingClient, media_upload, new_bot, new_user, room_timeline
from tests.harness import BridgeFactory, Visitor, bridge_factory

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]

Event = dict[str, Any]
STAFF_NAME = "Sam Staff"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png(width: int = 2, height: int = 2) -> bytes:
    return images.png(width, height, b"\x20\x80\xc0")


@pytest_asyncio.fixture(loop_scope="session")
async def make_bridge(sqlite_url: str) -> AsyncIterator[BridgeFactory]:
    async with bridge_factory(sqlite_url) as make:
        yield make


# -- a staff member's client, reduced to what these tests need ---------------------------------------


class Staff:
    def __init__(self, hs: LocalSynapse, user: RegisteredUser, room_id: str) -> None:
        self.hs = hs
        self.user = user
        self.client = nio.AsyncClient(hs.base_url, user.user_id)
        self.client.restore_login(user.user_id, user.device_id, user.access_token)
        self.room_id = room_id
        self.events: list[Event] = []

    async def sync(self, timeout_ms: int = 300) -> None:
        response = await self.client.sync(timeout=timeout_ms, sync_filter={"room": {"timeline": {"limit": 500}}})
        assert isinstance(response, nio.SyncResponse), response
        room = response.rooms.join.get(self.room_id)
        if room is not None:
            self.events.extend(e.source for e in room.timeline.events)

    async def wait_for(self, predicate: Callable[[Event], bool], what: str, timeout: float = 15.0) -> Event:
        try:
            async with asyncio.timeout(timeout):
                while not (found := [e for e in self.events if predicate(e)]):
                    await self.sync()
                return found[0]
        except TimeoutError:
            raise AssertionError(f"no {what}") from None

    async def send(self, content: Event) -> str:
        response = await self.client.room_send(self.room_id, "m.room.message", content, tx_id=secrets.token_hex(8))
        assert isinstance(response, nio.RoomSendResponse), response
        return str(response.event_id)

    async def close(self) -> None:
        await self.client.close()


async def media_download(hs: LocalSynapse, token: str, mxc: str) -> bytes:
    """As a staff member's client reads media: authenticated, with their token."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{hs.base_url}/_matrix/client/v1/media/download/{mxc.removeprefix('mxc://')}",
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return await r.read()


async def set_avatar(hs: LocalSynapse, user: RegisteredUser, mxc: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{hs.base_url}/_matrix/client/v3/profile/{quote(user.user_id, safe='')}/avatar_url",
            json={"avatar_url": mxc},
            headers={"Authorization": f"Bearer {user.access_token}"},
        ) as r,
    ):
        assert r.status == 200, await r.text()


def in_thread(root: Event, bot: str, msgtype: str) -> Callable[[Event], bool]:
    def match(e: Event) -> bool:
        relation = e["content"].get("m.relates_to") or {}
        return (
            e["type"] == "m.room.message"
            and e["sender"] == bot
            and e["content"].get("msgtype") == msgtype
            and relation.get("rel_type") == "m.thread"
            and relation.get("event_id") == root["event_id"]
        )

    return match


def root_of(bot: str, visitor: str = "Ann") -> Callable[[Event], bool]:
    return lambda e: (
        e["type"] == "m.room.message"
        and e["sender"] == bot
        and "m.relates_to" not in e["content"]
        and e["content"]["body"].startswith(f"Chat from {visitor} ")
    )


async def staffed_room(hs: LocalSynapse, *, encrypted: bool = False) -> tuple[RegisteredUser, RegisteredUser, str]:
    """The bot, a staff member and the support room they are both in (end-to-end encrypted if asked)."""
    bot = await new_bot(hs)
    person = await new_user(hs, "staff", displayname=STAFF_NAME)
    if encrypted:  # key exchange takes more requests than the default limits allow
        await hs.lift_ratelimit(bot.access_token, person.user_id)
    room_id = await hs.create_room(bot.access_token, name="Website chat", invite=[person.user_id], encrypted=encrypted)
    await hs.join(person.access_token, room_id)
    return bot, person, room_id


def settings(hs: LocalSynapse, bot: RegisteredUser, room_id: str, store: Path) -> dict[str, Any]:
    return {
        "matrix_homeserver": hs.base_url,
        "matrix_user_id": bot.user_id,
        "matrix_password": bot.password,
        "matrix_store_path": str(store),
        "first_response_alert_seconds": 3600,  # no reminders among the events counted here
        "site": {"matrix_room": room_id, "topics": {}},
    }


def no_team_chat_address(answer: Any, hs: LocalSynapse) -> None:
    text = json.dumps(answer)
    assert "mxc://" not in text and hs.base_url not in text and "attachment:" not in text, text


# -- an ordinary room ----------------------------------------------------------------------------


async def test_files_both_ways_and_the_staff_face_through_the_bridge(
    make_bridge: BridgeFactory, synapse: LocalSynapse, tmp_path: Path
) -> None:
    bot, person, room_id = await staffed_room(synapse)
    staff = Staff(synapse, person, room_id)
    face = png(120, 120)
    avatar = await media_upload(synapse, person.access_token, face, "sam.png", "image/png")
    await set_avatar(synapse, person, avatar)
    # the room knows the new face before the bridge first syncs it
    await staff.wait_for(
        lambda e: e["type"] == "m.room.member" and e["content"].get("avatar_url") == avatar, "the avatar in the room"
    )
    bridge = await make_bridge(**settings(synapse, bot, room_id, tmp_path / "store"))
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await staff.wait_for(root_of(bot.user_id), "the thread root")

        # the visitor's screenshot, after the words sent with it, as a real image in the thread
        shot = png(3, 2)
        await visitor.send_file(shot, "screen-shot.png", "Here is my screen")
        image = await staff.wait_for(in_thread(root, bot.user_id, "m.image"), "the visitor's image")
        line = await staff.wait_for(in_thread(root, bot.user_id, "m.text"), "the visitor's words")
        assert line["content"]["body"] == "Ann: Here is my screen"
        assert staff.events.index(line) < staff.events.index(image)
        content = image["content"]
        assert content["body"] == "screen-shot.png" and content["m.mentions"] == {}
        assert content["info"] == {"mimetype": "image/png", "size": len(shot), "w": 3, "h": 2}
        assert await media_download(synapse, person.access_token, content["url"]) == shot

        # a file sent alone goes without an empty line before it
        await visitor.send_file(PDF, "order.pdf")
        order = await staff.wait_for(in_thread(root, bot.user_id, "m.file"), "the visitor's PDF")
        assert order["content"]["body"] == "order.pdf"
        assert await media_download(synapse, person.access_token, order["content"]["url"]) == PDF
        assert [e["content"]["body"] for e in staff.events if in_thread(root, bot.user_id, "m.text")(e)] == [
            "Ann: Here is my screen"
        ]

        # staff share files: a note's file stays in the team; a file with a caption reaches the visitor
        live = await visitor.socket(after=0)
        relation = thread_relation(root["event_id"], root["event_id"])
        secret = await media_upload(synapse, person.access_token, b"internal numbers", "internal.txt", "text/plain")
        await staff.send(
            {"msgtype": "m.file", "body": "// for us only", "filename": "internal.txt", "url": secret}
            | {"m.relates_to": relation}
        )
        quote_mxc = await media_upload(synapse, person.access_token, PDF, "quote.pdf", "application/pdf")
        await staff.send(
            {
                "msgtype": "m.file",
                "body": "Your quote",
                "filename": "quote.pdf",
                "url": quote_mxc,
                "info": {"mimetype": "application/pdf", "size": len(PDF)},
                "m.relates_to": relation,
            }
        )
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
        message = frame["message"]
        assert message["text"] == "Your quote" and message["author"]["name"] == STAFF_NAME
        [file] = message["attachments"]
        assert file["name"] == "quote.pdf" and file["content_type"] == "application/pdf" and file["size"] == len(PDF)
        assert file["url"].startswith(f"{bridge.url}/api/v1/attachments/")
        status, body, headers = await visitor.download(file["url"])
        assert status == 200 and body == PDF and headers["Content-Type"] == "application/pdf"

        # "Sam Staff joined the chat", with their face: the bridge's signed link to its copy
        joined = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "system")
        face_url = joined["message"]["author"]["avatar_url"]
        assert face_url.startswith(f"{bridge.url}/api/v1/attachments/") and "sig=" in face_url
        status, picture, headers = await visitor.download(face_url)
        assert status == 200 and headers["Content-Type"] in ("image/png", "image/jpeg")
        assert picture.startswith((b"\x89PNG", b"\xff\xd8"))
        await live.close()

        answer = await visitor.messages()
        no_team_chat_address(answer, synapse)
        agents = [m for m in answer["messages"] if m["author"]["role"] == "agent"]
        assert [m["text"] for m in agents] == ["Your quote"]  # the note's file never reached the visitor
        assert agents[0]["author"]["avatar_url"].startswith(f"{bridge.url}/api/v1/attachments/")
    finally:
        await visitor.close()
        await staff.close()


async def test_a_staff_file_too_large_is_told_to_the_thread_and_its_caption_still_goes(
    make_bridge: BridgeFactory, synapse: LocalSynapse, tmp_path: Path
) -> None:
    bot, person, room_id = await staffed_room(synapse)
    staff = Staff(synapse, person, room_id)
    # files of at most ~1 KB
    bridge = await make_bridge(**settings(synapse, bot, room_id, tmp_path / "store"), upload_max_mb=0.001)
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await staff.wait_for(root_of(bot.user_id), "the thread root")
        live = await visitor.socket(after=0)
        big = await media_upload(synapse, person.access_token, PDF * 100, "manual.pdf", "application/pdf")
        await staff.send(
            {
                "msgtype": "m.file",
                "body": "The manual, attached",
                "filename": "manual.pdf",
                "url": big,
                "m.relates_to": thread_relation(root["event_id"], root["event_id"]),
            }
        )
        notice = await staff.wait_for(in_thread(root, bot.user_id, "m.notice"), "the notice")
        assert notice["content"]["body"].startswith(f"manual.pdf from {STAFF_NAME} was not passed on to the visitor")
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
        assert frame["message"]["text"] == "The manual, attached" and "attachments" not in frame["message"]
        await live.close()
    finally:
        await visitor.close()
        await staff.close()


# -- an encrypted room ---------------------------------------------------------------------------


async def test_files_in_an_encrypted_room_are_encrypted_both_ways(
    make_bridge: BridgeFactory, synapse: LocalSynapse, tmp_path: Path
) -> None:
    bot, person, room_id = await staffed_room(synapse, encrypted=True)
    staff = EncryptingClient(synapse, person, room_id, tmp_path / "staff-store")
    await staff.sync(timeout_ms=0)
    bridge = await make_bridge(**settings(synapse, bot, room_id, tmp_path / "store"))
    visitor = Visitor(bridge.url)
    try:
        await visitor.start(name="Ann")
        root = await staff.wait_for(root_of(bot.user_id), "the thread root")

        shot = png(5, 4)
        await visitor.send_file(shot, "screen.png")
        image = await staff.wait_for(in_thread(root, bot.user_id, "m.image"), "the visitor's image")
        encrypted = image["content"]["file"]
        assert "url" not in image["content"] and image["content"]["info"]["mimetype"] == "image/png"
        ciphertext = await media_download(synapse, person.access_token, encrypted["url"])
        assert ciphertext != shot  # the homeserver holds only ciphertext
        plain = decrypt_attachment(ciphertext, encrypted["key"]["k"], encrypted["hashes"]["sha256"], encrypted["iv"])
        assert plain == shot

        # the staff member's encrypted PDF, decrypted by the bridge for the visitor
        live = await visitor.socket(after=0)
        response, keys = await staff.client.upload(
            io.BytesIO(PDF), content_type="application/pdf", filename="quote.pdf", encrypt=True, filesize=len(PDF)
        )
        assert isinstance(response, nio.UploadResponse) and keys is not None, response
        await staff.send(
            {
                "msgtype": "m.file",
                "body": "quote.pdf",
                "file": {**keys, "url": response.content_uri},
                "info": {"mimetype": "application/pdf", "size": len(PDF)},
                "m.mentions": {},
                "m.relates_to": thread_relation(root["event_id"], root["event_id"]),
            }
        )
        frame = await live.wait_frame(lambda f: f["type"] == "message" and f["message"]["author"]["role"] == "agent")
        [file] = frame["message"]["attachments"]
        assert frame["message"]["text"] == "" and file["name"] == "quote.pdf"
        status, body, _ = await visitor.download(file["url"])
        assert status == 200 and body == PDF
        await live.close()
        no_team_chat_address(await visitor.messages(), synapse)

        # as the homeserver stores it: nothing of the bot's in the clear
        raw = await room_timeline(synapse, person.access_token, room_id)
        assert not [e for e in raw if e["sender"] == bot.user_id and e["type"] == "m.room.message"]
    finally:
        await visitor.close()
        await staff.close()


async def test_the_reports_picture_is_an_image_in_the_room_itself(
    make_bridge: BridgeFactory, synapse: LocalSynapse, tmp_path: Path
) -> None:
    """``sitechat report --post`` / the weekly schedule (CONTRACT §9): an ``m.image`` in the room, in no thread."""
    from datetime import UTC, datetime

    from bridge.report_posts import post_report

    bot, person, room_id = await staffed_room(synapse)
    staff = Staff(synapse, person, room_id)
    bridge = await make_bridge(**settings(synapse, bot, room_id, tmp_path / "store"))
    try:
        assert bridge.runtime is not None and bridge.runtime.widget.files is not None
        picture = png(16, 10)
        queued = await post_report(
            bridge.runtime.widget.files,
            {"matrix": room_id},
            picture,
            name="sitechat-report-acme.png",
            text="Acme — last 7 days",
            now=datetime.now(UTC),
        )
        assert queued
        bridge.runtime.worker.wake()
        image = await staff.wait_for(
            lambda e: (
                e["type"] == "m.room.message"
                and e["sender"] == bot.user_id
                and e["content"].get("msgtype") == "m.image"
            ),
            "the report's picture",
        )
        assert "m.relates_to" not in image["content"], "in the room, not in a thread"
        assert image["content"]["info"]["mimetype"] == "image/png"
        assert await media_download(synapse, person.access_token, image["content"]["url"]) == picture
        await bridge.wait_idle()
        await staff.sync()
        images = [e for e in staff.events if e["sender"] == bot.user_id and e["content"].get("msgtype") == "m.image"]
        assert len(images) == 1
        said = [
            e
            for e in staff.events
            if e["sender"] == bot.user_id and "Acme — last 7 days" in e["content"].get("body", "")
        ]
        assert said, "the numbers beside the picture"
    finally:
        await staff.close()
