"""What the bridge says to a visitor by itself, in the visitor's language, and personally.

The site's own texts (``GREETING``, ``AUTO_GREETING``, ``CLOSING``, each also per language) win over the
catalogue's defaults (``bridge/texts``). None of the defaults, in any language, asks anybody to wait
or hold on (``tests/unit/test_texts.py`` reads them all): they say what happens next instead.
"""

from __future__ import annotations

import math
import re

from bridge.texts import Text, text, translate
from config.sites import LocalText, SiteConfig

SITE_GREETING = text("greeting", "Hi! How can we help?")
AUTO_GREETING = text(
    "auto_greeting", "Hi {name}, thanks for reaching out to {site}. Someone from our team will be with you shortly."
)
# TRANSLATORS: {name} of the automatic greeting for a visitor who gave no name; "-" leaves the name out
FRIENDLY_NAME = text("auto_greeting.name", "there")
CLOSING = text("closing", "Thanks {name}! Come back any time.")
QUEUE_MINUTES = text("queue.minutes", "You're number {place} in line — we'll be with you in about {minutes} minutes.")
QUEUE_MINUTE = text("queue.minute", "You're number {place} in line — we'll be with you in about a minute.")
QUEUE_SOON = text("queue.soon", "You're number {place} in line — we'll be with you as soon as we can.")

#: every default the bridge may say to a visitor (the tests read each one in every language)
DEFAULTS: tuple[Text, ...] = (SITE_GREETING, AUTO_GREETING, CLOSING, QUEUE_MINUTES, QUEUE_MINUTE, QUEUE_SOON)

_PLACEHOLDER = re.compile(r"\{(name|site|place|minutes)\}")
#: ``{name}`` with what introduces it (``Danke, {name}!``), taken out when there is no name
_NAME_GAP = re.compile(r",?[ \t]*\{name\}")


def site_text(own: LocalText, default: Text, language: str) -> str:
    """The site's text for ``language``, else the catalogue's default in it."""
    return own.get(language) or translate(default, language)


def greeting(site: SiteConfig, language: str) -> str:
    """The first line the widget shows."""
    return site_text(site.own_text("greeting"), SITE_GREETING, language)


def auto_greeting(site: SiteConfig, language: str, visitor_name: str | None) -> str:
    """The greeting a visitor gets when nobody has answered a few seconds after their first message.
    Without a name, ``{name}`` is the language's friendly word ("Hi there, …")."""
    template = site_text(site.own_text("auto_greeting"), AUTO_GREETING, language)
    friendly = translate(FRIENDLY_NAME, language).strip()
    return fill(template, name=visitor_name or (None if friendly == "-" else friendly), site=site.name)


def closing(site: SiteConfig | None, language: str, visitor_name: str | None) -> str:
    """What ``!bye`` says; without a name, the name is left out ("Thanks! Come back any time.")."""
    own = site.own_text("closing") if site is not None else LocalText()
    return fill(site_text(own, CLOSING, language), name=visitor_name, site=site.name if site else "")


def queue_place(place: int, median_seconds: float | None, language: str) -> str:
    """The visitor's place among those waiting for a first answer, and about how long until theirs:
    the site's recent median first response, in whole minutes (rounded up; at least one)."""
    if median_seconds is None:
        return fill(translate(QUEUE_SOON, language), place=str(place))
    minutes = max(1, math.ceil(median_seconds / 60))
    entry = QUEUE_MINUTE if minutes == 1 else QUEUE_MINUTES
    return fill(translate(entry, language), place=str(place), minutes=str(minutes))


def fill(template: str, *, name: str | None = None, **values: str) -> str:
    """``{name}``, ``{site}``, ``{place}``, ``{minutes}`` filled in; other braces stay as the site wrote them.
    ``name=None`` takes ``{name}`` out with the comma or space before it."""
    if name is None:
        template = _NAME_GAP.sub("", template).lstrip(" ,")
    given = {**values, **({"name": name} if name is not None else {})}
    return _PLACEHOLDER.sub(lambda m: given.get(m.group(1), m.group(0)), template)
