"""Settings for every part of the bridge, read from the environment and an env file.

The variable names are fixed by CONTRACT.md §2. Sites are nested blocks:
``SITECHAT_SITES__ACME__ORIGINS`` lands in ``Settings.sites["acme"].origins``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.office_hours import OfficeHours


def _comma_list(value: Any) -> Any:
    """Env values are plain strings: ``a, b`` → ``["a", "b"]``; lists pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]


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


def _slack(name: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SITECHAT_",
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="ignore",
        env_file_encoding="utf-8",
        populate_by_name=True,
    )

    database_url: str = "sqlite+aiosqlite:///./sitechat.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    note_prefix: str = Field(default="//", min_length=1)
    inactivity_close_minutes: float = Field(default=30, gt=0)
    first_response_alert_seconds: float = Field(default=60, gt=0)
    rate_conversations_per_hour: int = Field(default=20, ge=1)
    rate_messages_per_minute: int = Field(default=30, ge=1)
    rate_sockets_per_address: int = Field(default=20, ge=1)
    trusted_proxies: CommaList = Field(default_factory=list)
    smtp_url: SecretStr | None = None
    mail_from: str | None = None
    snippets_file: Path | None = None

    slack_bot_token: SecretStr | None = _slack("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _slack("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _slack("SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL"))

    matrix_homeserver: str | None = _slack("MATRIX_HOMESERVER")
    matrix_user_id: str | None = _slack("MATRIX_USER_ID")
    matrix_password: SecretStr | None = _slack("MATRIX_PASSWORD")
    matrix_access_token: SecretStr | None = _slack("MATRIX_ACCESS_TOKEN")
    matrix_device_id: str | None = _slack("MATRIX_DEVICE_ID")
    matrix_staff: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = Field(
        default_factory=list, validation_alias=AliasChoices("MATRIX_STAFF")
    )

    sites: dict[str, SiteConfig] = Field(default_factory=dict)

    @field_validator("sites", mode="before")
    @classmethod
    def _lowercase_site_ids(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k).lower(): v for k, v in value.items()}
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("a bot token starts with xoxb-, e.g. xoxb-1234-5678-abcd")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("an app-level token starts with xapp-, e.g. xapp-1-A0123-4567-abcd")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_shape(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL like https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///./sitechat.db or postgresql+asyncpg://user@host:5432/dbname")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        if self.slack_bot_token and not self.slack_app_token and not self.slack_signing_secret:
            problems.append(
                "SLACK_SIGNING_SECRET is needed in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode); "
                "find it under Basic Information → Signing Secret"
            )
        if self.matrix_homeserver:
            if not self.matrix_user_id:
                problems.append("MATRIX_USER_ID is needed with MATRIX_HOMESERVER, e.g. @sitechat:example.org")
            if not (self.matrix_password or self.matrix_access_token):
                problems.append("MATRIX_PASSWORD or MATRIX_ACCESS_TOKEN is needed with MATRIX_HOMESERVER")
        if self.smtp_url is not None:
            if not self.smtp_url.get_secret_value().startswith(("smtp://", "smtps://")):
                problems.append("SITECHAT_SMTP_URL must look like smtp://user:pass@mail.example.org:587 (or smtps://)")
            if not self.mail_from or "@" not in self.mail_from:
                problems.append("SITECHAT_MAIL_FROM is needed with SITECHAT_SMTP_URL, e.g. support@acme.example")
        for site_id, site in self.sites.items():
            wants_slack = bool(site.slack_channel) or any(t.slack_channel for t in site.topics.values())
            wants_matrix = bool(site.matrix_room) or any(t.matrix_room for t in site.topics.values())
            if wants_slack and not self.slack_bot_token:
                problems.append(f"site {site_id!r} routes to Slack but SLACK_BOT_TOKEN is not set (xoxb-…)")
            if wants_matrix and not self.matrix_homeserver:
                problems.append(
                    f"site {site_id!r} routes to Matrix but MATRIX_HOMESERVER is not set "
                    "(e.g. https://matrix.example.org)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
