"""Per-site routing: ``SITECHAT_SITES__ACME__ORIGINS`` lands in ``Settings.sites["acme"].origins``."""

from __future__ import annotations

from typing import Annotated, Any, Self

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
    greeting: str = "Hi! How can we help?"
    identity_secret: SecretStr | None = None

    @field_validator("origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one allowed origin is needed, e.g. https://acme.example")
        return [_origin(v) for v in value]

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

    def destinations(self, topic: str | None) -> dict[str, str]:
        """Endpoint name → channel or room for a conversation on ``topic``; a topic's own routing wins."""
        cfg = self.topics.get(topic) if topic else None
        source: TopicConfig | SiteConfig = cfg if cfg and (cfg.slack_channel or cfg.matrix_room) else self
        routes = {"slack": source.slack_channel, "matrix": source.matrix_room}
        return {endpoint: dest for endpoint, dest in routes.items() if dest}

    def routes_to(self, endpoint: str) -> set[str]:
        """Every channel or room this site (or one of its topics) routes to on ``endpoint``."""
        return {d for t in (None, *self.topics) for e, d in self.destinations(t).items() if e == endpoint}
