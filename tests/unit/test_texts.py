"""The catalogue (``bridge/texts``): complete in every language, in step with the code, and never asking a
visitor to wait; the site's own texts per language, read from real environment variables."""

from __future__ import annotations

import gettext
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bridge import greeting
from bridge.texts import LOCALE_DIR, Text, translate
from config.loading import ConfigError, load_settings
from config.sites import LANGUAGES, SiteConfig

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]
KEYWORDS = {"text": ((1, "c"), 2), "t": ((1, "c"), 2)}
METHODS = [("bridge/**.py", "python"), ("widget/src/**.js", "javascript")]
#: what brings a catalogue up to date (bridge/texts/__init__.py)
REFRESH = (
    "run: .venv/bin/pybabel extract -F bridge/texts/babel.cfg -k text:1c,2 -k t:1c,2 -c TRANSLATORS: "
    "--no-location --omit-header --sort-output -o bridge/texts/sitechat.pot . && .venv/bin/pybabel update "
    "-i bridge/texts/sitechat.pot -d bridge/texts -D sitechat --no-fuzzy-matching, translate, then "
    ".venv/bin/pybabel compile -d bridge/texts -D sitechat"
)


def _po(language: str) -> Catalog:
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "sitechat.po", "rb") as file:
        return read_po(file)


def _template() -> Catalog:
    with open(LOCALE_DIR / "sitechat.pot", "rb") as file:
        return read_po(file)


def _entries(catalog: Catalog) -> dict[tuple[str | None, str], str]:
    return {(m.context, str(m.id)): str(m.string) for m in catalog if m.id}


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


# -- the catalogue is whole and current ------------------------------------------------------------


def test_the_template_lists_every_text_marked_in_the_code() -> None:
    found = {
        (context, message)
        for _file, _line, message, _comments, context in extract_from_dir(ROOT, METHODS, keywords=KEYWORDS)
    }
    assert found == set(_entries(_template())), REFRESH


def test_the_catalogue_speaks_the_languages_the_settings_know() -> None:
    on_disk = sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES" / "sitechat.po").is_file())
    assert ["en", *on_disk] == ["en", *sorted(TRANSLATED)]


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_text_is_translated_with_its_placeholders(language: str) -> None:
    template, catalog = _entries(_template()), _po(language)
    assert set(_entries(catalog)) == set(template), REFRESH
    for message in catalog:
        if not message.id:
            continue
        assert message.string and not message.fuzzy, (language, message.context, message.id)
        assert _placeholders(str(message.string)) == _placeholders(str(message.id)), (language, message.context)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogue_is_the_po_file(language: str) -> None:
    """The .mo the bridge reads (stdlib gettext) says what the .po says."""
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "sitechat.mo", "rb") as file:
        compiled = gettext.GNUTranslations(file)
    for (context, english), translated in _entries(_po(language)).items():
        assert compiled.pgettext(context or "", english) == translated, (language, context, REFRESH)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_widgets_reader_of_po_files_reads_what_babel_reads(language: str) -> None:
    """widget/catalogue.mjs builds the packs the widget fetches: the same entries as Babel finds."""
    node = shutil.which("node")
    assert node, "node is needed (make node)"
    script = (
        "import { packOf } from './widget/catalogue.mjs';"
        f"process.stdout.write(JSON.stringify(await packOf({json.dumps(language)})));"
    )
    out = subprocess.run([node, "--input-type=module", "-e", script], cwd=ROOT, capture_output=True, check=True)
    expected = {
        str(m.context).removeprefix("widget."): str(m.string)
        for m in _po(language)
        if m.id and m.context and m.context.startswith("widget.")
    }
    assert json.loads(out.stdout) == expected


# -- no default text asks anybody to wait ------------------------------------------------------------

#: the words (and stems) that ask for patience, in each language; every text is checked against all of them
WAITING_WORDS = {
    "en": ["wait", "hold", "patience", "patient", "moment"],
    "de": ["warte", "warten", "wartezeit", "geduld", "moment", "augenblick"],
    "fr": ["attend", "attente", "patien", "moment", "instant"],
    "es": ["esper", "paciencia", "momento", "aguard"],
}
_WAITING = re.compile("|".join(sorted({w for words in WAITING_WORDS.values() for w in words})), re.IGNORECASE)


