"""Who the visitor is (CONTRACT §10), as tables: the facts the core renders for both adapters' roots, and
what the widget server reads from a user agent, an address (a GeoIP database built here with a
maintained writer) and the browser's languages."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from adapters.matrix.format import root_content
from adapters.slack import blocks
from bridge.model import ClientFacts, Conversation, ConversationId, PageView, Status, Visitor
from bridge.visitor_context import _zone_countries, country_name, country_of_zone, search_words, visitor_facts
from widget_server.visitor_lookup import VisitorLookup, describe_user_agent, visitor_language

CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)
FIREFOX_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _conversation(**kw: Any) -> Conversation:
    values: dict[str, Any] = dict(
        id=ConversationId("c1"),
        site_id="acme",
        topic=None,
        status=Status.OPEN,
        visitor=Visitor("Ann"),
        created_at=NOW,
        last_activity_at=NOW,
    )
    values.update(kw)
    return Conversation(**values)


# -- what they searched for --------------------------------------------------------------------------

SEARCHES: dict[str, str | None] = {
    "https://www.bing.com/search?q=blue+widgets&form=QBLH": "blue widgets",
    "https://www.google.com/search?q=blue%20widgets": "blue widgets",
    "https://search.yahoo.com/search?p=folding+bike": "folding bike",
    "https://yandex.ru/search/?text=велосипед": "велосипед",
    "https://www.baidu.com/s?wd=自行车": "自行车",
    "https://duckduckgo.com/?q=  many   spaces  ": "many spaces",
    "https://acme.example/?s=mudguards": "mudguards",
    "https://acme.example/search?query=rack&page=2": "rack",
    "https://acme.example/help?search=returns": "returns",
    "https://acme.example/blog?p=2": None,  # a page number, not words
    "https://t.example/r?q=https://acme.example/": None,  # a redirect's target
    "https://www.google.com/": None,  # Google no longer says what was searched
    "https://acme.example/pricing": None,
    "not a url at all": None,
}


@pytest.mark.parametrize("url", list(SEARCHES))
def test_search_words(url: str) -> None:
    assert search_words(url) == SEARCHES[url]


def test_searches_from_the_referrer_and_the_sites_own_search_each_once() -> None:
    conv = _conversation(
        pages=(
            PageView("https://acme.example/", "Home", "https://www.bing.com/search?q=blue+widgets"),
            PageView("https://acme.example/search?q=blue+widgets", "Search"),
            PageView("https://acme.example/search?q=red+gadgets", "Search"),
        )
    )
    assert dict(visitor_facts(conv))["Searched"] == "blue widgets · red gadgets"


# -- browser, OS, device -------------------------------------------------------------------------------

AGENTS: dict[str, tuple[str | None, str | None, str | None]] = {
    CHROME_ON_WINDOWS: ("Chrome 120", "Windows 10", "Desktop"),
    SAFARI_ON_IPHONE: ("Mobile Safari 17", "iOS 17", "iPhone"),
    FIREFOX_ON_LINUX: ("Firefox 128", "Linux", "Desktop"),
    "curl/8.5.0": ("curl 8", None, None),
    "": (None, None, None),
    "\x00" * 10_000: (None, None, None),
}


@pytest.mark.parametrize("agent", list(AGENTS), ids=["chrome", "iphone", "firefox", "curl", "none", "junk"])
def test_user_agents(agent: str) -> None:
    assert describe_user_agent(agent) == AGENTS[agent]


# -- where they are --------------------------------------------------------------------------------------

ZONES = {
    "Europe/Berlin": "Germany",
    "Asia/Calcutta": "India",  # an old name: the tz database's link to Asia/Kolkata
    "America/Argentina/Buenos_Aires": "Argentina",
    "Europe/Copenhagen": "Denmark",
    "UTC": None,
    "Etc/GMT+2": None,
    "Mars/Olympus_Mons": None,
}


@pytest.mark.parametrize("zone", list(ZONES))
def test_country_of_a_time_zone(zone: str) -> None:
    assert country_of_zone(zone) == ZONES[zone]


#: (code, language) → CLDR's name; the root speaks English (ROOT_LANGUAGE), the names serve any language
COUNTRY_NAMES: dict[tuple[str, str], str | None] = {
    ("DE", "en"): "Germany",
    ("DE", "de"): "Deutschland",
    ("DE", "fr"): "Allemagne",
    ("DE", "es"): "Alemania",
    ("GB", "en"): "United Kingdom",  # not the tz database's "Britain (UK)"
    ("GB", "de"): "Vereinigtes Königreich",
    ("US", "fr"): "États-Unis",
    ("KR", "es"): "Corea del Sur",
    ("de", "en"): "Germany",  # codes in any case
    ("DE", "de-AT"): "Deutschland",  # a regional tag: its language's names
    ("DE", "de_AT"): "Deutschland",
    ("DE", "xx"): "Germany",  # a language CLDR does not have: English
    ("DE", ""): "Germany",
    ("ZZ", "en"): None,  # CLDR's "Unknown Region"
    ("001", "en"): None,  # "World": a region, not a country
    ("XX", "en"): None,
    ("", "en"): None,
    ("Germany", "en"): None,
}


@pytest.mark.parametrize(("code", "language"), list(COUNTRY_NAMES))
def test_country_names_in_a_language(code: str, language: str) -> None:
    assert country_name(code, language) == COUNTRY_NAMES[code, language]


INDIA = {"en": "India", "de": "Indien", "fr": "Inde", "es": "India"}


@pytest.mark.parametrize("language", list(INDIA))
def test_every_time_zones_country_has_a_name_in_every_language(language: str) -> None:
    unnamed = sorted({code for code in _zone_countries().values() if not country_name(code, language)})
    assert not unnamed
    assert country_of_zone("Asia/Calcutta", language) == INDIA[language]  # an old zone name, too


@pytest.fixture
def geoip_db(tmp_path: Path) -> Path:
    """A small GeoIP2 City database, as MaxMind's readers read it."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City", languages=["en"])
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}}, "city": {"names": {"en": "London"}}},
    )
    writer.insert_network(IPSet(["2a02:8100::/32"]), {"country": {"iso_code": "DE", "names": {"en": "Germany"}}})
    path = tmp_path / "GeoIP2-City-Test.mmdb"
    writer.to_db_file(str(path))
    return path


