"""Files and faces on the Matrix side, without a network: the events a file becomes, what a staff member's
file event says (name, caption, key), encrypted files read as they stream, and faces as the widget gets them."""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nio.crypto.attachments import encrypt_attachment

from adapters.matrix.avatars import kept_face
from adapters.matrix.files import (
    FileCorrupt,
    SharedFile,
    decrypted,
    file_content,
    image_size,
    not_posted_content,
    outbound_msgtype,
    shared_file,
)
from adapters.matrix.format import file_caption, staff_message
from bridge.faces import face_attachment, stored_face
from bridge.model import Attachment, Participant, Role
from tests import images
from widget_server.answers import Author


def png(width: int, height: int) -> bytes:
    return images.png(width, height, b"\x00\x00\xff")


JPEG = (
    b"\xff\xd8"  # start of image
    + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"  # APP0, 16 bytes
    + b"\xff\xc0\x00\x11\x08\x00\x1e\x00\x28\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"  # SOF0: 30 high, 40 wide
)
GIF = b"GIF89a" + struct.pack("<HH", 7, 9) + b"\x00" * 10
WEBP_VP8X = (
    b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00"
    + (99).to_bytes(3, "little")
    + (49).to_bytes(3, "little")
)


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (png(3, 5), (3, 5)),
        (JPEG, (40, 30)),
        (GIF, (7, 9)),
        (WEBP_VP8X, (100, 50)),
        (b"%PDF-1.7", None),
        (b"\xff\xd8\xff", None),  # a JPEG cut short
        (b"", None),
    ],
)
def test_image_size_from_the_header(data: bytes, size: tuple[int, int] | None) -> None:
    assert image_size(data) == size


# -- out: the event a file becomes ------------------------------------------------------------------


def test_a_picture_is_an_image_event_with_its_name_size_and_no_mentions() -> None:
    data = png(4, 2)
    file = Attachment("a1", "@room screenshot.png", len(data), "image/png")
    content = file_content(file, data, url="mxc://hs.example/abc")
    assert content == {
        "msgtype": "m.image",
        "body": "@room screenshot.png",
        "filename": "@room screenshot.png",  # the same as body: a name, not a caption
        "info": {"mimetype": "image/png", "size": len(data), "w": 4, "h": 2},
        "url": "mxc://hs.example/abc",
        "m.mentions": {},
    }


def test_anything_else_is_a_file_event_and_encrypted_files_carry_their_key_not_a_url() -> None:
    data = b"%PDF-1.7 invoice"
    file = Attachment("a2", "invoice.pdf", len(data), "application/pdf")
    keys = {"v": "v2", "key": {"k": "x"}, "iv": "y", "hashes": {"sha256": "z"}, "url": "mxc://hs.example/enc"}
    content = file_content(file, data, encrypted=keys)
    assert content["msgtype"] == "m.file" and content["info"] == {"mimetype": "application/pdf", "size": len(data)}
    assert content["file"] == keys and "url" not in content
    kinds = ("image/webp", "image/svg+xml", "text/plain")
    assert [outbound_msgtype(t) for t in kinds] == ["m.image", "m.file", "m.file"]  # SVG is never shown inline
    notice = not_posted_content(file, "too large")
    assert notice["msgtype"] == "m.notice" and notice["m.mentions"] == {} and "invoice.pdf" in notice["body"]


# -- in: what a staff member's file event says ------------------------------------------------------

CAPTIONS: list[tuple[dict[str, Any], str | None]] = [
    ({"msgtype": "m.image", "body": "pic.png"}, None),  # no filename: body is the name
    ({"msgtype": "m.image", "body": "pic.png", "filename": "pic.png"}, None),  # the same: still the name
    ({"msgtype": "m.image", "body": "Look at this", "filename": "pic.png"}, "Look at this"),  # MSC2530
    ({"msgtype": "m.file", "body": "  ", "filename": "a.pdf"}, None),
    ({"msgtype": "m.file", "body": "caption", "filename": ""}, None),
]


@pytest.mark.parametrize(("content", "caption"), CAPTIONS)
def test_the_caption_rule(content: dict[str, Any], caption: str | None) -> None:
    assert file_caption(content) == caption
    # what the visitor reads with the file: the caption alone, never a link to the homeserver
    assert staff_message({**content, "url": "mxc://hs.example/x"})[0] == (caption or "")