def _every_default_text() -> list[tuple[str, str, str]]:
    """(language, context, text) for every entry of the catalogue in every language."""
    texts = [("en", str(ctx), english) for (ctx, english) in _entries(_template())]
    for language in TRANSLATED:
        texts += [(language, str(ctx), text) for (ctx, _english), text in _entries(_po(language)).items()]
    return texts


@pytest.mark.parametrize(("language", "context", "text"), _every_default_text())
def test_no_default_text_asks_to_wait(language: str, context: str, text: str) -> None:
    assert not _WAITING.search(text), f"{language} {context}: {text!r}"


def test_the_bridges_defaults_are_in_the_catalogue() -> None:
    entries = _entries(_template())
    for entry in greeting.DEFAULTS:
        assert (entry.context, entry.english) in entries


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_text_is_said_in_the_language_asked(language: str) -> None:
    said = translate(greeting.CLOSING, language)
    assert (said == greeting.CLOSING.english) == (language == "en")
    assert translate(Text("no.such.entry", "Hello"), language) == "Hello"
    assert translate(greeting.CLOSING, "nl") == greeting.CLOSING.english


# -- filling in the visitor ---------------------------------------------------------------------------

SITE = SiteConfig(name="Acme", origins=["https://acme.example"], slack_channel="C0")

# (language, visitor's name) → the automatic greeting
GREETINGS = {
    ("en", "Ann"): "Hi Ann, thanks for reaching out to Acme. Someone from our team will be with you shortly.",
    ("en", None): "Hi there, thanks for reaching out to Acme. Someone from our team will be with you shortly.",
    ("de", None): "Hallo und willkommen, vielen Dank für Ihre Nachricht an Acme. Gleich ist jemand aus unserem "
    "Team für Sie da.",
    ("fr", "Ann"): "Bonjour Ann, merci d’avoir contacté Acme. Un membre de notre équipe vous répond très vite.",
    ("es", None): "Hola, gracias por contactar con Acme. Enseguida le atiende alguien de nuestro equipo.",
}


@pytest.mark.parametrize(("language", "name"), list(GREETINGS))
def test_the_automatic_greeting_is_personal(language: str, name: str | None) -> None:
    assert greeting.auto_greeting(SITE, language, name) == GREETINGS[language, name]


# (language, visitor's name) → the closing of !bye
CLOSINGS = {
    ("en", "Ann"): "Thanks Ann! Come back any time.",
    ("en", None): "Thanks! Come back any time.",
    ("de", None): "Danke! Schauen Sie gerne jederzeit wieder vorbei.",
    ("es", "Ann"): "¡Gracias, Ann! Vuelva cuando quiera.",
    ("es", None): "¡Gracias! Vuelva cuando quiera.",
}


@pytest.mark.parametrize(("language", "name"), list(CLOSINGS))
def test_the_closing_leaves_out_a_name_it_does_not_know(language: str, name: str | None) -> None:
    assert greeting.closing(SITE, language, name) == CLOSINGS[language, name]


# (place, median first response in seconds, language) → what the visitor is told
PLACES = {
    (3, 95.0, "en"): "You're number 3 in line — we'll be with you in about 2 minutes.",
    (3, 20.0, "en"): "You're number 3 in line — we'll be with you in about a minute.",
    (6, None, "en"): "You're number 6 in line — we'll be with you as soon as we can.",
    (3, 95.0, "de"): "Sie sind Nummer 3 in der Reihe — in etwa 2 Minuten sind wir für Sie da.",
    (4, 600.0, "fr"): "Vous êtes numéro 4 dans la file — nous sommes à vous dans 10 minutes environ.",
    (2, None, "es"): "Es el número 2 en la cola: le atendemos lo antes posible.",
}


