"""Who the visitor is, as the thread's root shows it beside CONTRACT §5's fields (CONTRACT §10): what
they searched for, their browser, their local time, and where they are. Pure: both adapters render the
same ``(label, value)`` lines from a ``Conversation``.

- **Searched**: the words of a search engine's or the site's own search, from the first page's referrer
  and the pages' URLs (``q``, ``query``, ``p``, ``s``, ``search``, ``text``, ``wd``).
- **Browser**: browser, OS and device, as the widget server read them from the ``User-Agent`` at the start.
- **Local time**: the visitor's clock when the chat began, from the browser's time zone.
- **Location**: city and country from the GeoIP database (``SITECHAT_GEOIP_DB``) when the widget server
  has one; else the country of the browser's time zone, marked "(from time zone)", from the tz database's
  own ``zone.tab`` (shipped with ``tzdata``). Either way the country is named from its ISO code by CLDR
  (Babel), in the root's language: one name for one country, whichever source found it.

The root is the team's, so it speaks the team's language. Every label, hint and state on it is English
and nothing sets another, so ``ROOT_LANGUAGE`` is English; the functions take the language to name
countries in, for the day the team's language becomes a setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from importlib import resources
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from bridge.model import ClientFacts, Conversation

#: the query parameters search engines (Google, Bing: q; Yahoo: p; Yandex: text; Baidu: wd) and site
#: searches (WordPress: s) put the words in
SEARCH_PARAMETERS = ("q", "query", "p", "s", "search", "text", "wd")
MAX_SEARCHES = 3
MAX_WORDS = 100
#: the longest tz database name is 32 characters
MAX_ZONE = 64
#: the language the thread's root names countries in: the team's (see above)
ROOT_LANGUAGE = "en"


def visitor_facts(conv: Conversation, language: str = ROOT_LANGUAGE) -> list[tuple[str, str]]:
    """The visitor's context as (label, value) lines, in reading order; what is not known is left out.
    Countries are named in ``language``."""
    facts: list[tuple[str, str]] = []
    searched = searched_words(conv)
    if searched:
        facts.append(("Searched", " · ".join(searched)))
    browser = browser_line(conv.client)
    if browser:
        facts.append(("Browser", browser))
    local = local_time(conv)
    if local:
        facts.append(("Local time", local))
    where = location(conv, language)
    if where:
        facts.append(("Location", where))
    return facts


def searched_words(conv: Conversation) -> list[str]:
    """The searches the visitor came from or made on the site, oldest first, each once."""
    first = conv.pages[0] if conv.pages else None
    urls = [first.referrer if first else None, *(p.url for p in conv.pages)]
    found: list[str] = []
    for words in (search_words(url) for url in urls if url):
        if words and words not in found:
            found.append(words)
    return found[-MAX_SEARCHES:]


def search_words(url: str) -> str | None:
    """``https://www.bing.com/search?q=blue+widgets`` → ``blue widgets``; None without a search in it.
    A number is no search (``?p=2`` is a page), nor is a URL (a redirect's target)."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    values = dict(parse_qsl(query, keep_blank_values=False))
    for name in SEARCH_PARAMETERS:
        words = " ".join(values.get(name, "").split())
        if words and not words.isdigit() and "://" not in words:
            return words[:MAX_WORDS]
    return None


def browser_line(client: ClientFacts) -> str | None:
    """``Chrome 120 · Windows 10 · Desktop``, with what is known of it."""
    return " · ".join(p for p in (client.browser, client.os, client.device) if p) or None


def local_time(conv: Conversation) -> str | None:
    """``14:05 (UTC+01:00) when the chat began``, in the browser's time zone."""
    zone = _zone(conv.timezone)
    if zone is None:
        return None
    local = conv.created_at.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%a %H:%M} (UTC{offset[:3]}:{offset[3:]}) when the chat began"


def location(conv: Conversation, language: str = ROOT_LANGUAGE) -> str | None:
    """``Berlin, Germany`` from GeoIP, else ``Germany (from time zone)``; the country in ``language``."""
    client = conv.client
    # the database's own name stays for a code CLDR does not name (and conversations stored without a code)
    country = (country_name(client.country_code, language) if client.country_code else None) or client.country
    if country:
        return ", ".join(p for p in (client.city, country) if p)
    country = country_of_zone(conv.timezone, language) if conv.timezone else None
    return f"{country} (from time zone)" if country else None


def country_of_zone(zone: str, language: str = ROOT_LANGUAGE) -> str | None:
    """The country a tz database zone is in (``Europe/Berlin`` → ``Germany``; in German ``Deutschland``),
    old names too."""
    code = zone_country_code(zone)
    return country_name(code, language) if code else None


def zone_country_code(zone: str) -> str | None:
    """The ISO 3166 code of the country a tz database zone is in (``Europe/Berlin`` → ``DE``), old names too."""
    name = zone.strip()
    zones = _zone_countries()
    return zones.get(name) or zones.get(_zone_links().get(name, ""))


def country_name(code: str, language: str = ROOT_LANGUAGE) -> str | None:
    """A country by its ISO 3166-1 alpha-2 code in ``language`` (CLDR's names, by Babel): ``DE`` →
    ``Germany``, ``Deutschland``, ``Allemagne``, ``Alemania``. English for a language CLDR does not have;
    None for what is not a country's code (``ZZ``, ``001``, ``XX``)."""
    code = code.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha() or code == UNKNOWN_REGION:
        return None
    return _territories(language).get(code)


def _zone(name: str | None) -> ZoneInfo | None:
    if not name or len(name) > MAX_ZONE or name.startswith("/") or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name no file system takes
        return None


def _tz_lines(name: str) -> Iterable[list[str]]:
    """The lines of a file of the tz database as ``tzdata`` ships it, split at tabs, comments left out."""
    try:
        content = resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return []
    return [line.split("\t") for line in content.splitlines() if line and not line.startswith("#")]


@cache
def _zone_countries() -> dict[str, str]:
    """Zone → ISO 3166 code, from ``zone.tab`` (one country per zone, where ``zone1970.tab`` lists several)."""
    return {cols[2]: cols[0] for cols in _tz_lines("zone.tab") if len(cols) >= 3}


#: CLDR's code for "Unknown Region": a code, but no country
UNKNOWN_REGION = "ZZ"


@lru_cache(maxsize=16)  # a few languages, ever
def _territories(language: str) -> Mapping[str, str]:
    """CLDR's names of regions in ``language`` (``de``, ``de-AT``, ``de_AT``); English for one it does not have."""
    try:
        return Locale.parse(language.replace("-", "_")).territories
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse(ROOT_LANGUAGE).territories


@cache
def _zone_links() -> dict[str, str]:
    """Old zone names → current ones (``Asia/Calcutta`` → ``Asia/Kolkata``): the ``L`` lines of ``tzdata.zi``."""
    links: dict[str, str] = {}
    for cols in _tz_lines("tzdata.zi"):
        parts = cols[0].split()
        if len(parts) == 3 and parts[0] == "L":
            links[parts[2]] = parts[1]
    return links