NOWHERE = (None, None, None)
ADDRESSES: dict[str | None, tuple[str | None, str | None, str | None]] = {
    "81.2.69.160": ("GB", "United Kingdom", "London"),
    "2a02:8100::1": ("DE", "Germany", None),
    "8.8.8.8": NOWHERE,  # not in this database
    "127.0.0.1": NOWHERE,  # not a public address: never looked up
    "10.1.2.3": NOWHERE,
    "unknown": NOWHERE,
    None: NOWHERE,
}


@pytest.mark.parametrize("address", list(ADDRESSES))
def test_where_an_address_is(geoip_db: Path, address: str | None) -> None:
    assert VisitorLookup(geoip_db).locate(address) == ADDRESSES[address]


def test_without_a_database_nobody_is_located(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert VisitorLookup(None).locate("81.2.69.160") == NOWHERE
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"not a database")
    lookup = VisitorLookup(broken)
    with caplog.at_level(logging.ERROR):
        assert lookup.locate("81.2.69.160") == NOWHERE
        assert lookup.locate("81.2.69.161") == NOWHERE
    assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1


LOCATIONS: dict[str, tuple[ClientFacts, str | None, str | None]] = {
    "GeoIP city and country": (
        ClientFacts(country="United Kingdom", city="London", country_code="GB"),
        "Europe/Berlin",
        "London, United Kingdom",
    ),
    "GeoIP country": (ClientFacts(country="Germany", country_code="DE"), None, "Germany"),
    "CLDR's name over the database's": (ClientFacts(country="Czech Republic", country_code="CZ"), None, "Czechia"),
    "a code CLDR does not name: the database's": (ClientFacts(country="Nowhere", country_code="XX"), None, "Nowhere"),
    "stored before there were codes": (ClientFacts(country="Germany", city="Köln"), None, "Köln, Germany"),
    "the time zone's country": (ClientFacts(), "Europe/Berlin", "Germany (from time zone)"),
    "the time zone's, by CLDR": (ClientFacts(), "Europe/London", "United Kingdom (from time zone)"),
    "nothing to go by": (ClientFacts(), "UTC", None),
}


