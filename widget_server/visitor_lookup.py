"""What the widget server finds out about a visitor when a conversation starts (CONTRACT §10): browser,
OS and device from the ``User-Agent`` (ua-parser), country and city from the client address with a
GeoLite2/GeoIP2 City database (``SITECHAT_GEOIP_DB``, geoip2), and the language to speak (Babel's
negotiation over what the browser prefers). The core gets plain values (``bridge.model.ClientFacts``)
and renders them (``bridge.visitor_context``).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from pathlib import Path

import geoip2.database
import geoip2.errors
import ua_parser
from babel import negotiate_locale

from bridge.model import ClientFacts
from config.sites import LANGUAGES

log = logging.getLogger(__name__)

MAX_USER_AGENT = 500
MAX_FACT = 100
#: ua-parser's names of the systems of computers: a browser on one is on a desktop
DESKTOP_SYSTEMS = frozenset({"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "FreeBSD", "OpenBSD"})
#: languages a browser names at most (``navigator.languages``, ``Accept-Language``)
MAX_PREFERENCES = 10


class VisitorLookup:
    """Reads a user agent and a client address; the GeoIP database is opened at the first lookup.
    Blocking (the database is a file): call it in a thread."""

    def __init__(self, geoip_db: Path | None = None) -> None:
        self.made_for = geoip_db
        #: None once it turned out unreadable (said once in the log)
        self.geoip_db = geoip_db
        self._reader: geoip2.database.Reader | None = None
        self._lock = threading.Lock()

    def client_facts(self, user_agent: str | None, address: str | None) -> ClientFacts:
        browser, system, device = describe_user_agent(user_agent)
        code, country, city = self.locate(address)
        return ClientFacts(browser=browser, os=system, device=device, country=country, city=city, country_code=code)

    def locate(self, address: str | None) -> tuple[str | None, str | None, str | None]:
        """(country code, country, city) of a public address in the database: ``("GB", "United Kingdom",
        "London")``; (None, None, None) for anything else."""
        reader = self._open()
        if reader is None or not address or not _public(address):
            return None, None, None
        try:
            found = reader.city(address)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None, None, None
        return _country_code(found.country.iso_code), _short(found.country.name), _short(found.city.name)

    def _open(self) -> geoip2.database.Reader | None:
        if self.geoip_db is None:
            return None
        with self._lock:
            if self._reader is None:
                try:
                    self._reader = geoip2.database.Reader(str(self.geoip_db), locales=["en"])
                except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: maxminddb's InvalidDatabaseError
                    log.error("SITECHAT_GEOIP_DB %s cannot be read (%s): no locations", self.geoip_db, exc)
                    self.geoip_db = None
                    return None
            return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def describe_user_agent(user_agent: str | None) -> tuple[str | None, str | None, str | None]:
    """(browser, OS, device): ``("Chrome 120", "Windows 10", "Desktop")``; None for what is not known."""
    if not user_agent:
        return None, None, None
    parsed = ua_parser.parse(user_agent[:MAX_USER_AGENT])
    agent, system, device = parsed.user_agent, parsed.os, parsed.device
    browser = _short(f"{agent.family} {agent.major or ''}".strip()) if agent and agent.family != "Other" else None
    os_name = _short(f"{system.family} {system.major or ''}".strip()) if system and system.family != "Other" else None
    if device and device.family not in ("Other", "Generic Feature Phone"):
        kind = _short(device.family)
    elif system and system.family in DESKTOP_SYSTEMS:
        kind = "Desktop"
    else:
        kind = None
    return browser, os_name, kind


def visitor_language(locale: str | None, accept_language: str | None) -> str | None:
    """The first language the browser prefers that we speak: from the ``locale`` the widget sends
    (``navigator.languages``, comma-separated), else the ``Accept-Language`` header; None: no match."""
    for preferences in (_listed(locale), _accepted(accept_language)):
        found = negotiate_locale(preferences[:MAX_PREFERENCES], list(LANGUAGES), sep="-") if preferences else None
        if found:
            return found.split("-", 1)[0].lower()
    return None


def _listed(locale: str | None) -> list[str]:
    return [part.strip().replace("_", "-") for part in (locale or "").split(",") if part.strip()]


def _accepted(header: str | None) -> list[str]:
    """``de-DE,de;q=0.9,en;q=0.8`` → the tags in order of preference."""
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate((header or "").split(",")[:MAX_PREFERENCES]):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*" and q > 0:
            weighted.append((-q, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def _public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def _short(value: str | None) -> str | None:
    return value[:MAX_FACT] if value else None


def _country_code(value: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code as the database has it; anything else is no code."""
    return value.upper() if value and len(value) == 2 and value.isascii() and value.isalpha() else None
