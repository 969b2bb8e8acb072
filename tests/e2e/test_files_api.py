"""Files through the widget API (CONTRACT §7), from a stranger's side: what is kept, what is refused, and
the signed links that serve it — the hostile cases included."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import aiohttp

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import RunningBridge, Visitor
from tests.images import png


async def test_a_screenshot_is_kept_sent_with_a_message_and_served_by_its_signed_link(
    slack_bridge: RunningBridge, visitor: Visitor
) -> None:
    await visitor.start()
    image = png()
    status, body = await visitor.upload(image, "shot.png", "application/octet-stream")  # the header is ignored
    assert status == 201, body
    file = body["attachment"]
    assert file["name"] == "shot.png" and file["size"] == len(image) and file["content_type"] == "image/png"
    status, sent = await visitor.say("", attachment_ids=[file["id"]])  # files alone: text may be empty
    assert status == 201, sent
    assert sent["message"]["text"] == "" and [a["id"] for a in sent["message"]["attachments"]] == [file["id"]]
    listed = (await visitor.messages())["messages"][-1]
    url = listed["attachments"][0]["url"]
    assert url.startswith(f"{slack_bridge.url}/api/v1/attachments/{file['id']}?exp=")
    status, data, headers = await visitor.download(url)
    assert status == 200 and data == image
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "sandbox"
    assert headers["Content-Disposition"].startswith("inline")


async def test_text_is_offered_as_a_download_never_shown_as_a_page(
    slack_bridge: RunningBridge, visitor: Visitor
) -> None:
    await visitor.start()
    status, body = await visitor.upload(b"order 1234\nthanks\n", "notes.txt", "text/plain")
    assert status == 201 and body["attachment"]["content_type"] == "text/plain"
    status, data, headers = await visitor.download(body["attachment"]["url"])
    assert status == 200 and data == b"order 1234\nthanks\n"
    assert headers["Content-Disposition"] == "attachment; filename*=UTF-8''notes.txt"


async def test_types_are_decided_from_the_bytes(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    await visitor.start()
    hostile = {
        "a .png that is HTML": (b"<!doctype html><script>alert(1)</script>", "cat.png", "image/png"),
        "an SVG with a script": (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>',
            "a.svg",
            "image/svg+xml",
        ),
        "an executable": (b"MZ\x90\x00" + b"\x00" * 200, "invoice.pdf", "application/pdf"),
        "a zip": (b"PK\x03\x04" + b"\x00" * 200, "photo.jpg", "image/jpeg"),
    }
    for what, (data, name, claimed) in hostile.items():
        status, body = await visitor.upload(data, name, claimed)
        assert status == 415, (what, status, body)
        assert body["error"]["code"] == "unsupported_type", what


async def test_a_polyglot_is_served_only_as_what_its_bytes_begin_with(
    slack_bridge: RunningBridge, visitor: Visitor
) -> None:
    """A GIF whose tail is a script: kept as an image, served with nosniff and a sandbox — never a page."""
    await visitor.start()
    polyglot = b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00;*/=1;alert(document.domain)//" + b"\x00" * 64
    status, body = await visitor.upload(polyglot, "x.html", "text/html")
    assert status == 201 and body["attachment"]["content_type"] == "image/gif"
    _, _, headers = await visitor.download(body["attachment"]["url"])
    assert headers["Content-Type"] == "image/gif" and headers["Content-Security-Policy"] == "sandbox"


async def test_too_large_is_refused_and_nothing_is_kept(make_bridge: BridgeFactory, fake_slack: FakeSlack) -> None:
    bridge = await make_bridge(fake_slack, upload_max_mb=0.25)
    v = Visitor(bridge.url)
    try:
        await v.start()
        status, body = await v.upload(png() + b"\x00" * 300_000)
        assert status == 413 and body["error"]["code"] == "too_large"
        # a declared length far beyond the limit is refused before the body is read
        async with v.session.post(
            f"{bridge.url}/api/v1/conversations/{v.conversation_id}/attachments",
            data=b"x" * 10,
            headers={**v.headers(), "Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(2**40)},
        ) as r:
            assert r.status == 413
        assert bridge.runtime is not None
        async with bridge.runtime.db.read() as conn:
            from sqlalchemy import func, select

            from bridge.store.tables import attachment, attachment_chunk

            assert (await conn.execute(select(func.count()).select_from(attachment))).scalar_one() == 0
            assert (await conn.execute(select(func.count()).select_from(attachment_chunk))).scalar_one() == 0
    finally:
        await v.close()


async def test_links_are_signed_expire_and_name_one_file(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    await visitor.start()
    _, first = await visitor.upload(png(), "a.png")
    _, second = await visitor.upload(png(3, 3), "b.png")
    url = first["attachment"]["url"]
    query = parse_qs(urlparse(url).query)
    expires, sig = int(query["exp"][0]), query["sig"][0]
    assert expires > time.time() + 23 * 3600
    base = f"{slack_bridge.url}/api/v1/attachments"
    tampered = {
        "another file, same signature": f"{base}/{second['attachment']['id']}?exp={expires}&sig={sig}",
        "a later expiry": f"{base}/{first['attachment']['id']}?exp={expires + 3600}&sig={sig}",
        "a changed signature": f"{base}/{first['attachment']['id']}?exp={expires}&sig={'0' * 64}",
        "no signature": f"{base}/{first['attachment']['id']}",
        "expired": f"{base}/{first['attachment']['id']}?exp=1000&sig={sig}",
    }
    for what, link in tampered.items():
        status, _, _ = await visitor.download(link)
        assert status == 403, what


async def test_another_conversations_file_cannot_be_sent(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    await visitor.start()
    _, mine = await visitor.upload(png())
    other = Visitor(slack_bridge.url)
    try:
        await other.start(name="Mallory")
        status, body = await other.say("look", attachment_ids=[mine["attachment"]["id"]])
        assert status == 403 and body["error"]["code"] == "forbidden"
        status, body = await other.say("look", attachment_ids=["no-such-file"])
        assert status == 403
        # and no upload without the conversation's token
        async with other.session.post(
            f"{slack_bridge.url}/api/v1/conversations/{visitor.conversation_id}/attachments",
            data=_form(b"x"),
            headers=other.headers(),
        ) as r:
            assert r.status == 403
    finally:
        await other.close()


def _form(data: bytes, field: str = "file") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(field, data, filename="x.png", content_type="image/png")
    return form


async def test_bad_forms_get_clear_errors(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    await visitor.start()
    path = f"/api/v1/conversations/{visitor.conversation_id}/attachments"
    status, body, _ = await visitor.request("POST", path, {"file": "not multipart"})
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    async with visitor.session.post(
        slack_bridge.url + path, data=_form(png(), "other"), headers=visitor.headers()
    ) as r:
        assert r.status == 422
    status, body = await visitor.upload(b"", "empty.png")
    assert status == 422 and body["error"]["code"] == "empty"


async def test_a_file_never_sent_is_forgotten_after_a_day(slack_bridge: RunningBridge, visitor: Visitor) -> None:
    from datetime import UTC, datetime, timedelta

    await visitor.start()
    _, kept = await visitor.upload(png(), "sent.png")
    _, dropped = await visitor.upload(png(3, 3), "never-sent.png")
    assert (await visitor.say("here", attachment_ids=[kept["attachment"]["id"]]))[0] == 201
    assert slack_bridge.runtime is not None and slack_bridge.runtime.widget.files is not None
    files = slack_bridge.runtime.widget.files
    assert await files.purge(datetime.now(UTC) - timedelta(hours=24)) == 0, "younger than a day: kept"
    assert await files.purge(datetime.now(UTC) + timedelta(seconds=1)) == 1, "only the one never sent"
    assert (await visitor.download(dropped["attachment"]["url"]))[0] == 404
    assert (await visitor.download(kept["attachment"]["url"]))[0] == 200

    async def once(data: bytes) -> AsyncIterator[bytes]:
        yield data

    # a report's picture waits for its post (a team chat may be down for days): kept a month, then gone
    report = await files.save(once(png()), name="report.png", origin="report", any_type=True)
    assert await files.purge(datetime.now(UTC) + timedelta(days=2)) == 0
    assert await files.purge(datetime.now(UTC) + timedelta(days=32)) == 1
    assert await files.find(report.id) is None