@pytest.mark.parametrize("case", list(LOCATIONS))
def test_location_prefers_geoip_over_the_time_zone(case: str) -> None:
    client, zone, expected = LOCATIONS[case]
    assert dict(visitor_facts(_conversation(client=client, timezone=zone))).get("Location") == expected


#: only the country follows the language: the marker, like every label, is the root's (ROOT_LANGUAGE, English)
LOCATIONS_IN: dict[str, tuple[str, str]] = {
    "en": ("London, United Kingdom", "Germany (from time zone)"),
    "de": ("London, Vereinigtes Königreich", "Deutschland (from time zone)"),
    "fr": ("London, Royaume-Uni", "Allemagne (from time zone)"),
    "es": ("London, Reino Unido", "Alemania (from time zone)"),
}


@pytest.mark.parametrize("language", list(LOCATIONS_IN))
def test_location_names_the_country_in_a_language(language: str) -> None:
    geoip = _conversation(client=ClientFacts(country="United Kingdom", city="London", country_code="GB"))
    zone = _conversation(timezone="Europe/Berlin")
    found = (dict(visitor_facts(c, language)).get("Location") for c in (geoip, zone))
    assert tuple(found) == LOCATIONS_IN[language]


def test_local_time_when_the_chat_began() -> None:
    facts = dict(visitor_facts(_conversation(timezone="Europe/Berlin")))
    assert facts["Local time"] == "Wed 14:00 (UTC+02:00) when the chat began"
    assert "Local time" not in dict(visitor_facts(_conversation(timezone="../../etc/passwd")))
    assert "Local time" not in dict(visitor_facts(_conversation(timezone="x" * 5000)))


# -- the languages ---------------------------------------------------------------------------------------

LANGUAGES: dict[tuple[str | None, str | None], str | None] = {
    ("de-DE", None): "de",
    ("nl-NL, de, en-US", None): "de",  # navigator.languages, in order
    ("nl", "nl;q=0.9,fr-CA;q=0.8,en;q=0.5"): "fr",  # the locale says nothing we speak: Accept-Language
    (None, "es-MX,es;q=0.9"): "es",
    ("pt-BR", "pt"): None,
    (None, "*"): None,
    ("EN-gb", "de"): "en",
}


@pytest.mark.parametrize(("locale", "accept"), list(LANGUAGES))
def test_the_visitors_language(locale: str | None, accept: str | None) -> None:
    assert visitor_language(locale, accept) == LANGUAGES[locale, accept]


# -- both roots show the same facts ------------------------------------------------------------------------


def test_both_roots_show_who_this_is() -> None:
    conv = _conversation(
        timezone="Europe/Berlin",
        locale="de-DE",
        pages=(PageView("https://acme.example/", "Home", "https://www.bing.com/search?q=blue+widgets"),),
        client=ClientFacts(browser="Chrome 120", os="Windows 10", device="Desktop"),
    )
    expected = [
        ("Searched", "blue widgets"),
        ("Browser", "Chrome 120 · Windows 10 · Desktop"),
        ("Local time", "Wed 14:00 (UTC+02:00) when the chat began"),
        ("Location", "Germany (from time zone)"),
    ]
    assert visitor_facts(conv) == expected
    slack_fields = [f["text"] for b in blocks.root_blocks(conv, "Acme", None) for f in b.get("fields", ())]
    matrix_body = root_content(conv, "Acme", None)["body"]
    for label, value in expected:
        assert f"{label}\n{value}" in slack_fields
        assert f"{label}: {value}" in matrix_body
