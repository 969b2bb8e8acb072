"""Who is this (CONTRACT §10): the thread's root in Slack shows what the visitor searched for, their browser,
OS and device, their local time and where they are — from the GeoIP database when there is one (built
here with a maintained writer), else the country of their time zone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from tests.conftest import BridgeFactory
from tests.fakes.slack_api import FakeSlack
from tests.harness import Visitor, root_of

CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
FROM_BING = {
    "url": "https://acme.example/widgets",
    "title": "Widgets",
    "referrer": "https://www.bing.com/search?q=blue+widgets&form=QBLH",
}


def fields(root: dict[str, Any]) -> dict[str, str]:
    """The root's section fields as label → value."""
    found: dict[str, str] = {}
    for block in root["blocks"]:
        for field in block.get("fields", ()):
            label, _, value = field["text"].partition("\n")
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


async def test_the_root_says_what_they_searched_which_browser_and_where_from_the_time_zone(
    make_bridge: BridgeFactory, fake_slack: FakeSlack
) -> None:
    bridge = await make_bridge(fake_slack)
    visitor = Visitor(bridge.url)
    try:
        await start(visitor, {"User-Agent": CHROME_ON_WINDOWS})
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        shown = fields(root)
        assert shown["Searched"] == "blue widgets"
        assert shown["Browser"] == "Chrome 120 · Windows 10 · Desktop"
        assert "Chrome" in shown["Browser"] and "Windows" in shown["Browser"]
        assert shown["Location"] == "Germany (from time zone)"
        assert shown["Local time"].endswith("when the chat began") and "(UTC+0" in shown["Local time"]
        assert shown["Locale"] == "de-DE · Europe/Berlin"

        # a search on the site itself joins the words the root shows when the visitor moves on
        live = await visitor.socket()
        await live.ws.send_json({"type": "page", "url": "https://acme.example/search?q=red+gadgets", "title": "Search"})
        await fake_slack.wait_for(
            lambda: "red gadgets" in fields(fake_slack.message("C0SUPPORT", root["ts"])).get("Searched", ""),
            message="the root updated with the site search",
        )
        assert fields(fake_slack.message("C0SUPPORT", root["ts"]))["Searched"] == "blue widgets · red gadgets"
        await live.close()
    finally:
        await visitor.close()


@pytest.fixture
def geoip_db(tmp_path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City", languages=["en"])
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}}, "city": {"names": {"en": "London"}}},
    )
    path = tmp_path / "GeoLite2-City-Test.mmdb"
    writer.to_db_file(str(path))
    return path


async def test_the_root_says_country_and_city_from_the_geoip_database(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, geoip_db: Path
) -> None:
    # the test client is 127.0.0.1: as a trusted proxy, its X-Forwarded-For names the visitor's address
    bridge = await make_bridge(fake_slack, geoip_db=str(geoip_db), trusted_proxies="127.0.0.1")
    assert bridge.runtime is not None
    bridge.runtime.widget.geoip_db = bridge.settings.widget.geoip_db  # see the next test
    visitor = Visitor(bridge.url)
    try:
        await start(visitor, {"User-Agent": CHROME_ON_WINDOWS, "X-Forwarded-For": "81.2.69.160"})
        root = await fake_slack.wait_for(lambda: root_of(fake_slack), message="the thread root")
        assert fields(root)["Location"] == "London, United Kingdom"  # not "(from time zone)": GeoIP wins

        # an address the database does not know: the time zone's country again
        other = Visitor(bridge.url)
        try:
            await start(other, {"X-Forwarded-For": "192.0.2.7"}, name="Bea")
            bea = await fake_slack.wait_for(lambda: root_of(fake_slack, visitor="Bea"), message="Bea's root")
            assert fields(bea)["Location"] == "Germany (from time zone)"
            assert "Browser" in fields(bea)  # aiohttp's own user agent, as it said
        finally:
            await other.close()
        assert "81.2.69.160" not in json.dumps(root["blocks"])
    finally:
        await visitor.close()


async def test_the_geoip_setting_reaches_the_widget_server(
    make_bridge: BridgeFactory, fake_slack: FakeSlack, geoip_db: Path
) -> None:
    """SITECHAT_GEOIP_DB is read with the settings; the composition root hands it to the widget server."""
    bridge = await make_bridge(fake_slack, geoip_db=str(geoip_db))
    assert bridge.runtime is not None
    assert bridge.settings.widget.geoip_db == geoip_db
    assert bridge.runtime.widget.geoip_db == geoip_db, (
        "sitechat/runtime.py: WidgetContext(..., geoip_db=widget.geoip_db)"
    )
