"""The words the bridge says to visitors, in every language the widget speaks.

One catalogue for the widget and the bridge, in gettext's standard form: the English text stays in
the code, marked with a context (``text("closing", "Thanks {name}! …")`` here, ``t('widget.send',
'Send')`` in ``widget/src/texts.js``); ``sitechat.pot`` lists them all, and ``LANG/LC_MESSAGES/
sitechat.po`` translates them. Babel's ``pybabel`` keeps them in step and compiles each ``.po`` to the
``.mo`` beside it, which the standard library's ``gettext`` reads here (no Babel needed to speak);
``widget/build.mjs`` turns the ``widget.*`` entries of each ``.po`` into the widget's language packs.
``tests/unit/test_texts.py`` fails when any of these has fallen behind, and says what to run::

    .venv/bin/pybabel extract -F bridge/texts/babel.cfg -k text:1c,2 -k t:1c,2 -c TRANSLATORS: \\
        --no-location --omit-header --sort-output -o bridge/texts/sitechat.pot .
    .venv/bin/pybabel update -i bridge/texts/sitechat.pot -d bridge/texts -D sitechat --no-fuzzy-matching
    .venv/bin/pybabel compile -d bridge/texts -D sitechat

Extract from the repository's root (``.``): ``babel.cfg``'s patterns are relative to it, and an extract
that finds nothing would have ``update`` empty every ``.po``. Placeholders are ``{name}``-style and stay as
they are in every language.
"""

from __future__ import annotations

import gettext
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from config.sites import LANGUAGES

log = logging.getLogger(__name__)
DOMAIN = "sitechat"
LOCALE_DIR = Path(__file__).resolve().parent
__all__ = ["DOMAIN", "LANGUAGES", "LOCALE_DIR", "Text", "text", "translate"]


@dataclass(frozen=True)
class Text:
    """One entry of the catalogue: its context (what it is for) and its English text."""

    context: str
    english: str


def text(context: str, english: str) -> Text:
    """Mark a text for the catalogue (``pybabel extract -k text:1c,2`` finds each call)."""
    return Text(context, english)


@cache
def _catalogue(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
    except OSError:  # an install without the compiled catalogue: English beats no word at all
        log.error("the %s catalogue is missing in %s (pybabel compile): speaking English", language, LOCALE_DIR)
        return gettext.NullTranslations()


def translate(entry: Text, language: str) -> str:
    """``entry`` in ``language`` (English for a language the catalogue does not have, or an entry it
    has no translation of)."""
    if language not in LANGUAGES:
        return entry.english
    return _catalogue(language).pgettext(entry.context, entry.english)
