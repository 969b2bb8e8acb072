"""Per-site routing: ``SITECHAT_SITES__ACME__ORIGINS`` lands in ``Settings.sites["acme"].origins``.

A site's texts for visitors (``GREETING``, ``AUTO_GREETING``, ``CLOSING``) may be one text for every
language, one per language (``GREETING__DE``), or both: ``LocalText`` holds them. A text the site does
not set is the catalogue's default in the visitor's language (``bridge/texts``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from config.office_hours import OfficeHours


def comma_list(value: Any) -> Any:
    """Env values are plain strings: ``a, b`` → ``["a", "b"]``; lists pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(comma_list)]


def _origin(value: str) -> str:
    value = value.strip().rstrip("/")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
        raise ValueError(f"{value!r} is not an origin like https://acme.example (scheme and host, no path)")
    return value.lower()


#: the languages the widget and the bridge speak to visitors (the catalogue in bridge/texts has each)
LANGUAGES = ("en", "de", "fr", "es")


def language_code(value: str) -> str:
    """``DE``, ``de-AT`` or ``de_AT`` → ``de``; a language we do not speak is refused by name."""
    code = value.strip().replace("_", "-").split("-", 1)[0].lower()
    if code not in LANGUAGES:
        raise ValueError(f"{value!r} is not a language the widget speaks; use one of {', '.join(LANGUAGES)}")
    return code


class LocalText(BaseModel):
    """A site's text for visitors: its own for every language (``text``), and per language (``by_language``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str | None = None
    by_language: dict[str, str] = Field(default_factory=dict)

    def get(self, language: str) -> str | None:
        """The site's text for ``language``: its own for that language, else its one for all; None: the default."""
        return self.by_language.get(language) or self.text


def _local_text(value: Any) -> Any:
    """``"Hi"`` (one text for all), or ``{"": "Hi", "de": "Hallo"}`` as the variables give it when both
    ``GREETING`` and ``GREETING__DE`` are set (``config/variables.py``), or a ``LocalText``."""
    if value is None or isinstance(value, LocalText):
        return value if value is not None else LocalText()
    if isinstance(value, str):
        return LocalText(text=value.strip() or None)
    if isinstance(value, dict) and not {"text", "by_language"} >= set(value):
        plain = value.get("")
        by_language: dict[str, str] = {}
        for key, text in value.items():
            if key == "":
                continue
            if not isinstance(text, str):
                raise ValueError(f"the text for {key!r} must be a string")
            try:
                code = language_code(str(key))
            except ValueError:
                raise ValueError(
                    f"{str(key).upper()!r} is not a language; per-language texts end in "
                    f"{', '.join('__' + lang.upper() for lang in LANGUAGES)}"
                ) from None
            if text.strip():
                by_language[code] = text.strip()
        return LocalText(text=plain.strip() or None if isinstance(plain, str) else None, by_language=by_language)
    return value


#: a site's text as the settings hold it: always a ``LocalText`` once validated (a plain string is what
#: code may pass, like an env file: ``SiteConfig(greeting="Hi")``); ``SiteConfig.own_text`` reads it typed
Texts = Annotated[LocalText | str, BeforeValidator(_local_text)]
OwnText = Literal["greeting", "auto_greeting", "closing"]


def _language(value: Any) -> Any:
    if isinstance(value, str):
        return language_code(value) if value.strip() else None
    return value


class TopicConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=100)
    slack_channel: str | None = None
    matrix_room: str | None = None


class SiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    origins: CommaList
    slack_channel: str | None = None
    matrix_room: str | None = None
    topics: dict[str, TopicConfig] = Field(default_factory=dict)
    office_hours: OfficeHours | None = None
    #: the first line the widget shows (the catalogue's in the visitor's language when not set)
    greeting: Texts = Field(default_factory=LocalText)
    identity_secret: SecretStr | None = None
    #: the language for every visitor of the site; None: each visitor's browser decides
    language: Annotated[str | None, BeforeValidator(_language)] = None
    #: a greeting this long after the visitor's first message when nobody has answered; 0 = none
    auto_greeting_seconds: float = Field(default=10, ge=0)
    auto_greeting: Texts = Field(default_factory=LocalText)
    #: what ``!bye`` says before it closes
    closing: Texts = Field(default_factory=LocalText)
    #: more conversations than this waiting for a first answer: a new visitor is told their place
    max_waiting: int = Field(default=5, ge=0)
    #: the widget invites the visitor after this long on a page matching ``invite_pages``; 0 = never
    invite_after_seconds: float = Field(default=0, ge=0)
    #: URL path globs (``/pricing``, ``/products/*``); empty = every page
    invite_pages: CommaList = Field(default_factory=list)

    @field_validator("origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one allowed origin is needed, e.g. https://acme.example")
        return [_origin(v) for v in value]

    @field_validator("invite_pages")
    @classmethod
    def _check_invite_pages(cls, value: list[str]) -> list[str]:
        for glob in value:
            if not glob.startswith(("/", "*")):
                raise ValueError(f"{glob!r} is not a URL path glob like /pricing or /products/*")
        return value

    @field_validator("office_hours", mode="before")
    @classmethod
    def _parse_office_hours(cls, value: Any) -> Any:
        if isinstance(value, str):
            return OfficeHours.parse(value) if value.strip() else None
        return value

    @model_validator(mode="after")
    def _needs_a_destination(self) -> Self:
        has_site_destination = bool(self.slack_channel or self.matrix_room)
        if not has_site_destination:
            missing = [t for t, cfg in self.topics.items() if not (cfg.slack_channel or cfg.matrix_room)]
            if not self.topics or missing:
                raise ValueError(
                    "the site has no destination: set SLACK_CHANNEL (e.g. C0123ABCD) or MATRIX_ROOM "
                    "(e.g. !abc:example.org) for the site, or for every topic"
                )
        return self

    def own_text(self, which: OwnText) -> LocalText:
        """The site's own ``GREETING``, ``AUTO_GREETING`` or ``CLOSING`` (per language)."""
        value = getattr(self, which)
        return value if isinstance(value, LocalText) else LocalText(text=value or None)

    def destinations(self, topic: str | None) -> dict[str, str]:
        """Endpoint name → channel or room for a conversation on ``topic``; a topic's own routing wins."""
        cfg = self.topics.get(topic) if topic else None
        source: TopicConfig | SiteConfig = cfg if cfg and (cfg.slack_channel or cfg.matrix_room) else self
        routes = {"slack": source.slack_channel, "matrix": source.matrix_room}
        return {endpoint: dest for endpoint, dest in routes.items() if dest}

    def routes_to(self, endpoint: str) -> set[str]:
        """Every channel or room this site (or one of its topics) routes to on ``endpoint``."""
        return {d for t in (None, *self.topics) for e, d in self.destinations(t).items() if e == endpoint}
