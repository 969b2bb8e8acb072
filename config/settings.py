"""The whole configuration: the core's own settings, the sites, and one part per side of the bridge.

Read from the environment and an env file by the names of CONTRACT.md §2 (``config/variables.py``
maps each to its place). ``Settings`` is frozen and complete once built: a missing snippets file, a
proxy that is not an address or a misspelt name is a problem at start, never later.

====================  ==========================================================================
``Settings``          database_url, note_prefix, inactivity_close_minutes,
                      first_response_alert_seconds, reminder_max, reminder_mention, snippets (name → text),
                      sites (id → SiteConfig), retention_days, follow_up_minutes
``.widget``           WidgetSettings: host, port, public_url, conversations_per_hour,
                      messages_per_minute, sockets_per_address, trusted_proxies (networks)
``.slack``            SlackSettings | None: bot_token, signing_secret, app_token, api_url
``.matrix``           MatrixSettings | None: homeserver, user_id, password, access_token, device_id, staff
``.email``            EmailSettings | None: smtp_url, mail_from, inbound_smtp, inbound_domain
``.webhook``          WebhookSettings | None: url, secret
====================  ==========================================================================
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from config.parts import EmailSettings, MatrixSettings, SlackSettings, WebhookSettings, WidgetSettings
from config.schedule import Weekly
from config.sites import SiteConfig, TopicConfig
from config.snippets import load_snippets
from config.variables import ContractVariables, compose

__all__ = [
    "EmailSettings",
    "MatrixSettings",
    "Settings",
    "SiteConfig",
    "SlackSettings",
    "TopicConfig",
    "WebhookSettings",
    "WidgetSettings",
]


def _snippets(value: Any) -> Any:
    """SITECHAT_SNIPPETS_FILE is read here, with the settings; texts given as a mapping pass through."""
    if isinstance(value, str | Path):
        return load_snippets(Path(value)) if str(value).strip() else {}
    return {} if value is None else value


def _weekly(value: Any) -> Any:
    if isinstance(value, str):
        return Weekly.parse(value) if value.strip() else None
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="forbid",
        frozen=True,
        env_file_encoding="utf-8",
    )

    database_url: str = "sqlite+aiosqlite:///./sitechat.db"
    #: a team-chat message starting with this is an internal note, never relayed
    note_prefix: str = Field(default="//", min_length=1)
    inactivity_close_minutes: float = Field(default=30, gt=0)
    #: how long a SIGTERM may take: hand over sockets and finish the deliveries in flight, then stop
    shutdown_seconds: float = Field(default=10, gt=0, le=600)
    first_response_alert_seconds: float = Field(default=60, gt=0)
    #: reminders at most while a visitor waits for an answer (the first after first_response_alert_seconds,
    #: then after twice the time before); 0: none
    reminder_max: int = Field(default=3, ge=0, le=20)
    #: whom a Slack reminder mentions: ``here``, ``channel``, ``none``, a member (``U…``) or a user group (``S…``)
    reminder_mention: str = "here"
    #: saved replies for ``!s NAME``, read from SITECHAT_SNIPPETS_FILE
    snippets: Annotated[dict[str, str], BeforeValidator(_snippets)] = Field(default_factory=dict)
    sites: dict[str, SiteConfig] = Field(default_factory=dict)
    #: closed conversations are erased this many days after they closed; None keeps them
    retention_days: float | None = Field(default=None, gt=0)
    #: an agent's reply the visitor has not seen this long goes to them by email (they gave one); 0: never
    follow_up_minutes: float = Field(default=5, ge=0)

    #: when the weekly report goes to each site's channel and room (``Mon 09:00``, the site's time zone)
    report_schedule: Annotated[Weekly | None, BeforeValidator(_weekly)] = None

    widget: WidgetSettings = Field(default_factory=WidgetSettings)
    slack: SlackSettings | None = None
    matrix: MatrixSettings | None = None
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keywords first, then the real environment, then the env file: all by the contract's names."""
        readings = [s.env_vars for s in (dotenv_settings, env_settings) if isinstance(s, EnvSettingsSource)]
        return init_settings, ContractVariables(settings_cls, readings)

    @model_validator(mode="before")
    @classmethod
    def _into_parts(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("smtp_url"):
            inbound = [f"SITECHAT_{key.upper()}" for key in ("inbound_smtp", "inbound_domain") if data.get(key)]
            if inbound:  # the replies answer follow-up mails, which only an SMTP server sends
                raise ValueError(
                    f"{' and '.join(inbound)} need{'s' if len(inbound) == 1 else ''} SITECHAT_SMTP_URL (smtp://user:pass@host:587)"
                )
        return compose(data) if isinstance(data, dict) else data

    @field_validator("sites", mode="before")
    @classmethod
    def _lowercase_site_ids(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k).lower(): v for k, v in value.items()}
        return value

    @field_validator("reminder_mention")
    @classmethod
    def _mention_shape(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in ("here", "channel", "none"):
            return value.lower()
        if re.fullmatch(r"[UWS][A-Z0-9]{2,}", value):
            return value
        raise ValueError(
            "use here, channel, none, a member id like U0123ABCD or a user group id like S0123ABCD "
            "(Slack shows ids in a profile's or group's menu: Copy member ID)"
        )

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///./sitechat.db or postgresql+asyncpg://user@host:5432/dbname")
        return value

    @model_validator(mode="after")
    def _routes_reach_a_team_chat(self) -> Self:
        problems: list[str] = []
        for site_id, site in self.sites.items():
            if site.routes_to("slack") and self.slack is None:
                problems.append(f"site {site_id!r} routes to Slack but SLACK_BOT_TOKEN is not set (xoxb-…)")
            if site.routes_to("matrix") and self.matrix is None:
                problems.append(
                    f"site {site_id!r} routes to Matrix but MATRIX_HOMESERVER is not set "
                    "(e.g. https://matrix.example.org)"
                )
        if problems:
            raise ValueError("\n".join(problems))  # one line each
        return self

    def routes_to(self, endpoint: str) -> list[str]:
        """Every channel or room some site (or topic) routes to on ``endpoint``, sorted."""
        return sorted({dest for site in self.sites.values() for dest in site.routes_to(endpoint)})