@pytest.mark.parametrize(("place", "median", "language"), list(PLACES))
def test_the_place_in_line_and_an_estimate(place: int, median: float | None, language: str) -> None:
    assert greeting.queue_place(place, median, language) == PLACES[place, median, language]


def test_a_sites_own_braces_stay_as_written() -> None:
    assert greeting.fill("{site} says {hello} to {name}", name="Ann", site="Acme") == "Acme says {hello} to Ann"


# -- a site's own texts, per language, from real environment variables --------------------------------


def test_a_text_for_every_language_and_one_per_language_side_by_side(env: pytest.MonkeyPatch) -> None:
    env.setenv("SITECHAT_SITES__ACME__GREETING__DE", "Hallo! Was dürfen wir für Sie tun?")
    env.setenv("SITECHAT_SITES__ACME__GREETING", "Hello from Acme!")
    env.setenv("SITECHAT_SITES__ACME__AUTO_GREETING__FR", "Bonjour {name}, bienvenue chez {site}.")
    env.setenv("SITECHAT_SITES__ACME__CLOSING__ES", "¡Hasta pronto, {name}!")
    env.setenv("SITECHAT_SITES__ACME__AUTO_GREETING_SECONDS", "2.5")
    env.setenv("SITECHAT_SITES__ACME__MAX_WAITING", "3")
    site = load_settings().sites["acme"]
    assert greeting.greeting(site, "de") == "Hallo! Was dürfen wir für Sie tun?"
    assert greeting.greeting(site, "en") == greeting.greeting(site, "fr") == "Hello from Acme!"
    assert greeting.auto_greeting(site, "fr", "Ann") == "Bonjour Ann, bienvenue chez Acme."
    assert greeting.auto_greeting(site, "en", "Ann").startswith("Hi Ann, thanks for reaching out to Acme.")
    assert greeting.closing(site, "es", "Ann") == "¡Hasta pronto, Ann!"
    assert greeting.closing(site, "de", "Ann") == "Danke, Ann! Schauen Sie gerne jederzeit wieder vorbei."
    assert (site.auto_greeting_seconds, site.max_waiting, site.language) == (2.5, 3, None)


def test_defaults_of_the_craft(env: pytest.MonkeyPatch) -> None:
    site = load_settings().sites["acme"]
    assert (site.auto_greeting_seconds, site.max_waiting, site.invite_after_seconds, site.invite_pages) == (
        10,
        5,
        0,
        [],
    )
    assert greeting.greeting(site, "de") == "Hallo! Wie können wir helfen?"


def test_the_site_language_and_the_invitation(env: pytest.MonkeyPatch) -> None:
    env.setenv("SITECHAT_SITES__ACME__LANGUAGE", "de-AT")
    env.setenv("SITECHAT_SITES__ACME__AUTO_GREETING_SECONDS", "0")
    env.setenv("SITECHAT_SITES__ACME__INVITE_AFTER_SECONDS", "20")
    env.setenv("SITECHAT_SITES__ACME__INVITE_PAGES", "/pricing, /products/*")
    site = load_settings().sites["acme"]
    assert (site.language, site.auto_greeting_seconds) == ("de", 0)
    assert (site.invite_after_seconds, site.invite_pages) == (20, ["/pricing", "/products/*"])


# variable → value → the one problem line starts with
BAD = {
    "SITECHAT_SITES__ACME__GREETING__NL": ("Hallo", "SITECHAT_SITES__ACME__GREETING: 'NL' is not a language"),
    "SITECHAT_SITES__ACME__LANGUAGE": ("klingon", "SITECHAT_SITES__ACME__LANGUAGE: 'klingon' is not a language"),
    "SITECHAT_SITES__ACME__AUTO_GREETING_SECONDS": ("-1", "SITECHAT_SITES__ACME__AUTO_GREETING_SECONDS:"),
    "SITECHAT_SITES__ACME__INVITE_PAGES": ("pricing", "SITECHAT_SITES__ACME__INVITE_PAGES: 'pricing' is not"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_wrong_text_setting_is_one_plain_line(env: pytest.MonkeyPatch, name: str) -> None:
    value, expected = BAD[name]
    env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.startswith(expected), problem