def test_a_formatted_caption_keeps_its_formatting() -> None:
    content = {
        "msgtype": "m.image",
        "body": "**see** this",
        "filename": "pic.png",
        "format": "org.matrix.custom.html",
        "formatted_body": "<strong>see</strong> this",
        "url": "mxc://hs.example/x",
    }
    assert staff_message(content) == ("see this", "<strong>see</strong> this")


def test_a_shared_file_names_itself_and_where_it_is() -> None:
    plain = {"msgtype": "m.image", "body": "Look", "filename": "pic.png", "url": "mxc://hs/x", "info": {"size": 12}}
    assert shared_file(plain) == SharedFile("mxc://hs/x", "pic.png", 12)
    assert shared_file({"msgtype": "m.audio", "body": "memo.ogg", "url": "mxc://hs/y"}) == SharedFile(
        "mxc://hs/y", "memo.ogg"
    )
    assert shared_file({"msgtype": "m.text", "body": "hi", "url": "mxc://hs/x"}) is None
    assert shared_file({"msgtype": "m.file", "body": "a", "url": "https://hs/x"}) is None  # no mxc, no key
    assert shared_file({"msgtype": "m.file", "body": "a", "info": {"size": True}, "url": "mxc://hs/x"}) == SharedFile(
        "mxc://hs/x", "a"
    )


def test_an_encrypted_file_is_found_with_its_key() -> None:
    _, keys = encrypt_attachment(b"secret")
    shared = shared_file({"msgtype": "m.file", "body": "s.txt", "file": {**keys, "url": "mxc://hs/e"}})
    assert shared is not None and shared.mxc == "mxc://hs/e" and shared.key is not None
    assert len(shared.key.key) == 32 and len(shared.key.iv) == 16
    broken = {**keys, "url": "mxc://hs/e", "key": {**keys["key"], "alg": "A128CBC"}}
    assert shared_file({"msgtype": "m.file", "body": "s.txt", "file": broken}) is None
    assert shared_file({"msgtype": "m.file", "body": "s.txt", "file": {"url": "mxc://hs/e"}}) is None


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_an_encrypted_file_is_decrypted_as_it_streams_and_checked_at_the_end() -> None:
    plaintext = bytes(range(256)) * 1000
    ciphertext, keys = encrypt_attachment(plaintext)
    shared = shared_file({"msgtype": "m.file", "body": "b.bin", "file": {**keys, "url": "mxc://hs/e"}})
    assert shared is not None and shared.key is not None
    out = b"".join([p async for p in decrypted(_pieces(ciphertext, 7777), shared.key)])
    assert out == plaintext

    tampered = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    with pytest.raises(FileCorrupt):
        _ = [p async for p in decrypted(_pieces(tampered, 4096), shared.key)]


# -- faces ----------------------------------------------------------------------------------------


def test_a_kept_face_is_found_only_for_the_same_avatar() -> None:
    stored = json.dumps({"mxc": "mxc://hs/face1", "id": "abc"})
    assert kept_face(stored, "mxc://hs/face1") == "abc"
    assert kept_face(stored, "mxc://hs/face2") is None  # they changed their avatar: read the new one
    assert kept_face(None, "mxc://hs/face1") is None
    assert kept_face("not json", "mxc://hs/face1") is None


def test_the_widget_gets_a_kept_face_as_a_signed_link_and_never_the_stored_form() -> None:
    assert face_attachment(stored_face("abc")) == "abc"
    assert face_attachment("https://avatars.slack-edge.com/a.png") is None

    def link(file: Attachment) -> str:
        return f"https://chat.example/api/v1/attachments/{file.id}?exp=1&sig=00"

    alice = Participant(Role.AGENT, "Alice", stored_face("abc"), "matrix:@alice:hs")
    assert Author.of(alice, link).avatar_url == "https://chat.example/api/v1/attachments/abc?exp=1&sig=00"
    assert Author.of(alice).dump() == {"role": "agent", "name": "Alice"}  # no signer: no face, never "attachment:"
    slack = Participant(Role.AGENT, "Bob", "https://avatars.slack-edge.com/b.png")
    assert Author.of(slack, link).avatar_url == "https://avatars.slack-edge.com/b.png"
    assert Author.of(Participant(Role.AGENT, "Eve", "attachment:"), link).avatar_url is None
