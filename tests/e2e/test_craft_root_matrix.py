"""Who is this (CONTRACT §10), in Matrix: against a real Synapse, the thread's root shows what the visitor
searched for, their browser, OS and device, their local time and where they are — from a GeoIP database
built here with a maintained writer, else the country of their time zone — and a page change edits the
root (``m.replace``) instead of adding lines to the thread. ``test_craft_root.py`` is the Slack side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from tests.e2e import test_matrix_conversation as shared
from tests.e2e.test_matrix_conversation import MatrixSide
from tests.harness import BridgeFactory, Visitor

pytestmark = [pytest.mark.synapse, pytest.mark.asyncio(loop_scope="session")]
# the Matrix conversation tests' fixtures, in the session loop
make_bridge, matrix = shared.make_bridge, shared.matrix
Event = dict[str, Any]

CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
FROM_BING = {
    "url": "https://acme.example/widgets",
    "title": "Widgets",
    "referrer": "https://www.bing.com/search?q=blue+widgets&form=QBLH",
}


@pytest.fixture
def geoip_db(tmp_path: Path) -> Path:
    """A small GeoLite2 City database, as MaxMind's readers read it."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City", languages=["en"])
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}}, "city": {"names": {"en": "London"}}},
    )
    path = tmp_path / "GeoLite2-City-Test.mmdb"
    writer.to_db_file(str(path))
    return path


def lines(content: Event) -> dict[str, str]:
    """The root's ``Label: value`` lines as label → value."""
    found: dict[str, str] = {}
    for line in content["body"].splitlines()[1:]:
        label, sep, value = line.partition(": ")
        if sep:
            found[label] = value
    return found


async def start(visitor: Visitor, headers: dict[str, str], name: str = "Ann") -> None:
    status, payload, _ = await visitor.request(
        "POST",
        "/api/v1/sites/acme/conversations",
        {"visitor": {"name": name}, "page": FROM_BING, "locale": "de-DE", "timezone": "Europe/Berlin"},
        headers={**visitor.headers(), **headers},
    )
    assert status == 201, payload
    visitor.conversation_id, visitor.token = payload["conversation"]["id"], payload["token"]


def edits_of(matrix: MatrixSide, root: Event) -> list[Event]:
    """The bridge's edits of ``root``, oldest first."""
    return [
        e
        for e in matrix.staff.events
        if matrix.bridged(e)
        and e["content"].get("m.relates_to") == {"rel_type": "m.replace", "event_id": root["event_id"]}
    ]


async def test_the_matrix_root_says_who_this_is_and_follows_the_pages(
    make_bridge: BridgeFactory, matrix: MatrixSide, geoip_db: Path
) -> None:
    # the test client is 127.0.0.1: as a trusted proxy, its X-Forwarded-For names the visitor's address
    bridge = await make_bridge(**matrix.settings(), geoip_db=str(geoip_db), trusted_proxies="127.0.0.1")
    visitor = Visitor(bridge.url)
    try:
        await start(visitor, {"User-Agent": CHROME_ON_WINDOWS, "X-Forwarded-For": "81.2.69.160"})
        root = await matrix.root()
        shown = lines(root["content"])
        assert shown["Searched"] == "blue widgets"
        assert shown["Browser"] == "Chrome 120 · Windows 10 · Desktop"
        assert shown["Location"] == "London, United Kingdom"  # not "(from time zone)": GeoIP wins
        assert shown["Local time"].endswith("when the chat began") and "(UTC+0" in shown["Local time"]
        assert shown["Locale"] == "de-DE · Europe/Berlin"
        assert shown["Page"] == "Widgets — https://acme.example/widgets"
        assert shown["Came from"] == FROM_BING["referrer"]
        html = root["content"]["formatted_body"]
        assert "<em>Searched</em>: blue widgets" in html and "<em>Location</em>: London, United Kingdom" in html
        assert "81.2.69.160" not in json.dumps(root["content"])  # the address itself is nobody's business

        # a page change edits the root: the new page, the trail, and a search on the site itself
        live = await visitor.socket()
        await live.ws.send_json({"type": "page", "url": "https://acme.example/search?q=red+gadgets", "title": "Search"})
        first = await matrix.staff.wait_for(
            lambda e: e in edits_of(matrix, root) and "red gadgets" in e["content"]["m.new_content"]["body"],
            "the root edited to the site search",
        )
        now = lines(first["content"]["m.new_content"])
        assert now["Searched"] == "blue widgets · red gadgets"
        assert now["Page"] == "Search — https://acme.example/search?q=red+gadgets"
        assert now["Pages seen (2)"] == "Widgets → Search"
        assert now["Location"] == "London, United Kingdom" and now["Browser"] == shown["Browser"]
        assert first["content"]["m.mentions"] == {}  # an edit pings nobody
        assert first["content"]["body"].startswith("* Chat from Ann ")  # the fallback for clients without edits

        # the same page again is no change; the next one is the next edit
        await live.ws.send_json({"type": "page", "url": "https://acme.example/search?q=red+gadgets", "title": "Search"})
        await live.ws.send_json({"type": "page", "url": "https://acme.example/pricing", "title": "Pricing"})
        second = await matrix.staff.wait_for(
            lambda e: e in edits_of(matrix, root) and "Pages seen (3)" in e["content"]["m.new_content"]["body"],
            "the root edited to the pricing page",
        )
        assert lines(second["content"]["m.new_content"])["Pages seen (3)"] == "Widgets → Search → Pricing"
        assert len(edits_of(matrix, root)) == 2, "a page already shown edited the root again"
        # never a flood: nothing but the root and its edits, no line in the thread for a page
        others = [e for e in matrix.staff.messages_from(matrix.bot.user_id) if e is not root]
        assert others == edits_of(matrix, root)
        await live.close()
    finally:
        await visitor.close()


async def test_without_a_geoip_match_the_matrix_root_names_the_time_zones_country(
    make_bridge: BridgeFactory, matrix: MatrixSide, geoip_db: Path
) -> None:
    bridge = await make_bridge(**matrix.settings(), geoip_db=str(geoip_db), trusted_proxies="127.0.0.1")
    visitor = Visitor(bridge.url)
    try:
        await start(visitor, {"X-Forwarded-For": "192.0.2.7"}, name="Bea")  # an address the database does not know
        shown = lines((await matrix.root("Bea"))["content"])
        assert shown["Location"] == "Germany (from time zone)"
        assert shown["Searched"] == "blue widgets"
        assert "Browser" in shown  # aiohttp's own user agent, as it said
    finally:
        await visitor.close()
