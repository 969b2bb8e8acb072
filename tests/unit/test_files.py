"""The pure parts of files (CONTRACT §7): the type from the bytes, the name people see, the signed link."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.files import link_signature, link_valid, safe_name, sniff
from bridge.model import Attachment
from bridge.transcript import file_line, human_size
from tests.images import png

# the file's first bytes → the type it is kept and served as
SNIFFED: dict[str, tuple[bytes, str]] = {
    "a PNG": (png(1, 1), "image/png"),
    "a JPEG": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32, "image/jpeg"),
    "a GIF": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"),
    "a WebP": (b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32, "image/webp"),
    "a PDF": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf"),
    "plain text": (b"Order 1234, please.\nThanks!", "text/plain"),
    "UTF-8 text with accents": ("Grüße, 你好 👋".encode(), "text/plain"),
    "text with a BOM": (b"\xef\xbb\xbfhello", "text/plain"),
    "a multi-byte character cut at the sample's end": (b"a" * 8190 + "é".encode()[:1], "text/plain"),
    "HTML": (b"<!DOCTYPE html><html><body>hi</body></html>", "text/html"),
    "HTML after blank lines and a BOM": (b"\xef\xbb\xbf\n\n  <html>", "text/html"),
    "a bare script tag": (b"<script>alert(1)</script>", "text/html"),
    "HTML in upper case": (b"<HTML><BODY>", "text/html"),
    "an SVG": (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
    "an SVG after an XML declaration": (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        "image/svg+xml",
    ),
    "other XML": (b'<?xml version="1.0"?><order/>', "text/xml"),
    "a GIF whose tail is a script (a polyglot)": (b"GIF89a/*\x00\x00*/=1;alert(1)//", "image/gif"),
    "a Windows executable": (b"MZ\x90\x00\x03" + b"\x00" * 64, "application/x-msdownload"),
    "a ZIP": (b"PK\x03\x04\x14\x00" + b"\x00" * 64, "application/zip"),
    "binary with NUL bytes": (b"\x00\x01\x02\x03garbage", "application/octet-stream"),
    "bytes that are no UTF-8": (b"\xff\xfe\xfa text", "application/octet-stream"),
    "nothing": (b"", "text/plain"),
}


@pytest.mark.parametrize(("head", "expected"), SNIFFED.values(), ids=SNIFFED.keys())
def test_the_type_comes_from_the_bytes(head: bytes, expected: str) -> None:
    assert sniff(head) == expected


NAMES: dict[str, tuple[str | None, str]] = {
    "a plain name": ("screenshot.png", "screenshot.png"),
    "a path is cut to its last part": ("../../etc/passwd", "passwd"),
    "a Windows path": ("C:\\Users\\ann\\x.pdf", "x.pdf"),
    "a path ending in a slash": ("photos/", "file"),
    "control characters": ("a\x00b\nc.txt", "a_b_c.txt"),
    "no name": (None, "file"),
    "only dots": ("...", "file"),
    "composed and decomposed accents are one name": ("Cafe\u0301.png", "Café.png"),
    "a very long name keeps its end (the extension)": ("x" * 300 + ".png", "x" * 196 + ".png"),
}


@pytest.mark.parametrize(("given_name", "expected"), NAMES.values(), ids=NAMES.keys())
def test_names_are_safe_to_show_and_save(given_name: str | None, expected: str) -> None:
    assert safe_name(given_name) == expected


@given(st.text(max_size=400))
def test_a_safe_name_has_no_path_and_no_control_characters(name: str) -> None:
    cleaned = safe_name(name)
    assert cleaned and len(cleaned) <= 200
    assert not any(c in cleaned for c in "/\\") and all(ord(c) >= 32 and c != "\x7f" for c in cleaned)


KEY = b"k" * 32


def test_a_link_is_good_until_it_expires_and_only_as_signed() -> None:
    sig = link_signature(KEY, "abc", 2000)
    assert link_valid(KEY, "abc", 2000, sig, now=1999)
    assert link_valid(KEY, "abc", 2000, sig.upper(), now=2000)
    assert not link_valid(KEY, "abc", 2000, sig, now=2001), "expired"
    assert not link_valid(KEY, "abd", 2000, sig, now=1), "another file"
    assert not link_valid(KEY, "abc", 3000, sig, now=1), "a later expiry"
    assert not link_valid(b"x" * 32, "abc", 2000, sig, now=1), "another key"


@given(st.text(min_size=1, max_size=64), st.integers(0, 2**40), st.text(min_size=1, max_size=64))
def test_no_other_id_shares_a_signature(aid: str, expires: int, other: str) -> None:
    if other != aid:
        assert not link_valid(KEY, other, expires, link_signature(KEY, aid, expires), now=0)


SIZES = {0: "0 B", 1023: "1023 B", 1024: "1.0 KB", 4300: "4.2 KB", 1_572_864: "1.5 MB"}


@pytest.mark.parametrize(("size", "shown"), SIZES.items(), ids=[str(s) for s in SIZES])
def test_sizes_as_people_read_them(size: int, shown: str) -> None:
    assert human_size(size) == shown


def test_the_transcript_lists_a_file_by_name() -> None:
    assert file_line(Attachment("a1", "invoice.pdf", 52_000, "application/pdf")) == "[file: invoice.pdf, 50.8 KB]"


def test_stored_files_come_back_and_bad_rows_are_left_out() -> None:
    one = Attachment("a1", "x.png", 3, "image/png")
    assert Attachment.from_stored([one.stored(), {"id": "x"}, "junk"]) == (one,)
    assert Attachment.from_stored(None) == ()
